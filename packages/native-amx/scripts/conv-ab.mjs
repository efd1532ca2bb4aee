#!/usr/bin/env node
// Same-process A/B of two builds of the addon on the zoo's convolution layers: both addons are
// loaded side by side (e.g. one built from an earlier commit's native sources, copied away before
// rebuilding) and their calls alternate round by round, A first in even rounds and B first in odd
// ones, so the machine's drift hits both alike. Each round times a burst of raw addon calls (no
// JS argument checks) in thread CPU time, one thread; the ratio is the median of the rounds' B / A
// time ratios, the shares are of a vpdpbusd peak measured after the rounds. Outputs of A and B are
// compared (`diff`: bytes that differ; 0 unless the builds compute different results).
//   node packages/native-amx/scripts/conv-ab.mjs --a old.node --b build/Release/qbnn_native.node \
//     [--layers s2,w24] [--rounds 41] [--batch 32] [--zw 0] [--zo 5] [--ops 5e9]
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: new URL('../build/Release/qbnn_native.node', import.meta.url).pathname },
    layers: { type: 'string', default: '' },
    rounds: { type: 'string', default: '41' },
    batch: { type: 'string', default: '32' },
    zw: { type: 'string', default: '0' },
    zo: { type: 'string', default: '5' },
    ops: { type: 'string', default: '5e9' },
  },
});
if (!values.a) {
  console.error('conv-ab: --a <addon.node> is required (the build to compare against)');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const addons = [require(resolve(values.a)), require(resolve(values.b))];
for (const a of addons) {
  a.setThreads(1);
  a.setIsa('best');
}

/** [name, C, O, H (= W), kernel, stride, pad, 2x2 max pool fused] as `pnpm bench conv` and plans. */
const LAYERS = [
  ['lenet5.conv1', 1, 20, 28, 5, 1, 2, false],
  ['lenet5.conv2', 20, 50, 14, 5, 1, 2, false],
  ['lenet5.conv1.pool', 1, 20, 28, 5, 1, 2, true],
  ['lenet5.conv2.pool', 20, 50, 14, 5, 1, 2, true],
  ['w24', 24, 24, 32, 3, 1, 1, false],
  ['w48', 48, 48, 16, 3, 1, 1, false],
  ['w96', 96, 96, 8, 3, 1, 1, false],
  ['w192', 192, 192, 4, 3, 1, 1, false],
  ['s2', 24, 48, 32, 3, 2, 1, false],
  ['1x1s2', 24, 48, 32, 1, 2, 0, false],
  ['stem', 3, 24, 32, 3, 1, 1, false],
];
const wanted = values.layers ? values.layers.split(',') : LAYERS.map((l) => l[0]);
const B = Number(values.batch);
const rounds = Number(values.rounds);
const zw = Number(values.zw);
const median = (v) => [...v].sort((p, q) => p - q)[v.length >> 1];
let seed = 12345;
const byte = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed >>> 24;
};

/** A plan: input (integers, scale 1) -> the u8 convolution -> 2x2 max pool -> 2 f32 logits. */
function poolPlan(a, c, o, h, k, s, p, ho, packed, mult, bias, wl) {
  const slot = (index) => ({ shared: false, index });
  const pooled = o * (ho >> 1) * (ho >> 1);
  const steps = [
    { op: 'quantize', out: slot(0), scale: 1, zeroPoint: 0, qmax: 255 },
    { op: 'layer', layer: 0, in: slot(0), out: slot(1) },
    {
      op: 'pool',
      in: slot(1),
      out: slot(2),
      kind: 'max',
      shape: [o, ho, ho],
      kernel: [2, 2],
      stride: [2, 2],
      padding: [0, 0],
      zeroPoint: Number(values.zo),
    },
    { op: 'layer', layer: 1, in: slot(2), out: slot(3) },
  ];
  return {
    inputSize: c * h * h,
    classes: 2,
    taskSlots: [c * h * h, o * ho * ho, pooled, 8],
    sharedSlots: [],
    steps,
    sharedSteps: steps.map(() => false),
    layers: [
      {
        op: 'conv2d',
        n: o,
        k: c * k * k,
        inSize: c * h * h,
        outSize: o * ho * ho,
        inZeroPoint: 0,
        conv: { input: [c, h, h], wShape: [o, c, k, k], stride: [s, s], padding: [p, p], dilation: [1, 1] },
        bias,
        output: { kind: 'u8', zeroPoint: Number(values.zo), relu: true, qmax: 255 },
        weights: { kind: 'sets', sets: [{ packed, mult }], cycle: false },
      },
      {
        op: 'linear',
        n: 2,
        k: pooled,
        inSize: pooled,
        outSize: 2,
        inZeroPoint: 0,
        output: { kind: 'f32' },
        weights: {
          kind: 'sets',
          sets: [{ packed: a.pack(wl, 2, pooled, new Int32Array(2)), mult: new Float64Array(2).fill(1) }],
          cycle: false,
        },
      },
    ],
    output: slot(3),
  };
}

for (const [name, c, o, h, k, s, p, pool] of LAYERS) {
  if (!wanted.includes(name)) continue;
  const kg = c * k * k;
  const ho = Math.floor((h + 2 * p - k) / s) + 1;
  const x = Uint8Array.from({ length: B * c * h * h }, byte);
  const w = Int8Array.from({ length: o * kg }, () => byte() - 128);
  const mult = Float64Array.from({ length: o }, () => 5e-6 * (1 + byte() / 256));
  const bias = Int32Array.from({ length: o }, () => byte() * 50 - 6000);
  // pooled layers: two logits of random weights over the pooled outputs (a byte that differs
  // moves them; the linear layer is ~2% of the convolution's work at LeNet-5's conv1)
  const wl = Int8Array.from({ length: pool ? 2 * o * (ho >> 1) * (ho >> 1) : 0 }, () => byte() - 128);
  const outs = [];
  const calls = addons.map((a) => {
    const packed = a.pack(w, o, kg, new Int32Array(o).fill(zw));
    const out = new Uint8Array(pool ? 8 * B : B * o * ho * ho);
    outs.push(out);
    const geometry = Int32Array.of(s, s, p, p, 1, 1, 1);
    const raw = [
      x,
      Int32Array.of(B, c, h, h),
      3,
      [packed.handle],
      Int32Array.of(o, c, k, k),
      geometry,
      bias,
      0,
      mult,
      Number(values.zo),
      true,
    ];
    if (!pool) return () => a.qconv2d(...raw, out);
    // the 2x2 max pool folded into the convolution as execution plans run it: a plan of the
    // convolution (u8), the pool and a linear layer of one logit a pooled output (f32 out)
    const plan = a.plan.create(poolPlan(a, c, o, h, k, s, p, ho, packed, mult, bias, wl));
    const xf = Float64Array.from(x);
    const logits = new Float32Array(B * 2);
    const none = new Uint32Array(16);
    const scalars = new Float64Array(4);
    return () => {
      a.plan.run(plan, xf, B, 1, none, scalars, logits, false);
      out.set(new Uint8Array(logits.buffer));
    };
  });
  for (const call of calls) call();
  let diff = 0;
  for (let i = 0; i < outs[0].length; i++) if (outs[0][i] !== outs[1][i]) diff++;
  const ops = 2 * B * o * ho * ho * kg;
  const burst = Math.max(1, Math.round(Number(values.ops) / ops));
  const times = [[], []];
  const ratios = [];
  for (let r = 0; r < rounds; r++) {
    const t = [0, 0];
    for (const i of r & 1 ? [1, 0] : [0, 1]) {
      const t0 = addons[i].threadCpuTime();
      for (let j = 0; j < burst; j++) calls[i]();
      t[i] = (addons[i].threadCpuTime() - t0) / burst;
      times[i].push(t[i]);
    }
    ratios.push(t[1] / t[0]);
  }
  const peaks = [];
  for (let r = 0; r < 7; r++) peaks.push(addons[0].peak(200000));
  const peak = median(peaks);
  const share = (i) => ((ops / median(times[i]) / 1e9 / peak) * 100).toFixed(1);
  console.log(
    `${name.padEnd(18)} A ${(median(times[0]) * 1e3).toFixed(3)} ms  B ${(median(times[1]) * 1e3).toFixed(3)} ms  ` +
      `B/A ${median(ratios).toFixed(3)}  share A ${share(0)}%  B ${share(1)}%  (peak ${peak.toFixed(0)} GOPS)  diff ${diff}`,
  );
}
