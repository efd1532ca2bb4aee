// The fused inverted dropout ('QbnnDropout') on wasm and cpu against the mask written out here
// from Rng.uniform (keep 1 / (1 - p) where u >= p): x * mask bit for bit, a mask shared by the
// rows of a batch, the gradient dy * mask, the stream advanced as Rng.uniform advances it.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { DROPOUT, dropout, initBackend, QbnnError, Rng } from '../src/index.js';

function expected(x: Float32Array, seed: number, p: number, maskSize: number): Float32Array {
  const u = new Rng(seed).uniform(maskSize);
  const keep = Math.fround(1 / (1 - p));
  return x.map((v, i) => v * (u[i % maskSize] >= p ? keep : 0));
}

describe('dropout', () => {
  afterAll(() => initBackend({ backend: 'wasm' }));
  for (const backend of ['wasm', 'cpu'] as const)
    it(`equals x times the Rng.uniform mask, and its gradient dy times it, on ${backend}`, async () => {
      await initBackend({ backend });
      for (const [shape, maskSize, p] of [
        [[3, 7], 21, 0.2],
        [[5, 3, 2], 6, 0.5],
        [[2, 4099], 4099, 0.9],
      ] as const) {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = Float32Array.from(new Rng(n).normal(n));
        x[0] = Number.NaN;
        x[1] = Number.POSITIVE_INFINITY;
        const rng = new Rng(7);
        const xt = tf.tensor(x, [...shape]);
        const y = dropout(xt, rng, p, maskSize)!.dataSync() as Float32Array;
        const want = expected(x, 7, p, maskSize);
        expect(Array.from(y)).toEqual(Array.from(want));
        expect(rng.position).toBe(Math.ceil(maskSize / 4));
        const dy = Float32Array.from(new Rng(3).normal(n));
        const g = tf
          .grad((v: tf.Tensor) => tf.mul(dropout(v, new Rng(7), p, maskSize)!, tf.tensor(dy, [...shape])))(xt)
          .dataSync() as Float32Array;
        expect(Array.from(g)).toEqual(Array.from(expected(dy, 7, p, maskSize)));
        xt.dispose();
      }
    });

  it('refuses bad attributes with typed errors', async () => {
    await initBackend({ backend: 'wasm' });
    const x = tf.tensor([1, 2, 3, 4]);
    const run = (attrs: object) => () => tf.engine().runKernel(DROPOUT, { x }, attrs as tf.NamedAttrMap);
    const ok = { k0: 1, k1: 2, firstBlock: 0, p: 0.5, maskSize: 2 };
    expect(run({ ...ok, p: 1 })).toThrow(QbnnError);
    expect(run({ ...ok, maskSize: 3 })).toThrow(/divide the 4 elements/);
    expect(run({ ...ok, k0: -1 })).toThrow(/uint32/);
    expect(run({ ...ok, firstBlock: 0.5 })).toThrow(/firstBlock/);
    x.dispose();
  });
});
