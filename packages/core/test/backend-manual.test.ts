// Importing @qbnn/core is enough for training on wasm even when the program sets the backend up
// itself (tf.setBackend('wasm')) instead of calling initBackend.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import '../src/index.js';

describe('import side effects', () => {
  it('a conv filter gradient works on a wasm backend set up without initBackend', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    const x = tf.tensor4d(
      Array.from({ length: 2 * 5 * 5 * 2 }, (_, i) => Math.sin(i)),
      [2, 5, 5, 2],
    );
    const w = tf.tensor4d(
      Array.from({ length: 3 * 3 * 2 * 2 }, (_, i) => Math.cos(i)),
      [3, 3, 2, 2],
    );
    const gradOn = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() =>
        tf
          .grad((f: tf.Tensor4D) => tf.sum(tf.square(tf.conv2d(x, f, 2, 'same'))))(w)
          .dataSync(),
      );
    };
    const onWasm = await gradOn('wasm');
    const onCpu = await gradOn('cpu');
    await tf.setBackend('wasm');
    let err = 0;
    let scale = 0;
    for (let i = 0; i < onCpu.length; i++) {
      err = Math.max(err, Math.abs(onWasm[i] - onCpu[i]));
      scale = Math.max(scale, Math.abs(onCpu[i]));
    }
    expect(scale).toBeGreaterThan(1);
    expect(err / scale).toBeLessThan(1e-5);
  });
});
