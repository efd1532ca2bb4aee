// The native Adam step ('QbnnAdam' on tfjs-wasm) against @qbnn/core's JS reference adamUpdate:
// bit for bit, AVX-512 and scalar paths, 1 and 2 threads, lengths ending inside a vector and a
// thread chunk; and the kernel registered in tfjs's registry for the wasm backend.
import { adamUpdate, FUSED_ADAM, type FusedAdamAttrs, initBackend, Rng } from '@qbnn/core';
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

const ATTRS: FusedAdamAttrs = {
  learningRate: 3e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-7,
  correction1: 1 - 0.9 ** 3,
  correction2: 1 - 0.999 ** 3,
};

function inputs(n: number, seed: number): Float32Array[] {
  const r = new Rng(seed);
  const v = r.normal(n).map((x) => x * x * 0.01);
  return [r.normal(n), r.normal(n).map((x) => x * 0.1), v, r.normal(n)];
}

d('native fused Adam', () => {
  // read lazily: the body is collected even when the suite is skipped (no addon)
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => {
    fp32.setPortable(false);
    setThreads(2);
    enableNativeFloatKernels();
  });

  for (const portable of [false, true])
    for (const threads of [1, 2])
      test(`equals adamUpdate bit for bit (${portable ? 'scalar' : 'AVX-512'}, ${threads} thread${threads > 1 ? 's' : ''})`, () => {
        fp32.setPortable(portable);
        setThreads(threads);
        for (const n of [1, 7, 8, 9, 16_383, 16_385, 100_001]) {
          const [p, m, v, g] = inputs(n, n);
          const want = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
          adamUpdate(p, m, v, g, want[0], want[1], want[2], ATTRS);
          const got = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
          const a = ATTRS;
          fp32.adam(
            p,
            m,
            v,
            g,
            got[0],
            got[1],
            got[2],
            Float64Array.of(a.learningRate, a.beta1, a.beta2, a.epsilon, a.correction1, a.correction2),
          );
          for (let k = 0; k < 3; k++) expect(sameBits(got[k], want[k]), `n=${n} output ${k}`).toBe(true);
        }
      });

  for (const portable of [false, true])
    test(`adamMany steps many tensors (moments in place) as adamUpdate does, bit for bit (${portable ? 'scalar' : 'AVX-512'}, 1 and 2 threads)`, () => {
      fp32.setPortable(portable);
      const sizes = [1, 7, 16_385, 100_001, 9];
      const a = ATTRS;
      const attrs = Float64Array.of(
        a.learningRate,
        a.beta1,
        a.beta2,
        a.epsilon,
        a.correction1,
        a.correction2,
      );
      for (const threads of [1, 2]) {
        setThreads(threads);
        const ins = sizes.map((n, k) => inputs(n, 100 + k));
        const want = ins.map(([p, m, v, g]) => {
          const out = [new Float32Array(p.length), new Float32Array(p.length), new Float32Array(p.length)];
          adamUpdate(p, m, v, g, out[0], out[1], out[2], ATTRS);
          return out;
        });
        const outP = sizes.map((n) => new Float32Array(n));
        fp32.adamMany(
          ins.map((x) => x[0]),
          ins.map((x) => x[1]),
          ins.map((x) => x[2]),
          ins.map((x) => x[3]),
          outP,
          attrs,
        );
        ins.forEach((x, k) => {
          expect(sameBits(outP[k], want[k][0]), `tensor ${k} parameter`).toBe(true);
          for (let j = 1; j < 3; j++)
            expect(sameBits(x[j], want[k][j]), `tensor ${k} moment ${j}`).toBe(true);
        });
      }
    });

  test('adamMany refuses bad arguments', () => {
    const x = new Float32Array(4);
    const attrs = Float64Array.of(1e-3, 0.9, 0.999, 1e-7, 0.1, 0.01);
    expect(() => fp32.adamMany([x], [x], [x], [new Float32Array(3)], [x], attrs)).toThrow(
      /g\[0\] holds 3 floats/,
    );
    expect(() => fp32.adamMany([x, x], [x], [x], [x], [x], attrs)).toThrow(/as many tensors/);
    expect(() => fp32.adamMany([x], [x], [new Int32Array(4) as never], [x], [x], attrs)).toThrow(
      /v\[0\] must be a Float32Array/,
    );
    expect(() => fp32.adamMany([x], [x], [x], [x], [x], Float64Array.of(1, 1, 1, 1, 0, 1))).toThrow(
      /corrections/,
    );
  });

  test('the wasm kernel is native and gives what the JS kernel gives', async () => {
    fp32.setPortable(false);
    await initBackend({ backend: 'wasm' });
    const run = () => {
      const [p, m, v, g] = inputs(5000, 9).map((x) => tf.tensor(x, [50, 100]));
      const outs = tf
        .engine()
        .runKernel(FUSED_ADAM, { param: p, m, v, grad: g }, ATTRS as never) as tf.Tensor[];
      const data = outs.map((t) => t.dataSync() as Float32Array);
      tf.dispose([p, m, v, g, ...outs]);
      return data;
    };
    enableNativeFloatKernels();
    const native = run();
    disableNativeFloatKernels();
    const js = run();
    enableNativeFloatKernels();
    for (let k = 0; k < 3; k++) expect(sameBits(native[k], js[k])).toBe(true);
  });

  test('refuses bad arguments', () => {
    const x = new Float32Array(4);
    expect(() => fp32.adam(x, x, x, new Float32Array(3), x, x, x, new Float64Array(6))).toThrow(
      /g holds 3 floats/,
    );
    expect(() => fp32.adam(x, x, x, x, x, x, x, new Float64Array(5))).toThrow(TypeError);
    expect(() => fp32.adam(x, x, x, x, x, x, x, Float64Array.of(1, 1, 1, 1, 0, 1))).toThrow(/corrections/);
  });
});
