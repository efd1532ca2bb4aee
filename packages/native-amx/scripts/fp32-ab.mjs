#!/usr/bin/env node
// Same-process A/B of two builds of the addon on the fp32 kernels of LeNet-5's float MC predict
// (batch 32): the fused conv + bias + ReLU + 2x2 max pool of conv1 and conv2, conv2 alone and its
// input gradient, fc1's x W^T (W [500, 2450] rewritten before every call, as the weight sampler
// leaves it) and the Gaussian weight sampler over fc1's 1.225 M weights. As conv-ab.mjs: both
// addons loaded side by side, calls alternating round by round (A first in even rounds), each round
// a burst timed in thread CPU time on one thread; B / A is the median of the rounds' ratios, the
// share is of the FMA peak measured after the rounds; `diff` counts output bytes that differ.
//   node packages/native-amx/scripts/fp32-ab.mjs --a old.node --b build/Release/qbnn_native.node \
//     [--cases conv1.pool,fc1] [--rounds 21]
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: new URL('../build/Release/qbnn_native.node', import.meta.url).pathname },
    cases: { type: 'string', default: '' },
    rounds: { type: 'string', default: '21' },
  },
});
if (!values.a) {
  console.error('fp32-ab: --a <addon.node> is required (the build to compare against)');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const addons = [require(resolve(values.a)), require(resolve(values.b))];
for (const a of addons) a.setThreads(1);
const rounds = Number(values.rounds);
const median = (v) => [...v].sort((p, q) => p - q)[v.length >> 1];
let seed = 12345;
const floats = (n) =>
  Float32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  });

const B = 32;
/** A 5x5 stride-1 padding-2 convolution of LeNet-5 on `ci` channels of h x h into `co` channels. */
function conv(ci, h, co, kind) {
  const geometry = Int32Array.from([B, h, h, ci, h, h, co, 5, 5, 1, 1, 1, 1, 2, 2]);
  const x = floats(B * ci * h * h);
  const filter = floats(25 * ci * co);
  const bias = floats(co);
  const dy = floats(B * co * h * h);
  const pooled = (B * co * h * h) / 4;
  return {
    flops: 2 * B * h * h * co * ci * 25,
    outputs: () =>
      kind === 'pool'
        ? [new Float32Array(pooled), new Int32Array(Math.ceil(pooled / 4))]
        : [new Float32Array(B * (kind === 'dx' ? ci : co) * h * h)],
    call: (f, [y, at]) => {
      if (kind === 'pool') f.conv2dNchwReluMaxPool(x, filter, y, at, geometry, bias);
      else if (kind === 'plain') f.conv2dNchw(x, filter, y, geometry, null);
      else f.conv2dNchwBackpropInput(dy, filter, y, geometry);
    },
  };
}

function fc1() {
  const [M, K, N] = [B, 2450, 500];
  const x = floats(M * K);
  const source = floats(N * K);
  const w = new Float32Array(N * K);
  const dims = Int32Array.from([1, 1, M, K, N, 0, 1]);
  return {
    flops: 2 * M * N * K,
    outputs: () => [new Float32Array(M * N)],
    before: () => w.set(source),
    call: (f, [y]) => f.matmul(x, w, y, dims, null),
  };
}

function sampler() {
  const n = 1225000;
  const mu = floats(n);
  const sigma = floats(n).map((v) => Math.abs(v) * 0.1);
  return {
    flops: 0,
    outputs: () => [new Float32Array(n)],
    call: (f, [w]) => f.normalLocScale(7, 11, 4096, w, mu, sigma),
  };
}

const CASES = {
  'conv1.pool': () => conv(1, 28, 20, 'pool'),
  'conv2.pool': () => conv(20, 14, 50, 'pool'),
  conv2: () => conv(20, 14, 50, 'plain'),
  'conv2.dx': () => conv(20, 14, 50, 'dx'),
  fc1,
  sampler,
};
const wanted = values.cases ? values.cases.split(',') : Object.keys(CASES);
for (const name of wanted) {
  if (!CASES[name]) {
    console.error(`fp32-ab: unknown case ${name} (cases: ${Object.keys(CASES).join(', ')})`);
    process.exit(2);
  }
  const c = CASES[name]();
  const outs = addons.map(() => c.outputs());
  const burst = (i, calls) => {
    let t = 0;
    for (let k = 0; k < calls; k++) {
      c.before?.();
      const t0 = addons[i].threadCpuTime();
      c.call(addons[i].fp32, outs[i]);
      t += addons[i].threadCpuTime() - t0;
    }
    return t / calls;
  };
  const times = [[], []];
  for (let r = 0; r < 2; r++) for (const i of [0, 1]) burst(i, 2);
  for (let r = 0; r < rounds; r++) for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) times[i].push(burst(i, 8));
  let diff = 0;
  for (let j = 0; j < outs[0].length; j++) {
    const p = new Uint8Array(outs[0][j].buffer);
    const q = new Uint8Array(outs[1][j].buffer);
    for (let e = 0; e < p.length; e++) if (p[e] !== q[e]) diff++;
  }
  const peak = median([0, 1, 2].map(() => addons[1].fp32.peak()));
  const share = (i) => (c.flops ? `${((c.flops / median(times[i]) / 1e9 / peak) * 100).toFixed(1)}%` : '-');
  const ratios = times[0].map((t, r) => times[1][r] / t);
  console.log(
    `${name.padEnd(11)} A ${(median(times[0]) * 1e3).toFixed(3)} ms  B ${(median(times[1]) * 1e3).toFixed(3)} ms  ` +
      `B/A ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)})  ` +
      `share of the FMA peak A ${share(0)} B ${share(1)} (peak ${peak.toFixed(0)} GFLOPS)  diff ${diff}`,
  );
}
