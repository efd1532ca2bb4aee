#!/usr/bin/env node
// Same-process A/B of two builds of the native addon on a whole model's execution plan (as
// packages/native-amx/scripts/conv-ab.mjs does for single convolutions): the zoo model is made
// Bayesian (Gaussian), quantised and compiled by qat into a plan on build A; the same plan
// description is created on build B, and the two run the same forward (same input, keys and
// scalars) alternately round by round (A first in even rounds, B first in odd ones), each round
// a burst timed in thread CPU time on one thread. B / A is the median of the rounds' ratios;
// `logits differing` counts the logits of B that are not bit-identical to A's (0 unless the
// builds compute different results). A and B must be different files (copy the old build aside
// before rebuilding). Needs `pnpm build` (this package's dist).
//   node apps/bench/scripts/plan-ab.mjs --a /tmp/old.node --b packages/native-amx/build/Release/qbnn_native.node \
//     [--model resnet18] [--samples 8] [--batch 32] [--mode weights] [--rounds 11] [--burst 3]
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    model: { type: 'string', default: 'resnet18' },
    samples: { type: 'string', default: '8' },
    batch: { type: 'string', default: '32' },
    mode: { type: 'string', default: 'weights' },
    rounds: { type: 'string', default: '11' },
    burst: { type: 'string', default: '3' },
  },
});
if (!values.a || !values.b) {
  console.error('plan-ab: --a <addon.node> and --b <addon.node> are required');
  process.exit(2);
}
const pathA = resolve(values.a);
const pathB = resolve(values.b);
if (pathA === pathB) {
  console.error('plan-ab: A and B must be different files (one module would serve both)');
  process.exit(2);
}
// qat's native provider loads build A (the plan it compiles is created there first)
process.env.QBNN_NATIVE_PATH = pathA;
const require = createRequire(import.meta.url);
const A = require(pathA);
const B = require(pathB);

// Every plan.create on A is repeated on B with the same description; the forward's plan.run
// arguments are kept to replay on both.
let plan;
const createA = A.plan.create;
const runA = A.plan.run;
A.plan.create = (desc) => {
  const hA = createA(desc);
  plan = { hA, hB: B.plan.create(desc), args: undefined };
  return hA;
};
A.plan.run = (h, ...args) => {
  if (plan && h === plan.hA) plan.args = args;
  return runA(h, ...args);
};

const { initBackend, QNORMAL_THRESHOLDS } = await import('@qbnn/core');
const { loadNative } = await import('../dist/native.js');
const { buildBayes, inputBatch, quantizeModel } = await import('../dist/models.js');
if (!(await loadNative())) {
  console.error('plan-ab: the native addon did not load');
  process.exit(1);
}
await initBackend({ backend: 'wasm' });
// what the provider does for its own addon at load (B is not the provider's)
B.setQnormalTable(QNORMAL_THRESHOLDS);
for (const addon of [A, B]) {
  addon.setThreads(1);
  addon.setIsa('best');
}

const model = values.model;
const samples = Number(values.samples);
const batch = Number(values.batch);
const qm = await quantizeModel(model, buildBayes(model, 'gaussian'));
const x = inputBatch(model, batch);
qm.forward(x, { samples, mode: values.mode, provider: 'native' });
if (!plan?.args) {
  console.error('plan-ab: the forward did not run a native plan');
  process.exit(1);
}
const [xs, b, l, keys, scalars, out, reduce] = plan.args;
const outs = [new Float32Array(out.length), new Float32Array(out.length)];
const calls = [
  () => runA(plan.hA, xs, b, l, keys, scalars, outs[0], reduce),
  () => B.plan.run(plan.hB, xs, b, l, keys, scalars, outs[1], reduce),
];
for (const call of calls) call();
let diff = 0;
for (let i = 0; i < out.length; i++) if (!Object.is(outs[0][i], outs[1][i])) diff++;

const rounds = Number(values.rounds);
const burst = Number(values.burst);
const median = (v) => [...v].sort((p, q) => p - q)[v.length >> 1];
const times = [[], []];
const ratios = [];
for (let r = 0; r < rounds; r++) {
  const t = [0, 0];
  for (const i of r & 1 ? [1, 0] : [0, 1]) {
    const addon = i ? B : A;
    const t0 = addon.threadCpuTime();
    for (let j = 0; j < burst; j++) calls[i]();
    t[i] = ((addon.threadCpuTime() - t0) / burst) * 1e3;
    times[i].push(t[i]);
  }
  ratios.push(t[1] / t[0]);
}
const sorted = [...ratios].sort((p, q) => p - q);
console.log(
  `${model} L${samples} b${batch} ${values.mode}: A ${median(times[0]).toFixed(2)} ms  B ${median(times[1]).toFixed(2)} ms  ` +
    `B/A ${median(ratios).toFixed(4)} (min ${sorted[0].toFixed(3)}, max ${sorted.at(-1).toFixed(3)}, ${rounds} rounds)  ` +
    `logits differing ${diff}/${out.length}`,
);
qm.dispose();
for (const addon of [A, B]) addon.plan.dispose(addon === A ? plan.hA : plan.hB);
