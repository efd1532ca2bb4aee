// The global average pool step of a native plan (plan.cc gapAvx512: 8 planes at a time, then the
// scalar loop) against the contract's formula in float64: clamp(roundHalfEven(sum(a - zp) / hw)
// + zp, 0, 255). A hand-built plan quantises its input to u8 (scale 1: the values themselves),
// pools it and returns the pooled values as logits through an identity linear layer.
import { roundHalfEven } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, setThreads } from '../src/index.js';
import { oneStepPlan, runPlanOnce } from './helpers.js';

function expected(values: Uint8Array, batch: number, channels: number, hw: number, zp: number): number[] {
  const out: number[] = [];
  for (let pl = 0; pl < batch * channels; pl++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += values[pl * hw + i] - zp;
    out.push(Math.min(255, Math.max(0, roundHalfEven(s / hw) + zp)));
  }
  return out;
}

/** The plan's global average pool of `values` ([batch][channels][hw] u8), as numbers. */
function planGap(values: Uint8Array, batch: number, channels: number, hw: number, zp: number): number[] {
  const desc = oneStepPlan(channels * hw, channels, (slot) => ({
    op: 'globalAvgPool',
    in: slot(0),
    out: slot(1),
    channels,
    hw,
    zeroPoint: zp,
  }));
  return runPlanOnce(desc, values, batch);
}

/** Seeded u8 values (an LCG), so a failure reproduces. */
function randomU8(count: number, seed: number): Uint8Array {
  const out = new Uint8Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

describe.skipIf(!nativeAvailable)('plan global average pool equals the float64 contract', () => {
  afterAll(() => setThreads(2));

  test('plane sizes below, at and above a vector (tails), zero points, plane counts not a multiple of 8', () => {
    setThreads(1);
    for (const [hw, channels, batch, zp] of [
      [16, 13, 2, 0], // ResNet-18's 4x4: ties at every sum = 8 mod 16; 26 planes = 3 x 8 + 2
      [16, 8, 3, 131],
      [7, 9, 1, 200],
      [64, 5, 4, 17],
      [100, 3, 3, 255],
      [1, 17, 1, 3],
    ]) {
      const values = randomU8(batch * channels * hw, hw * 1000 + zp);
      const want = expected(values, batch, channels, hw, zp);
      expect(planGap(values, batch, channels, hw, zp), `hw ${hw} zp ${zp}`).toEqual(want);
    }
  });

  test('ties round to even, clamps at 0 and 255', () => {
    setThreads(1);
    // 16 planes of 16 values whose sums (zero point 0) are 8, 24, 40, ..., 248: averages 0.5,
    // 1.5, ..., 15.5, each a tie (half of them round down); then planes at the clamps.
    const hw = 16;
    const ties = new Uint8Array(16 * hw);
    for (let p = 0; p < 16; p++) {
      const sum = 16 * p + 8;
      for (let i = 0; i < hw; i++) ties[p * hw + i] = Math.floor(sum / hw) + (i < sum % hw ? 1 : 0);
    }
    const got = planGap(ties, 1, 16, hw, 0);
    expect(got).toEqual(Array.from({ length: 16 }, (_, p) => roundHalfEven(p + 0.5)));
    expect(got.slice(0, 4)).toEqual([0, 2, 2, 4]);
    // zero point 250: all 255 -> 255; zero point 10, all 0 -> average -10 + 10 = 0
    const high = new Uint8Array(8 * hw).fill(255);
    expect(planGap(high, 1, 8, hw, 250)).toEqual(new Array(8).fill(255));
    expect(planGap(new Uint8Array(8 * hw), 1, 8, hw, 10)).toEqual(new Array(8).fill(0));
  });
});
