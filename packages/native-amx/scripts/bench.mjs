#!/usr/bin/env node
// Throughput of the native kernels beside a vpdpbusd peak measured in the same process, both
// interleaved (peak, kernel, peak, kernel, ...) so machine noise hits both alike; medians.
// Rates are per second of CPU time (one thread: the calling thread's CLOCK_THREAD_CPUTIME_ID;
// several: process.cpuUsage summed over threads, so a rate per core), which on a shared machine
// excludes the time other processes hold the cores; `--wall` uses wall-clock time instead (total
// rate). `vsPeak` divides by the peak of one core (CPU time) or of all threads (wall clock).
//   node packages/native-amx/scripts/bench.mjs [--threads 1] [--isa best] [--reps 31]
// Needs the built package (pnpm --filter @qbnn/native-amx build).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { referenceKernels } from '@qbnn/core';
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
    threads: { type: 'string', default: '1' },
    isa: { type: 'string', default: 'best' },
    reps: { type: 'string', default: '31' },
    m: { type: 'string', default: '256' },
    n: { type: 'string', default: '1024' },
    k: { type: 'string', default: '1024' },
    'gemm-only': { type: 'boolean', default: false },
    wall: { type: 'boolean', default: false },
    burst: { type: 'string', default: '4' },
  },
});
const threads = Number(values.threads);
const reps = Number(values.reps);
const burst = Number(values.burst);
setThreads(threads);
setIsa(values.isa);
const info = nativeInfo();
const M = Number(values.m);
const N = Number(values.n);
const K = Number(values.k);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const cpuSeconds = () => {
  if (threads === 1) return threadCpuTime();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const time = (f) => {
  if (values.wall) {
    const t0 = performance.now();
    f();
    return (performance.now() - t0) / 1000;
  }
  const t0 = cpuSeconds();
  f();
  return cpuSeconds() - t0;
};
// 12 vpdpbusd zmm per iteration, 16 lanes x 4 multiply-adds x 2 ops each.
const timedPeak = (iters) => (iters * 1536) / time(() => vpdpbusdPeakGops(iters)) / 1e9;

let seed = 1;
const rnd = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const a = Uint8Array.from({ length: M * K }, () => (rnd() * 256) | 0);
const w = Int8Array.from({ length: N * K }, () => ((rnd() * 256) | 0) - 128);
const p = nat.packWeights(w, N, K, 0);
const outs = {
  i32: { output: { kind: 'i32' }, out: new Int32Array(M * N) },
  u8: { output: { kind: 'u8', scale: 1000, zeroPoint: 5 }, out: new Uint8Array(M * N) },
};
// Peak iterations sized to last about as long as one GEMM at peak (ops = iters * 1536).
const gemmOps = 2 * M * N * K;
const peakIters = Math.max(1_000_000, Math.round((Number(values.burst) * gemmOps) / 1536));
const perThreadPeak = [];
const results = {};
for (const [name, o] of Object.entries(outs)) {
  const g = [];
  for (let r = 0; r < reps; r++) {
    perThreadPeak.push(timedPeak(peakIters));
    // A burst of `burst` GEMMs (steady state, as in repeated inference), timed together.
    const args = { a, m: M, aScale: 0.1, aZeroPoint: 3, w: p, wScale: 0.01, ...o };
    g.push(
      (burst * gemmOps) /
        time(() => {
          for (let i = 0; i < burst; i++) nat.qgemm(args);
        }) /
        1e9,
    );
  }
  results[name] = median(g);
}
const peak1 = median(perThreadPeak);
const peakCores = values.wall ? threads : 1;
if (values['gemm-only']) {
  console.log(
    JSON.stringify({
      isa: info.isa,
      threads,
      shape: `${M}x${N}x${K}`,
      peak: +peak1.toFixed(1),
      i32: +results.i32.toFixed(1),
      u8: +results.u8.toFixed(1),
      rate: values.wall ? 'total, wall clock' : 'per core, CPU time',
      i32VsPeak: +(results.i32 / (peak1 * peakCores)).toFixed(3),
      u8VsPeak: +(results.u8 / (peak1 * peakCores)).toFixed(3),
    }),
  );
  process.exit(0);
}

// Quantised normal and fused sampler rates.
const qn = new Int8Array(1 << 24);
const qs = [];
for (let r = 0; r < Math.min(reps, 9); r++)
  qs.push(qn.length / time(() => nat.qnormal({ key: [1, 2], position: r, out: qn })) / 1e9);
const SN = 1024;
const SK = 4096;
const mu = Int8Array.from({ length: SN * SK }, () => ((rnd() * 256) | 0) - 128);
const sigma = Uint8Array.from({ length: SN * SK }, () => (rnd() * 256) | 0);
const z = new Int32Array(SN);
const m1 = new Float64Array(SN).fill(0.03);
const m2 = new Float64Array(SN).fill(0.9);
const m3 = new Float64Array(SN).fill(0.1);
const sargs = {
  mu,
  muZeroPoint: z,
  sigma,
  sigmaZeroPoint: z,
  noiseZeroPoint: z,
  weightZeroPoint: z,
  m1,
  m2,
  m3,
  n: SN,
  k: SK,
  bits: 8,
  key: [3, 4],
  position: 0,
};
const ss = [];
for (let r = 0; r < Math.min(reps, 9); r++) {
  let pk;
  ss.push((SN * SK) / time(() => (pk = nat.sampleGaussianPacked({ ...sargs, position: r * 1e7 }))) / 1e9);
  pk.dispose();
}
// The JS reference on a small GEMM, for scale.
const ms = Math.min(64, M);
const ns = Math.min(256, N);
const aj = a.subarray(0, ms * K);
const pj = referenceKernels.packWeights(w.subarray(0, ns * K), ns, K, 0);
const tj = time(() =>
  referenceKernels.qgemm({
    a: aj,
    m: ms,
    aScale: 0.1,
    aZeroPoint: 3,
    w: pj,
    wScale: 0.01,
    output: { kind: 'i32' },
  }),
);

const line = {
  isa: info.isa,
  threads,
  shape: `${M}x${N}x${K}`,
  reps,
  vpdpbusdPeakGopsPerThread: +peak1.toFixed(1),
  gemmI32Gops: +results.i32.toFixed(1),
  gemmU8Gops: +results.u8.toFixed(1),
  rate: values.wall ? 'total, wall clock' : 'per core, CPU time',
  i32VsPeak: +(results.i32 / (peak1 * peakCores)).toFixed(3),
  u8VsPeak: +(results.u8 / (peak1 * peakCores)).toFixed(3),
  qnormalGSamplesPerS: +median(qs).toFixed(2),
  fusedSampleGWeightsPerS: +median(ss).toFixed(2),
  jsReferenceGops: +((2 * ms * ns * K) / tj / 1e9).toFixed(2),
};
console.log(JSON.stringify(line, null, 2));
