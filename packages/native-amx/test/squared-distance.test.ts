// The native scaled squared distance ('QbnnSquaredDistance' on tfjs-wasm) against @qbnn/core's
// float64 JS reference: the gradient bit for bit, the sum within float64 rounding of a different
// summation order; the same bits on the AVX-512 and scalar paths and on 1 and 2 threads.
import {
  initBackend,
  Rng,
  SQUARED_DISTANCE,
  SQUARED_DISTANCE_GRAD,
  squaredDistanceGrad,
  squaredDistanceSum,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';
import { addon } from '../src/binding.js';
import {
  disableNativeFloatKernels,
  enableNativeFloatKernels,
  nativeAvailable,
  setThreads,
} from '../src/index.js';
import { sameBits } from './helpers.js';

const d = nativeAvailable && addon!.fp32.info().avx512 ? describe : describe.skip;

d('native squared distance', () => {
  // read lazily: the body is collected even when the suite is skipped (no addon)
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => {
    fp32.setPortable(false);
    setThreads(2);
    enableNativeFloatKernels();
  });

  test('equals the reference on both paths and thread counts', () => {
    for (const n of [1, 7, 8, 9, 16_383, 16_385, 100_001]) {
      const x = new Rng(n).normal(n).map((v) => v * 0.3 + 0.05);
      const center = 0.1;
      // float64 sums: only the order differs from the reference's sequential loop
      const want = squaredDistanceSum(x, { center, scale: 1 });
      const wantDx = new Float32Array(n);
      squaredDistanceGrad(x, 0.7, wantDx, { center, scale: 2.5 });
      const sums: number[] = [];
      for (const portable of [false, true])
        for (const threads of [1, 2]) {
          fp32.setPortable(portable);
          setThreads(threads);
          const sum = fp32.squaredDistance(x, center);
          sums.push(sum);
          expect(Math.abs(sum - want), `n=${n}`).toBeLessThan(1e-13 * want);
          const dx = new Float32Array(n);
          fp32.squaredDistanceGrad(x, center, 2 * 2.5 * 0.7, dx);
          expect(sameBits(dx, wantDx), `n=${n} portable=${portable} threads=${threads}`).toBe(true);
        }
      expect(new Set(sums).size, `n=${n}: one value on every path`).toBe(1);
    }
  });

  test('serves the wasm kernels, with the values of the JS kernels', async () => {
    fp32.setPortable(false);
    await initBackend({ backend: 'wasm' });
    const x = new Rng(3).normal(5000);
    const run = () => {
      const t = tf.tensor(x, [50, 100]);
      const attrs = { center: -0.2, scale: 0.125 } as never;
      const value = tf.engine().runKernel(SQUARED_DISTANCE, { x: t }, attrs) as tf.Tensor;
      const dx = tf.engine().runKernel(SQUARED_DISTANCE_GRAD, { x: t, dy: tf.scalar(3) }, attrs) as tf.Tensor;
      const out = { value: value.dataSync()[0], dx: dx.dataSync() as Float32Array, shape: dx.shape };
      tf.dispose([t, value, dx]);
      return out;
    };
    enableNativeFloatKernels();
    const native = run();
    disableNativeFloatKernels();
    const js = run();
    enableNativeFloatKernels();
    expect(native.shape).toEqual([50, 100]);
    expect(Math.abs(native.value - js.value)).toBeLessThanOrEqual(1e-6 * js.value);
    expect(sameBits(native.dx, js.dx)).toBe(true);
  });

  test('refuses bad arguments', () => {
    const x = new Float32Array(4);
    expect(() => fp32.squaredDistance(new Float64Array(4) as never, 0)).toThrow(/Float32Array/);
    expect(() => fp32.squaredDistance(x, Number.NaN)).toThrow(/center must be a finite number/);
    expect(() => fp32.squaredDistanceGrad(x, 0, Number.POSITIVE_INFINITY, x)).toThrow(/finite numbers/);
    expect(() => fp32.squaredDistanceGrad(x, 0, 1, new Float32Array(3))).toThrow(/dx holds 3 floats/);
  });
});
