// The ISA paths the native tests run on. (Test data, case generators and byte comparison are
// shared with every kernel provider: packages/core/test/kernel-cases.ts.)
import {
  initBackend,
  type PackedWeights,
  type PlanDescription,
  type PlanSlot,
  type PlanStep,
  QbnnError,
  type QConv2dArgs,
  qpool2d,
  referenceKernels,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { enableNativeFloatKernels, nativeInfo, nativeKernels, setThreads } from '../src/index.js';

/** Every path this machine can run (real AMX when the CPU has it, the emulated tiles always). */
export function paths(): string[] {
  return nativeInfo()?.available ?? [];
}

/**
 * In a describe block: the wasm backend with the native fp32 kernels installed before its tests,
 * and the default 2 threads and the wasm backend back after them.
 */
export function withNativeFloatKernels(): void {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    expect(enableNativeFloatKernels().active).toBe(true);
  });
  afterAll(async () => {
    setThreads(2);
    await tf.setBackend('wasm');
  });
}

/** Whether two float32 arrays hold the same bits (NaN payloads and signed zeros included). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((w, i) => w === y[i]);
}

/**
 * A plan layer that returns its n u8 inputs as float32 logits (identity weights, multiplier 1,
 * zero points 0): hand-built plans end with it to read a step's bytes.
 */
export function identityLayer(n: number): PlanDescription['layers'][number] {
  const eye = new Int8Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  return {
    op: 'linear',
    n,
    k: n,
    inSize: n,
    outSize: n,
    inZeroPoint: 0,
    output: { kind: 'f32' },
    weights: {
      kind: 'sets',
      sets: [{ packed: nativeKernels.packWeights(eye, n, n, 0), mult: new Float64Array(n).fill(1) }],
      cycle: false,
    },
  };
}

/**
 * A plan that quantises its input (scale 1, zero point 0: values 0..255 stay themselves) into
 * task slot 0, runs `step` (reading slot 0, writing `outSize` values to slot 1) and returns slot 1
 * as logits through {@link identityLayer}.
 */
export function oneStepPlan(
  inputSize: number,
  outSize: number,
  step: (slot: (index: number) => PlanSlot) => PlanStep,
): PlanDescription {
  const slot = (index: number) => ({ shared: false, index });
  const steps: PlanStep[] = [
    { op: 'quantize', out: slot(0), scale: 1, zeroPoint: 0, qmax: 255 },
    step(slot),
    { op: 'layer', layer: 0, in: slot(1), out: slot(2) },
  ];
  return {
    inputSize,
    classes: outSize,
    taskSlots: [inputSize, outSize, 4 * outSize],
    sharedSlots: [],
    steps,
    sharedSteps: steps.map(() => false),
    layers: [identityLayer(outSize)],
    output: slot(2),
  };
}

/** Runs a hand-built plan once (one Monte Carlo sample) on x ([batch][inputSize]); its logits. */
export function runPlanOnce(desc: PlanDescription, x: Float64Array | Uint8Array, batch: number): number[] {
  const plan = nativeKernels.createPlan?.(desc);
  if (!plan) throw new Error('the native provider has no plans');
  try {
    const keys = new Uint32Array(8 * desc.layers.length);
    const scalars = new Float64Array(2 * desc.layers.length);
    return [...plan.run({ x: Float64Array.from(x), batch, samples: 1, keys, scalars })];
  } finally {
    plan.dispose();
  }
}

/** Deterministic integers in [lo, hi] (a small LCG). */
export function ints(seed: number, n: number, lo: number, hi: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}

/** A u8 convolution (stride 1) whose output a 2x2 max pool reads, as a plan describes it. */
export interface ConvPoolLayer {
  c: number;
  o: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  pad: number;
  dil: number;
  packed: PackedWeights;
  mult: Float64Array;
  zo: number;
  relu: boolean;
  /** Convolution groups (default 1): `packed` then holds [o, c / groups * kh * kw]. */
  groups?: number;
}

/**
 * A plan that quantises its input (scale 1, zero point 0), runs the convolution, then the pool
 * (which the plan folds into it) and returns the pooled bytes as logits through
 * {@link identityLayer}.
 */
export function convPoolPlan(l: ConvPoolLayer): PlanDescription {
  const { c, o, h, w, kh, kw, pad, dil } = l;
  const groups = l.groups ?? 1;
  const ho = h + 2 * pad - dil * (kh - 1);
  const wo = w + 2 * pad - dil * (kw - 1);
  const pooled = o * Math.floor(ho / 2) * Math.floor(wo / 2);
  const slot = (index: number) => ({ shared: false, index });
  const steps: PlanStep[] = [
    { op: 'quantize', out: slot(0), scale: 1, zeroPoint: 0, qmax: 255 },
    { op: 'layer', layer: 0, in: slot(0), out: slot(1) },
    {
      op: 'pool',
      in: slot(1),
      out: slot(2),
      kind: 'max',
      shape: [o, ho, wo],
      kernel: [2, 2],
      stride: [2, 2],
      padding: [0, 0],
      zeroPoint: l.zo,
    },
    { op: 'layer', layer: 1, in: slot(2), out: slot(3) },
  ];
  return {
    inputSize: c * h * w,
    classes: pooled,
    taskSlots: [c * h * w, o * ho * wo, pooled, 4 * pooled],
    sharedSlots: [],
    steps,
    sharedSteps: steps.map(() => false),
    layers: [
      {
        op: 'conv2d',
        n: o,
        k: (c / groups) * kh * kw,
        inSize: c * h * w,
        outSize: o * ho * wo,
        inZeroPoint: 0,
        conv: {
          input: [c, h, w],
          wShape: [o, c / groups, kh, kw],
          stride: [1, 1],
          padding: [pad, pad],
          dilation: [dil, dil],
          ...(groups > 1 ? { groups } : {}),
        },
        output: { kind: 'u8', zeroPoint: l.zo, relu: l.relu, qmax: 255 },
        weights: { kind: 'sets', sets: [{ packed: l.packed, mult: l.mult }], cycle: false },
      },
      identityLayer(pooled),
    ],
    output: slot(3),
  };
}

/**
 * Per channel, a multiplier that puts one pooled (2x2 window maximum) sum v of `sums` (int32
 * convolution outputs [batch][o][ho][wo]) just above a half-integer in float64 while the float32
 * fma fl32(v) fl32(m) + zo lands just below it: a pooled requantisation must take that vector to
 * float64. Sums below `minSum` are passed over. Undefined for a channel where none was found.
 */
export function pooledTieMultipliers(
  sums: Int32Array,
  [batch, o, ho, wo]: [number, number, number, number],
  zo: number,
  minSum: number,
): (number | undefined)[] {
  const f32 = (v: number, m: number) => Math.fround(Math.fround(v) * Math.fround(m) + zo);
  const ph = Math.floor(ho / 2);
  const pw = Math.floor(wo / 2);
  return Array.from({ length: o }, (_, oc) => {
    for (let i = 0; i < batch * ph * pw; i++) {
      const b = Math.floor(i / (ph * pw));
      const y = Math.floor((i % (ph * pw)) / pw);
      const c = i % pw;
      const at = (yy: number, cc: number) => sums[((b * o + oc) * ho + yy) * wo + cc];
      const v = Math.max(
        at(2 * y, 2 * c),
        at(2 * y, 2 * c + 1),
        at(2 * y + 1, 2 * c),
        at(2 * y + 1, 2 * c + 1),
      );
      if (v < minSum) continue;
      for (let h = 200 - zo; h < 255 - zo; h++) {
        let m = (h + 0.5) / v;
        for (let k = 0; k < 8 && v * m <= h + 0.5; k++) m *= 1 + 2 ** -52;
        const p = v * m;
        if (p > h + 0.5 && p - (h + 0.5) < 2 ** -20 && f32(v, m) < h + 0.5 + zo) return m;
      }
    }
    return undefined;
  });
}

/**
 * The JS kernels one by one, as a fused-pool plan must equal them: core's qconv2d to u8 (the
 * convolution `convArgs` with multipliers `mult`), then qpool2d's 2x2 max pool; `dims` is the
 * convolution's output [batch, o, ho, wo].
 */
export function convThenPool(
  convArgs: Omit<QConv2dArgs, 'wScale' | 'output'>,
  dims: [number, number, number, number],
  mult: Float64Array,
  zo: number,
  relu: boolean,
): number[] {
  const conv = referenceKernels.qconv2d({
    ...convArgs,
    wScale: mult,
    output: { kind: 'u8', scale: 1, zeroPoint: zo, relu },
  });
  return [
    ...qpool2d({ x: conv as Uint8Array, xShape: dims, zeroPoint: zo, pool: { kind: 'max', kernel: [2, 2] } }),
  ];
}

/** `fn` throws a QbnnError ERR_ARG whose message matches `what` (the argument it names). */
export function expectArgError(fn: () => unknown, what: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, String(what)).toBeInstanceOf(QbnnError);
  expect((err as QbnnError).code).toBe('ERR_ARG');
  expect((err as Error).message).toMatch(what);
}
