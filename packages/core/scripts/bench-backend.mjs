#!/usr/bin/env node
// Measures, once, on the built @qbnn/core (run `pnpm build` first): fp32 matmul 256x1024x1024 on
// wasm and on cpu, and Conv2DBackpropFilter on wasm (qbnn's im2col + wasm matmul) against
// tfjs-backend-cpu's kernel (what delegation would cost). Timings drift on a busy machine: read
// the ratios.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/index.js';

await initBackend();

function time(f, reps, warmUp = true) {
  if (warmUp) f();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  const ms = (performance.now() - t0) / reps;
  return ms;
}

const results = {};
for (const backend of ['wasm', 'cpu']) {
  await tf.setBackend(backend);
  const a = tf.randomUniform([256, 1024]);
  const b = tf.randomUniform([1024, 1024]);
  const ms = time(() => tf.tidy(() => tf.matMul(a, b).dataSync()), backend === 'wasm' ? 10 : 1);
  results[`matmul 256x1024x1024 ${backend}`] =
    `${ms.toFixed(1)} ms, ${((2 * 256 * 1024 * 1024) / ms / 1e6).toFixed(1)} GFLOPS`;
  tf.dispose([a, b]);

  // The filter gradient of a 3x3 conv, 32 -> 64 channels, on an 8x14x14 batch (MNIST-like).
  const x = tf.randomUniform([8, 14, 14, 32]);
  const dy = tf.randomUniform([8, 14, 14, 64]);
  const msConv = time(
    () =>
      tf.tidy(() =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x, dy },
            {
              strides: [1, 1],
              pad: 'same',
              dataFormat: 'NHWC',
              dimRoundingMode: undefined,
              filterShape: [3, 3, 32, 64],
            },
          )
          .dataSync(),
      ),
    backend === 'wasm' ? 5 : 1,
    backend === 'wasm',
  );
  const flops = 2 * 8 * 14 * 14 * 9 * 32 * 64;
  results[`Conv2DBackpropFilter 8x14x14x32 -> 3x3x32x64 ${backend}`] =
    `${msConv.toFixed(1)} ms, ${(flops / msConv / 1e6).toFixed(1)} GFLOPS`;
  tf.dispose([x, dy]);
}
await tf.setBackend('wasm');
console.log(JSON.stringify(results, null, 2));
