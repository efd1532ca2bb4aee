// The ISA paths the native tests run on. (Test data, case generators and byte comparison are
// shared with every kernel provider: packages/core/test/kernel-cases.ts.)
import { initBackend, type PlanDescription, type PlanSlot, type PlanStep } from '@qbnn/core';
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
