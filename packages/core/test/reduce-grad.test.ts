// Sum's and Mean's gradients (reduce-grad.ts: ones made by the backend) against a
// brute-force loop: d/dx_i of sum_j c_j reduce(x)_j is c at the output element x_i reduces into
// (divided by the reduced count for Mean), on every backend, for several axis sets.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/index.js';

const SHAPE = [3, 4, 5];

/** Index of x's element `flat` in the reduced output (axes dropped). */
function outIndex(flat: number, axes: number[]): number {
  const coords: number[] = [];
  for (let d = SHAPE.length - 1, r = flat; d >= 0; --d) {
    coords[d] = r % SHAPE[d];
    r = Math.floor(r / SHAPE[d]);
  }
  let idx = 0;
  for (let d = 0; d < SHAPE.length; ++d) if (!axes.includes(d)) idx = idx * SHAPE[d] + coords[d];
  return idx;
}

describe('Sum and Mean gradients spread dy exactly', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  for (const backend of ['wasm', 'cpu'])
    for (const axes of [[0], [1], [2], [0, 2], [0, 1, 2], [-1]])
      for (const op of ['sum', 'mean'] as const)
        it(`${op} over axes ${axes} on ${backend}`, async () => {
          await tf.setBackend(backend);
          const n = SHAPE.reduce((a, b) => a * b, 1);
          const x = tf.tensor(
            Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
            SHAPE,
          );
          const norm = axes.map((a) => (a + SHAPE.length) % SHAPE.length);
          const outN = SHAPE.filter((_, d) => !norm.includes(d)).reduce((a, b) => a * b, 1);
          const c = Float32Array.from({ length: outN }, (_, j) => Math.fround(0.5 + j / 7));
          const count = norm.reduce((a, d) => a * SHAPE[d], 1);
          const g = tf.grad((t: tf.Tensor) => {
            const r = op === 'sum' ? tf.sum(t, axes) : tf.mean(t, axes);
            return tf.sum(tf.mul(r, tf.tensor(c, r.shape)));
          })(x);
          const got = await g.data();
          const want = Array.from({ length: n }, (_, i) => {
            const v = c[outIndex(i, norm)];
            return op === 'sum' ? v : Math.fround(v / count);
          });
          expect(Array.from(got)).toEqual(want);
          tf.dispose([x, g]);
        });

  it('keepDims and NaN pass through', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.sum(t, 1, true), tf.tensor2d([[Number.NaN], [2]]))))(
      x,
    );
    expect(Array.from(await g.data())).toEqual([Number.NaN, Number.NaN, Number.NaN, 2, 2, 2]);
    tf.dispose([x, g]);
  });
});
