// A tiny conv net trains on the wasm backend: the Conv2DBackpropFilter kernel qbnn adds is on the
// path of every step, and the loss falls.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/index.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** 8x8 images: a horizontal bar (class 0) or a vertical bar (class 1) at a random place, plus noise. */
function bars(n: number, rnd: () => number): { x: tf.Tensor4D; y: tf.Tensor2D; labels: number[] } {
  const px = new Float32Array(n * 64);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = rnd() < 0.5 ? 0 : 1;
    labels.push(label);
    const at = 1 + Math.floor(rnd() * 6);
    for (let r = 0; r < 8; r++)
      for (let c = 0; c < 8; c++) {
        const on = label === 0 ? r === at : c === at;
        px[i * 64 + r * 8 + c] = (on ? 1 : 0) + (rnd() - 0.5) * 0.4;
      }
  }
  return {
    x: tf.tensor4d(px, [n, 8, 8, 1]),
    y: tf.oneHot(tf.tensor1d(labels, 'int32'), 2) as tf.Tensor2D,
    labels,
  };
}

beforeAll(async () => {
  expect((await initBackend()).backend).toBe('wasm');
});

describe('training on wasm', () => {
  it('a conv -> relu -> maxpool -> dense net (254 parameters) learns in 30 Adam steps', async () => {
    const rnd = lcg(12345);
    const init = (shape: number[], scale: number) =>
      tf.variable(
        tf.tensor(
          Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rnd() * 2 - 1) * scale),
          shape,
        ),
      );
    const w1 = init([3, 3, 1, 6], 0.5);
    const b1 = tf.variable(tf.zeros([6]));
    const w2 = init([4 * 4 * 6, 2], 0.2);
    const b2 = tf.variable(tf.zeros([2]));
    const params = [w1, b1, w2, b2];
    expect(params.reduce((a, p) => a + p.size, 0)).toBe(254);

    const logits = (x: tf.Tensor4D) => {
      const h = tf.relu(tf.add(tf.conv2d(x, w1 as tf.Tensor4D, 1, 'same'), b1));
      const p = tf.reshape(tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid'), [x.shape[0], 96]);
      return tf.add(tf.matMul(p as tf.Tensor2D, w2 as tf.Tensor2D), b2);
    };
    const train = bars(64, rnd);
    const test = bars(64, rnd);
    const lossOf = () => tf.losses.softmaxCrossEntropy(train.y, logits(train.x)) as tf.Scalar;

    // The filter gradient runs the kernel qbnn adds for wasm.
    const profile = await tf.profile(() =>
      tf.tidy(() => {
        tf.variableGrads(lossOf, params);
      }),
    );
    expect(profile.kernelNames).toContain('Conv2DBackpropFilter');
    expect(tf.getBackend()).toBe('wasm');

    const w1Before = w1.dataSync().slice();
    const opt = tf.train.adam(0.03);
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const loss = opt.minimize(lossOf, true, params) as tf.Scalar;
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[0]).toBeGreaterThan(0.5);
    expect(losses[29]).toBeLessThan(0.3 * losses[0]);
    // The conv filter itself was trained (its gradient is not lost on wasm).
    const w1After = w1.dataSync();
    let moved = 0;
    for (let i = 0; i < w1After.length; i++) moved = Math.max(moved, Math.abs(w1After[i] - w1Before[i]));
    expect(moved).toBeGreaterThan(0.05);
    // And it generalises to fresh images.
    const pred = tf.tidy(() => tf.argMax(logits(test.x), 1).dataSync());
    const acc = test.labels.filter((l, i) => pred[i] === l).length / test.labels.length;
    expect(acc).toBeGreaterThan(0.9);
    tf.dispose([...params, train.x, train.y, test.x, test.y]);
    opt.dispose();
  });
});
