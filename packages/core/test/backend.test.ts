import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BackendInfo, initBackend } from '../src/index.js';

const require = createRequire(import.meta.url);

let info: BackendInfo;
beforeAll(async () => {
  info = await initBackend();
});

describe('initBackend', () => {
  it('picks wasm here, with SIMD, and adds the missing training kernels', () => {
    expect(info.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.fallbackReason).toBeNull();
    expect(info.simd).toBe(true);
    expect(info.kernelsAdded).toContain('Conv2DBackpropFilter');
    for (const k of info.kernelsAdded) expect(tf.getKernel(k, 'wasm')).toBeDefined();
    expect(info.kernelsReplaced).toEqual([
      'MaxPoolGrad',
      'Identity',
      'BatchMatMul',
      '_FusedMatMul',
      'Conv2DBackpropInput',
    ]);
    // tfjs-core 4.22 has 99 gradients over the kernels cpu and wasm know; all are registered.
    expect(info.gradientCount).toBeGreaterThanOrEqual(95);
    expect(tf.getGradient('Conv2D')).toBeDefined();
  });

  it('clones without copying (Identity shares the buffer) and keeps the data until the last owner goes', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const buffers = () => tf.engine().backend.numDataIds();
    const before = buffers();
    const y = tf.clone(x);
    expect(buffers()).toBe(before); // no second buffer in the wasm heap
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    const v = tf.variable(y);
    y.dispose();
    v.assign(tf.tensor1d([4, 5, 6]));
    expect(Array.from(v.dataSync())).toEqual([4, 5, 6]);
    v.dispose();
  });

  it('reports no float kernel set unless a package installs one', () => {
    expect(info.floatKernels).toBeNull();
  });

  it('shares one tfjs-core instance with the backends (the CommonJS main, as plain node loads it)', () => {
    const cjs = require('@tensorflow/tfjs-core') as typeof tf;
    expect(cjs.engine).toBe(tf.engine);
    expect(cjs.Tensor).toBe(tf.Tensor);
    const wasmMain = require.resolve('@tensorflow/tfjs-backend-wasm');
    const wasmRequire = createRequire(wasmMain);
    expect(wasmRequire('@tensorflow/tfjs-core')).toBe(cjs);
  });

  it('is idempotent: a second call returns the first result and keeps the backend instance', async () => {
    const instance = tf.backend();
    const again = await initBackend();
    expect(again).toBe(info);
    expect(tf.backend()).toBe(instance);
    // and re-activates wasm if something switched the backend meanwhile
    await tf.setBackend('cpu');
    expect((await initBackend()).backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.backend()).toBe(instance);
  });

  it('the added and replaced kernels leak no wasm memory', () => {
    const wasm = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.randomUniform([2, 7, 7, 3]) as tf.Tensor4D;
    const w = tf.randomUniform([3, 3, 3, 2]) as tf.Tensor4D;
    const idx = tf.tensor1d([1, 1, 0], 'int32');
    const before = wasm.numDataIds();
    for (let i = 0; i < 3; i++) {
      tf.tidy(() => {
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')),
        )([x, w]);
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')),
        )([x, w]);
        tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'same')))(x);
        tf.grad((a: tf.Tensor) => tf.sum(tf.gather(a, idx)))(x);
        tf.einsum('ij,jk->ik', tf.ones([2, 3]), tf.ones([3, 4]));
      });
    }
    expect(wasm.numDataIds()).toBe(before);
    tf.dispose([x, w, idx]);
  });
});
