// The cpu fallback: when tfjs-backend-wasm cannot start, initBackend says why and trains on cpu;
// forcing 'wasm' throws instead. (Own file: vitest runs each file in its own process.)
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend, QbnnError } from '../src/index.js';

describe('initBackend fallback', () => {
  it('rejects an unknown backend name', async () => {
    await expect(initBackend({ backend: 'webgl' as 'cpu' })).rejects.toMatchObject({ code: 'ERR_ARG' });
  });

  it("falls back to cpu with the reason logged, and 'wasm' forced throws ERR_BACKEND", async () => {
    // Make the wasm backend's factory fail, as a missing .wasm file or an engine without
    // WebAssembly would.
    tf.removeBackend('wasm');
    tf.registerBackend(
      'wasm',
      async () => {
        throw new Error('simulated: tfjs-backend-wasm.wasm not found');
      },
      2,
    );
    const logged: string[] = [];
    const info = await initBackend({ log: (m) => logged.push(m) });
    expect(info.backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(info.simd).toBeNull();
    expect(info.fallbackReason).toMatch(/simulated: tfjs-backend-wasm\.wasm not found/);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain(info.fallbackReason);

    const err = await initBackend({ backend: 'wasm' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QbnnError);
    expect((err as QbnnError).code).toBe('ERR_BACKEND');
    expect((err as QbnnError).message).toMatch(/wasm backend failed to start: simulated/);

    // Gradients are registered whatever the backend: a conv filter gradient on cpu.
    const g = tf.tidy(() =>
      tf
        .grad((w: tf.Tensor4D) => tf.sum(tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, w, 1, 'valid')))(
          tf.zeros([3, 3, 1, 1]),
        )
        .dataSync(),
    );
    // Each filter tap sees the 2x2 valid output positions, each with input 1.
    expect(Array.from(g)).toEqual(Array(9).fill(4));
  });

  it("backend: 'cpu' never tries wasm", async () => {
    const logged: string[] = [];
    const info = await initBackend({ backend: 'cpu', log: (m) => logged.push(m) });
    expect(info).toMatchObject({ backend: 'cpu', fallbackReason: null, simd: null });
    expect(logged).toHaveLength(0);
  });
});
