#!/usr/bin/env node
// Throughput of the native int8 convolution on the layers of the zoo models (Ferianc LeNet-5,
// ResNet-18 at widths 24/48/96/192 on 32x32 inputs) beside a vpdpbusd zmm peak measured in the
// same process, interleaved (peak, conv, peak, conv, ...); medians of CPU time of one thread.
//   node packages/native-amx/scripts/bench-conv.mjs [--isa best] [--batch 32] [--reps 15] [--only conv2]
// Needs the built package (pnpm --filter @qbnn/native-amx build).
import { parseArgs } from 'node:util';
import {
  nativeKernels as nat,
  nativeInfo,
  setIsa,
  setThreads,
  threadCpuTime,
  vpdpbusdPeakGops,
} from '../dist/index.js';

const { values } = parseArgs({
  options: {
    isa: { type: 'string', default: 'best' },
    batch: { type: 'string', default: '32' },
    reps: { type: 'string', default: '15' },
    only: { type: 'string' },
    threads: { type: 'string', default: '1' },
  },
});
setThreads(Number(values.threads));
setIsa(values.isa);
const B = Number(values.batch);
const reps = Number(values.reps);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const time = (f) => {
  const t0 = threadCpuTime();
  f();
  return threadCpuTime() - t0;
};
const timedPeak = (iters) => (iters * 1536) / time(() => vpdpbusdPeakGops(iters)) / 1e9;

// name, C, O, H (= W), k, stride, pad
const shapes = [
  ['lenet5.conv1', 1, 20, 28, 5, 1, 2],
  ['lenet5.conv2', 20, 50, 14, 5, 1, 2],
  ['resnet18.3x3.w24', 24, 24, 32, 3, 1, 1],
  ['resnet18.3x3.w48', 48, 48, 16, 3, 1, 1],
  ['resnet18.3x3.w96', 96, 96, 8, 3, 1, 1],
  ['resnet18.3x3.w192', 192, 192, 4, 3, 1, 1],
  ['resnet18.3x3s2.w48', 24, 48, 32, 3, 2, 1],
  ['resnet18.1x1s2.w48', 24, 48, 32, 1, 2, 0],
  ['resnet18.conv1', 3, 24, 32, 3, 1, 1],
];
let seed = 7;
const rnd = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const rows = [];
for (const [name, C, O, H, k, s, p] of shapes) {
  if (values.only && !name.includes(values.only)) continue;
  const x = Uint8Array.from({ length: B * C * H * H }, () => (rnd() * 256) | 0);
  const kg = C * k * k;
  const w = Int8Array.from({ length: O * kg }, () => ((rnd() * 256) | 0) - 128);
  const packed = nat.packWeights(w, O, kg, 0);
  const ho = Math.floor((H + 2 * p - k) / s) + 1;
  const args = {
    x,
    xShape: [B, C, H, H],
    xScale: 0.02,
    xZeroPoint: 3,
    w: packed,
    wShape: [O, C, k, k],
    wScale: 0.01,
    stride: [s, s],
    padding: [p, p],
    output: { kind: 'u8', scale: 40, zeroPoint: 0, relu: true },
    out: new Uint8Array(B * O * ho * ho),
  };
  const ops = 2 * B * O * ho * ho * kg;
  const burst = Math.max(1, Math.round(2e9 / ops));
  const peakIters = Math.max(200_000, Math.round((burst * ops) / 1536));
  const peaks = [];
  const rates = [];
  nat.qconv2d(args);
  for (let r = 0; r < reps; r++) {
    peaks.push(timedPeak(peakIters));
    rates.push(
      (burst * ops) /
        time(() => {
          for (let i = 0; i < burst; i++) nat.qconv2d(args);
        }) /
        1e9,
    );
  }
  const peak = median(peaks);
  const gops = median(rates);
  rows.push({
    layer: name,
    shape: `${B}x${C}x${H}x${H} -> ${O}, ${k}x${k}/${s}`,
    gops: +gops.toFixed(1),
    peak: +peak.toFixed(1),
    share: +(gops / peak).toFixed(3),
  });
}
console.log(
  JSON.stringify({
    isa: nativeInfo().isa,
    batch: B,
    threads: Number(values.threads),
    rate: 'per core, CPU time',
  }),
);
console.table(rows);
