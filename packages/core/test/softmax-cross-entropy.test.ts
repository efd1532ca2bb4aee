// The fused mean softmax cross-entropy (one kernel forward, one backward) on wasm and cpu against
// float64 maths written out here: the value, central finite differences for the gradient, labels
// outside [0, C) counted as zero rows (as oneHot makes them), NaN logits give NaN; bad inputs.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend, QbnnError, Rng, SOFTMAX_CROSS_ENTROPY, softmaxCrossEntropy } from '../src/index.js';

/** -(1/n) sum over rows with a valid label of log softmax(x)[y], in float64. */
function ce64(x: Float64Array, labels: number[], n: number, c: number): number {
  let s = 0;
  for (let r = 0; r < n; r++) {
    const y = labels[r];
    if (!(y >= 0 && y < c)) continue;
    let z = 0;
    for (let j = 0; j < c; j++) z += Math.exp(x[r * c + j]);
    s += x[r * c + y] - Math.log(z);
  }
  return -s / n;
}

describe('softmaxCrossEntropy', () => {
  afterAll(() => initBackend({ backend: 'wasm' }));
  for (const backend of ['wasm', 'cpu'] as const)
    it(`equals float64 maths, value and gradient, on ${backend}`, async () => {
      await initBackend({ backend });
      const [n, c] = [6, 4];
      const x = Float32Array.from(new Rng(2).normal(n * c), (v) => v * 3);
      x[5] = 40; // a large logit: the max is subtracted
      const labels = [0, 3, 2, -1, 4, 1];
      const xt = tf.tensor(x, [n, c]);
      const lt = tf.tensor1d(labels, 'int32');
      const x64 = Float64Array.from(x);
      const value = softmaxCrossEntropy(xt, lt)!.dataSync()[0];
      const want = ce64(x64, labels, n, c);
      expect(Math.abs(value - want)).toBeLessThan(1e-6 * Math.abs(want));
      const g = tf
        .grad((v: tf.Tensor) => tf.mul(2, softmaxCrossEntropy(v, lt)!))(xt)
        .dataSync();
      for (let i = 0; i < n * c; i++) {
        const h = 1e-5;
        const up = Float64Array.from(x64);
        const down = Float64Array.from(x64);
        up[i] += h;
        down[i] -= h;
        const fd = (2 * (ce64(up, labels, n, c) - ce64(down, labels, n, c))) / (2 * h);
        expect(Math.abs(g[i] - fd), `element ${i}`).toBeLessThan(1e-6 + 1e-5 * Math.abs(fd));
      }
      // rows with labels outside [0, C) contribute nothing, not even a gradient
      for (const r of [3, 4]) for (let j = 0; j < c; j++) expect(g[r * c + j]).toBe(0);
      const nan = tf.tensor([Number.NaN, 1, 2, 3], [1, 4]);
      expect(softmaxCrossEntropy(nan, tf.tensor1d([1], 'int32'))!.dataSync()[0]).toBeNaN();
      tf.dispose([xt, lt, nan]);
    });

  it('returns null for inputs it does not take, and refuses bad kernel inputs', async () => {
    await initBackend({ backend: 'wasm' });
    const x = tf.zeros([2, 3]);
    expect(softmaxCrossEntropy(x, tf.tensor1d([0, 1], 'float32'))).toBeNull();
    expect(softmaxCrossEntropy(x, tf.tensor1d([0, 1, 2], 'int32'))).toBeNull();
    expect(() =>
      tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY, { logits: x, labels: tf.tensor1d([0], 'int32') }),
    ).toThrow(QbnnError);
    x.dispose();
  });
});
