// Training on the native fp32 kernels: reproducible bit for bit for a seed, whatever the thread
// count, and the same training as tfjs-backend-wasm's own kernels up to fp32 rounding.
import { initBackend, Rng } from '@qbnn/core';
import {
  disableNativeFloatKernels,
  enableNativeFloatKernels,
  nativeAvailable,
  nativeInfo,
  setThreads,
} from '@qbnn/native-amx';
import { crossEntropy, fit, lenet5 } from '@qbnn/nn';
import { dnnToBnn, elboLoss, modelKl, setSamplingMode } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';

const d =
  nativeAvailable && nativeInfo() !== undefined && enableNativeFloatKernels().active
    ? describe
    : describe.skip;

async function train(mode: 'weights' | 'local'): Promise<{ params: Float32Array; loss: number[] }> {
  await initBackend({ backend: 'wasm' });
  const { model } = dnnToBnn(lenet5({}, { seed: 3 }), { posterior: 'gaussian', seed: 3 });
  setSamplingMode(model, mode);
  const n = 16;
  const u = new Rng(5).uint32(n * 784);
  const x = tf.tensor(
    Float32Array.from(u, (v) => v / 2 ** 32),
    [n, 1, 28, 28],
  );
  const y = tf.tensor1d(
    Int32Array.from({ length: n }, (_, i) => i % 10),
    'int32',
  );
  const r = await fit(
    model,
    { x, y },
    {
      epochs: 1,
      batchSize: 8,
      seed: 7,
      loss: (m, xb, yb) => elboLoss(crossEntropy(m.apply(xb), yb), modelKl(m), { datasetSize: n, beta: 1 }),
    },
  );
  const parts = model.parameters().map((p) => p.dataSync() as Float32Array);
  const params = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    params.set(p, at);
    at += p.length;
  }
  x.dispose();
  y.dispose();
  return { params, loss: r.epochLoss };
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

d('training on the native fp32 kernels', () => {
  afterAll(() => {
    setThreads(2);
    enableNativeFloatKernels();
  });

  test.each(['weights', 'local'] as const)(
    'is bit-reproducible per seed and across thread counts (%s mode)',
    async (mode) => {
      setThreads(1);
      const a = await train(mode);
      const b = await train(mode);
      setThreads(2);
      const c = await train(mode);
      expect(same(a.params, b.params)).toBe(true);
      expect(same(a.params, c.params)).toBe(true);
      disableNativeFloatKernels();
      const w = await train(mode);
      enableNativeFloatKernels();
      // tfjs-backend-wasm's own kernels: the same training up to fp32 rounding.
      for (let i = 0; i < a.loss.length; i++)
        expect(Math.abs(a.loss[i] - w.loss[i])).toBeLessThan(1e-4 * Math.abs(w.loss[i]));
      let worst = 0;
      for (let i = 0; i < w.params.length; i++) worst = Math.max(worst, Math.abs(a.params[i] - w.params[i]));
      expect(worst).toBeLessThan(1e-4);
    },
  );
});
