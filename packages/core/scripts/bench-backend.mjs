#!/usr/bin/env node
// Measures, on the built @qbnn/core (run `pnpm build` first), the minimum time over several runs
// (robust to a busy machine) of: fp32 matmul 256x1024x1024 on wasm and on cpu; the conv filter
// gradient (Conv2DBackpropFilter) with qbnn's wasm kernel and tfjs-backend-cpu's; wasm's own
// Conv2D forward and Conv2DBackpropInput for comparison. Usage: node scripts/bench-backend.mjs [reps]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/index.js';

await initBackend();
const reps = Number(process.argv[2] ?? 5);

/**
 * Minimum wall time of `f` over `n` runs, in ms (after one warm-up run). Results are read outside
 * tf.tidy: a typed array returned from tf.tidy is walked element by element (~1-2 us each).
 */
function minTime(f, n) {
  f();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

function readAndDispose(t) {
  t.dataSync();
  t.dispose();
}

const out = {};
const report = (label, ms, flops) => {
  out[label] = `${ms.toFixed(1)} ms, ${(flops / ms / 1e6).toFixed(2)} GFLOPS`;
};

for (const backend of ['wasm', 'cpu']) {
  await tf.setBackend(backend);
  const a = tf.randomUniform([256, 1024]);
  const b = tf.randomUniform([1024, 1024]);
  const n = backend === 'wasm' ? reps : 1;
  if (backend === 'wasm') {
    const bt = tf.transpose(b);
    report(
      'matmul 256x1024x1024 wasm, transposeB',
      minTime(() => readAndDispose(tf.matMul(a, bt, false, true)), n),
      2 * 256 * 1024 * 1024,
    );
    bt.dispose();
  }
  report(
    `matmul 256x1024x1024 ${backend}`,
    minTime(() => readAndDispose(tf.matMul(a, b)), n),
    2 * 256 * 1024 * 1024,
  );
  tf.dispose([a, b]);
}

// A 3x3 conv, 32 -> 64 channels, stride 1, same padding, on an 8x14x14 batch.
const conv = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
const flops = 2 * 8 * 14 * 14 * 9 * 32 * 64;
for (const backend of ['wasm', 'cpu']) {
  await tf.setBackend(backend);
  const x = tf.randomUniform([8, 14, 14, 32]);
  const w = tf.randomUniform([3, 3, 32, 64]);
  const dy = tf.randomUniform([8, 14, 14, 64]);
  const n = backend === 'wasm' ? reps : 1;
  const run = (name, inputs, attrs) => () =>
    readAndDispose(tf.engine().runKernel(name, inputs, { ...conv, ...attrs }));
  report(
    `Conv2DBackpropFilter ${backend}${backend === 'wasm' ? ' (qbnn)' : ''}`,
    minTime(run('Conv2DBackpropFilter', { x, dy }, { filterShape: [3, 3, 32, 64] }), n),
    flops,
  );
  report(
    `Conv2DBackpropInput ${backend}`,
    minTime(run('Conv2DBackpropInput', { dy, filter: w }, { inputShape: [8, 14, 14, 32] }), n),
    flops,
  );
  report(`Conv2D ${backend}`, minTime(run('Conv2D', { x, filter: w }, { dilations: 1 }), n), flops);
  tf.dispose([x, w, dy]);
}
await tf.setBackend('wasm');
console.log(JSON.stringify(out, null, 2));
