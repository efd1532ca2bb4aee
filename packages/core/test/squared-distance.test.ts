// The fused scaled squared distance (one kernel forward, one backward) on wasm and cpu against
// float64 maths written out here: the value, and central finite differences of it for the
// gradient; bad inputs are typed errors.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend, QbnnError, Rng, SQUARED_DISTANCE, squaredDistance } from '../src/index.js';

/** scale * sum((x - c)^2) in float64, over float32 inputs. */
function value64(x: Float32Array, c: number, scale: number, bump = -1, h = 0): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] + (i === bump ? h : 0) - c;
    s += d * d;
  }
  return scale * s;
}

describe('squaredDistance', () => {
  afterAll(() => initBackend({ backend: 'wasm' }));
  for (const backend of ['wasm', 'cpu'] as const)
    it(`equals float64 maths, value and gradient, on ${backend}`, async () => {
      await initBackend({ backend });
      const x = Float32Array.from(new Rng(5).normal(37), (v) => v * 0.4);
      for (const [c, scale] of [
        [0, 0.5],
        [0.25, 1 / (2 * 0.1 * 0.1)],
      ]) {
        const xt = tf.tensor(x, [37]);
        const got = squaredDistance(xt, c, scale)!.dataSync()[0];
        const want = value64(x, c, scale);
        expect(Math.abs(got - want)).toBeLessThan(1e-6 * want);
        const g = tf
          .grad((v: tf.Tensor) => tf.mul(3, squaredDistance(v, c, scale)!))(xt)
          .dataSync();
        for (let i = 0; i < x.length; i++) {
          const h = 1e-4;
          const fd = (3 * (value64(x, c, scale, i, h) - value64(x, c, scale, i, -h))) / (2 * h);
          expect(Math.abs(g[i] - fd), `element ${i}`).toBeLessThan(1e-5 * (1 + Math.abs(fd)));
        }
        xt.dispose();
      }
    });

  it('refuses bad inputs with typed errors', async () => {
    await initBackend({ backend: 'wasm' });
    const x = tf.tensor([1, 2]);
    const run = (inputs: tf.NamedTensorMap, attrs: object) => () =>
      tf.engine().runKernel(SQUARED_DISTANCE, inputs, attrs as tf.NamedAttrMap);
    expect(run({ x }, { center: Number.NaN, scale: 1 })).toThrow(QbnnError);
    expect(run({ x }, { center: 0 })).toThrow(/attribute scale must be a finite number/);
    expect(run({ x: tf.tensor([1, 2], [2], 'int32') }, { center: 0, scale: 1 })).toThrow(/float32/);
    x.dispose();
  });
});
