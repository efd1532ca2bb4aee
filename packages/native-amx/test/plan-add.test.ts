// The residual add step of a native plan (plan.cc addAvx512: float32 where exact, else float64)
// against the contract's formula in float64: clamp(roundHalfEven((a - za) ma + (b - zb) mb) + z,
// lo, hi). A hand-built plan quantises the input 0..255 to u8 (scale 1), adds it to itself and
// returns the sums as logits through an identity linear layer (f32 output, multiplier 1).
import { type PlanStep, roundHalfEven } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, setThreads } from '../src/index.js';
import { identityLayer, oneStepPlan, runPlanOnce } from './helpers.js';

const N = 256;

/** The add step's parameters (zero points, multipliers, output zero point and clamp). */
type AddParams = Omit<Extract<PlanStep, { op: 'add' }>, 'op' | 'a' | 'b' | 'out' | 'size'>;

function expected(p: AddParams, a: number): number {
  const v = (a - p.za) * p.ma + (a - p.zb) * p.mb;
  return Math.min(p.hi, Math.max(p.lo, roundHalfEven(v) + p.z));
}

/** The plan's add of every u8 value with itself, as numbers. */
function planAdd(p: AddParams): number[] {
  const desc = oneStepPlan(N, N, (slot) => ({
    op: 'add',
    a: slot(0),
    b: slot(0),
    out: slot(1),
    size: N,
    ...p,
  }));
  return runPlanOnce(
    desc,
    Float64Array.from({ length: N }, (_, i) => i),
    1,
  );
}

/**
 * The plan's add of x with b = max(x, zr) (a ReLU step at zero point zr: every x below zr meets zr)
 * for x in 0..255, as numbers: pairs off the diagonal, in blocks of 64.
 */
function planAddRelu(p: AddParams, zr: number): number[] {
  const slot = (index: number) => ({ shared: false, index });
  const steps: PlanStep[] = [
    { op: 'quantize', out: slot(0), scale: 1, zeroPoint: 0, qmax: 255 },
    { op: 'relu', in: slot(0), out: slot(1), size: N, zeroPoint: zr },
    { op: 'add', a: slot(0), b: slot(1), out: slot(2), size: N, ...p },
    { op: 'layer', layer: 0, in: slot(2), out: slot(3) },
  ];
  const desc = {
    inputSize: N,
    classes: N,
    taskSlots: [N, N, N, 4 * N],
    sharedSlots: [],
    steps,
    sharedSteps: steps.map(() => false),
    layers: [identityLayer(N)],
    output: slot(3),
  };
  return runPlanOnce(
    desc,
    Float64Array.from({ length: N }, (_, i) => i),
    1,
  );
}

/**
 * A multiplier ma (mb = 0, za = zb = 0) and a value a whose float64 product a ma lies just above
 * a half-integer h + 1/2 while the float32 fma a fl32(ma) + z lies below it (not on it): the
 * float32 path rounds it down unless its error margin sends the block to float64.
 */
function crafted(z: number): { ma: number; a: number } {
  const f32 = (a: number, m: number) => Math.fround(a * Math.fround(m) + z);
  for (let a = 255; a > 100; a--)
    for (let h = 200 - z; h < 255 - z; h++) {
      let ma = (h + 0.5) / a;
      for (let k = 0; k < 8 && a * ma <= h + 0.5; k++) ma *= 1 + 2 ** -52;
      const p = a * ma;
      if (p > h + 0.5 && p - (h + 0.5) < 2 ** -20 && f32(a, ma) < h + 0.5 + z) return { ma, a };
    }
  throw new Error('no crafted multiplier');
}

describe.skipIf(!nativeAvailable)('plan residual add equals the float64 contract', () => {
  afterAll(() => setThreads(2));

  test('float32 lands on the wrong side of a rounding half: the float64 result', () => {
    for (const [z, relu] of [
      [3, false],
      [0, true],
    ] as const) {
      const { ma, a } = crafted(z);
      const p: AddParams = { za: 0, zb: 0, ma, mb: 0, z, lo: relu ? z : 0, hi: 255 };
      const got = planAdd(p);
      expect(got[a], `a = ${a}`).toBe(expected(p, a));
      expect(got).toEqual(Array.from({ length: N }, (_, i) => expected(p, i)));
    }
  });

  test('zero points, both multipliers, ReLU, a low-bit grid, ties, a multiplier too large for float32', () => {
    const cases: AddParams[] = [
      { za: 17, zb: 200, ma: 0.731, mb: 0.419, z: 9, lo: 0, hi: 255 },
      { za: 128, zb: 3, ma: 0.5, mb: 0.25, z: 100, lo: 100, hi: 255 },
      { za: 0, zb: 0, ma: 0.5, mb: 0.5, z: 0, lo: 0, hi: 15 },
      { za: 40, zb: 90, ma: 1.3, mb: -2.1, z: 128, lo: 0, hi: 255 },
      { za: 5, zb: 6, ma: 1e-30, mb: 3e5, z: 1, lo: 0, hi: 255 },
      // a ResNet-18 block's add (its float32 form checked exact for every byte pair: no tie check)
      { za: 126, zb: 122, ma: 0.7383531276578459, mb: 2.2814352202578925, z: 0, lo: 0, hi: 255 },
    ];
    for (const p of cases)
      expect(planAdd(p), JSON.stringify(p)).toEqual(Array.from({ length: N }, (_, i) => expected(p, i)));
  });

  test('two different operands (a ReLU of the input), float32 exact or not', () => {
    const cases: AddParams[] = [
      { za: 126, zb: 122, ma: 0.7383531276578459, mb: 2.2814352202578925, z: 0, lo: 0, hi: 255 },
      { za: 129, zb: 0, ma: 0.22482183026972516, mb: 0.9290326554996009, z: 7, lo: 7, hi: 255 },
      { za: 17, zb: 200, ma: 0.731, mb: 0.419, z: 9, lo: 0, hi: 255 },
    ];
    for (const p of cases)
      for (const zr of [0, 77, 200]) {
        const want = Array.from({ length: N }, (_, x) => {
          const v = (x - p.za) * p.ma + (Math.max(x, zr) - p.zb) * p.mb;
          return Math.min(p.hi, Math.max(p.lo, roundHalfEven(v) + p.z));
        });
        expect(planAddRelu(p, zr), `${JSON.stringify(p)} zr ${zr}`).toEqual(want);
      }
  });
});
