// MC Dropout's input mask drawn and applied by @qbnn/core's fused kernel gives what the composed
// path (dropoutMask + tf.mul) gives, bit for bit, forward and backward, in local and weights
// modes, and advances the layer's stream the same.
import { DROPOUT, initBackend, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { McDropoutPosterior } from '../src/mcdropout.js';

describe('fused MC Dropout mask', () => {
  afterAll(() => initBackend({ backend: 'wasm' }));
  for (const backend of ['wasm', 'cpu'] as const)
    it(`equals the composed mask and multiply on ${backend}`, async () => {
      await initBackend({ backend });
      const post = new McDropoutPosterior(
        { weightShape: [4, 6], biasShape: [4], fanIn: 6, rng: new Rng(1), name: 'mcdf' },
        { p: 0.3 },
      );
      const x = tf.tensor(new Rng(2).normal(5 * 6), [5, 6]);
      const dy = tf.tensor(new Rng(3).normal(5 * 6), [5, 6]);
      for (const mode of ['local', 'weights'] as const) {
        const run = () => {
          const rng = new Rng(12);
          const f = (v: tf.Tensor) => tf.sum(tf.mul(post.transformInput(v, { mode, rng }), dy));
          const y = post.transformInput(x, { mode, rng: new Rng(12) }).dataSync();
          const g = tf.grad(f)(x).dataSync();
          return { y: Array.from(y), g: Array.from(g), position: rng.position };
        };
        const saved = tf.getKernel(DROPOUT, backend)!;
        const info = await tf.profile(() => post.transformInput(x, { mode, rng: new Rng(12) }));
        expect(info.kernels.map((k) => k.name)).toContain(DROPOUT);
        const fused = run();
        tf.unregisterKernel(DROPOUT, backend);
        const composed = run();
        tf.registerKernel(saved);
        expect(fused).toEqual(composed);
        expect(fused.y.filter((v) => v === 0).length).toBeGreaterThan(0);
      }
      tf.dispose([x, dy]);
      post.dispose();
    });
});
