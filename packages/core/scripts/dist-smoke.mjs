#!/usr/bin/env node
// Plain-node smoke test of the built @qbnn/core (run after `pnpm build`): the tfjs bootstrap from
// dist/ picks wasm, and a conv gradient (through the Conv2DBackpropFilter kernel qbnn adds) equals
// central finite differences of the same tfjs forward pass. Prints one JSON line; exits 1 on failure.
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/index.js';

// One tfjs-core instance: the ESM import is the CommonJS main that the backends require.
const require = createRequire(import.meta.url);
const wasmRequire = createRequire(require.resolve('@tensorflow/tfjs-backend-wasm'));
const oneInstance =
  require('@tensorflow/tfjs-core').engine === tf.engine &&
  wasmRequire('@tensorflow/tfjs-core').engine === tf.engine;

const info = await initBackend();
const x = tf.tensor4d(
  Array.from({ length: 2 * 5 * 5 * 2 }, (_, i) => Math.sin(i * 1.3)),
  [2, 5, 5, 2],
);
const w0 = Array.from({ length: 3 * 3 * 2 * 3 }, (_, i) => Math.cos(i * 0.7) * 0.5);
const loss = (w) => tf.sum(tf.square(tf.conv2d(x, w, 2, 'same')));
const g = tf
  .grad(loss)(tf.tensor4d(w0, [3, 3, 2, 3]))
  .dataSync();
// Central differences in float32 through tfjs: loose but independent of the backward kernels.
let err = 0;
let scale = 0;
const h = 1e-2;
for (let i = 0; i < w0.length; i++) {
  const at = (d) => {
    const w = w0.slice();
    w[i] += d;
    return tf.tidy(() => loss(tf.tensor4d(w, [3, 3, 2, 3])).dataSync()[0]);
  };
  const fd = (at(h) - at(-h)) / (2 * h);
  err = Math.max(err, Math.abs(fd - g[i]));
  scale = Math.max(scale, Math.abs(fd));
}
const chained = typeof tf.scalar(1).square === 'function';
const relErr = err / scale;
const ok =
  oneInstance &&
  chained &&
  info.backend === 'wasm' &&
  info.kernelsAdded.includes('Conv2DBackpropFilter') &&
  relErr < 1e-2;
console.log(
  JSON.stringify({
    ok,
    oneInstance,
    chained,
    backend: info.backend,
    gradientCount: info.gradientCount,
    relErr,
  }),
);
process.exit(ok ? 0 : 1);
