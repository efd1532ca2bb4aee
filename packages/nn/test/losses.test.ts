// crossEntropy with class indices runs @qbnn/core's fused kernels: the same loss and gradient as
// the composition of tfjs ops it replaced (one-hot targets, logSoftmax, sum, mean), up to float32
// rounding; float labels are cast to indices as before; soft targets keep the composed path.
import { Rng, SOFTMAX_CROSS_ENTROPY } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy } from '../src/losses.js';
import { ready } from './setup.js';

function composed(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  const target = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, logits.shape[1] as number);
  return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

describe('crossEntropy', () => {
  it('refuses class indices outside [0, C) and fractional ones (they were dropped or cast silently)', () => {
    const logits = tf.tensor2d([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    for (const bad of [7, -1, 3, 2 ** 31 - 1]) {
      expect(() => crossEntropy(logits, tf.tensor1d([0, bad], 'int32')), String(bad)).toThrow(
        new RegExp(`crossEntropy: labels\\[1\\] must be a class index, an integer in \\[0, 2\\], got ${bad}`),
      );
    }
    expect(() => crossEntropy(logits, tf.tensor1d([0, 0.5]))).toThrow(/labels\[1\] must be a class index/);
    expect(() => crossEntropy(logits, tf.tensor1d([0, 1, 2], 'int32'))).toThrow(
      /must be \[2\] class indices/,
    );
    expect(crossEntropy(logits, tf.tensor1d([0, 2], 'int32')).dataSync()[0]).toBeCloseTo(1.4076, 4);
  });

  beforeAll(ready);
  it('with class indices equals the composed tfjs ops, value and gradient', async () => {
    const x = tf.tensor(new Rng(5).normal(64 * 10), [64, 10]);
    for (const labels of [
      tf.tensor1d(
        Int32Array.from({ length: 64 }, (_, i) => (i * 7) % 10),
        'int32',
      ),
      tf.tensor1d(Float32Array.from({ length: 64 }, (_, i) => (i * 3) % 10)),
    ]) {
      const info = await tf.profile(() => crossEntropy(x, labels));
      expect(info.kernels.map((k) => k.name)).toContain(SOFTMAX_CROSS_ENTROPY);
      const [a, ga] = [
        crossEntropy(x, labels).dataSync()[0],
        tf.grad((v: tf.Tensor) => crossEntropy(v, labels))(x),
      ];
      const [b, gb] = [composed(x, labels).dataSync()[0], tf.grad((v: tf.Tensor) => composed(v, labels))(x)];
      expect(Math.abs(a - b)).toBeLessThan(1e-6 * Math.abs(b));
      const d1 = ga.dataSync();
      const d2 = gb.dataSync();
      for (let i = 0; i < d1.length; i++)
        expect(Math.abs(d1[i] - d2[i])).toBeLessThan(1e-7 + 1e-5 * Math.abs(d2[i]));
    }
    // soft targets: the composed path
    const soft = tf.softmax(tf.tensor(new Rng(6).normal(64 * 10), [64, 10]));
    const info = await tf.profile(() => crossEntropy(x, soft));
    expect(info.kernels.map((k) => k.name)).not.toContain(SOFTMAX_CROSS_ENTROPY);
  });
});
