import { describe, expect, test } from 'vitest';
import { auroc, averagePrecision, fprAtTpr, OodAccumulator, oodMetrics, rocCurve } from '../src/index.js';
import { expectError, rng } from './helpers.js';

/** AUROC by the pairwise (Mann-Whitney) definition: P(pos > neg) + 1/2 P(pos = neg). */
function aurocPairs(s: number[], y: number[]): number {
  let u = 0;
  let pairs = 0;
  for (let i = 0; i < s.length; i++) {
    if (!y[i]) continue;
    for (let j = 0; j < s.length; j++) {
      if (y[j]) continue;
      pairs++;
      u += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
    }
  }
  return u / pairs;
}

/** Counts at threshold t: everything with score >= t is called positive. */
function at(s: number[], y: number[], t: number) {
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < s.length; i++) if (s[i] >= t) y[i] ? tp++ : fp++;
  const P = y.filter(Boolean).length;
  return { tp, fp, tpr: tp / P, fpr: fp / (s.length - P) };
}

/** AP by brute force: sum over distinct thresholds (high to low) of (R_k - R_{k-1}) * P_k. */
function apBrute(s: number[], y: number[]): number {
  const ts = [...new Set(s)].sort((a, b) => b - a);
  let ap = 0;
  let prevR = 0;
  for (const t of ts) {
    const { tp, fp, tpr } = at(s, y, t);
    ap += (tpr - prevR) * (tp / (tp + fp));
    prevR = tpr;
  }
  return ap;
}

/** FPR at TPR by brute force: the smallest FPR over all thresholds whose TPR reaches the level. */
function fprBrute(s: number[], y: number[], level: number): number {
  let best = 1;
  for (const t of [Number.POSITIVE_INFINITY, ...s]) {
    const { tpr, fpr } = at(s, y, t);
    if (tpr >= level) best = Math.min(best, fpr);
  }
  return best;
}

function randomProblem(seed: number, n: number, levels: number) {
  const r = rng(seed);
  const y = Array.from({ length: n }, () => (r() < 0.4 ? 1 : 0));
  // quantised scores, so that ties are frequent
  const s = y.map((v) => Math.round((r() + 0.3 * v) * levels) / levels);
  if (!y.includes(1)) y[0] = 1;
  if (!y.includes(0)) y[1] = 0;
  return { s, y };
}

describe('ranking metrics', () => {
  test('a hand example (the classic 4-point one)', () => {
    const s = [0.1, 0.4, 0.35, 0.8];
    const y = [0, 0, 1, 1];
    expect(auroc(s, y)).toBe(0.75);
    expect(averagePrecision(s, y)).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 15);
    expect(fprAtTpr(s, y, 0.95)).toBe(0.5);
    expect(fprAtTpr(s, y, 0.5)).toBe(0);
    const roc = rocCurve(s, y);
    expect(Array.from(roc.thresholds)).toEqual([Number.POSITIVE_INFINITY, 0.8, 0.4, 0.35, 0.1]);
    expect(Array.from(roc.tpr)).toEqual([0, 0.5, 0.5, 1, 1]);
    expect(Array.from(roc.fpr)).toEqual([0, 0, 0.5, 0.5, 1]);
  });

  test('agree with the pairwise and brute-force definitions on random data with many ties', () => {
    for (const [seed, n, levels] of [
      [1, 50, 5],
      [2, 200, 20],
      [3, 301, 1000],
      [4, 40, 1],
    ]) {
      const { s, y } = randomProblem(seed, n, levels);
      expect(auroc(s, y)).toBeCloseTo(aurocPairs(s, y), 14);
      expect(averagePrecision(s, y)).toBeCloseTo(apBrute(s, y), 14);
      for (const level of [0.5, 0.9, 0.95, 1]) expect(fprAtTpr(s, y, level)).toBe(fprBrute(s, y, level));
      // the ROC points are the brute-force counts at each distinct threshold, and their area is the AUROC
      const roc = rocCurve(s, y);
      let area = 0;
      for (let k = 1; k < roc.fpr.length; k++) {
        const c = at(s, y, roc.thresholds[k]);
        expect(roc.tpr[k]).toBe(c.tpr);
        expect(roc.fpr[k]).toBe(c.fpr);
        area += ((roc.fpr[k] - roc.fpr[k - 1]) * (roc.tpr[k] + roc.tpr[k - 1])) / 2;
      }
      expect(roc.fpr[roc.fpr.length - 1]).toBe(1);
      expect(roc.tpr[roc.tpr.length - 1]).toBe(1);
      expect(area).toBeCloseTo(auroc(s, y), 14);
    }
  });

  test('do not depend on example order', () => {
    const { s, y } = randomProblem(7, 120, 10);
    const r = rng(99);
    const perm = s.map((_, i) => i).sort(() => r() - 0.5);
    const s2 = perm.map((i) => s[i]);
    const y2 = perm.map((i) => y[i]);
    expect(auroc(s2, y2)).toBe(auroc(s, y));
    expect(averagePrecision(s2, y2)).toBe(averagePrecision(s, y));
    expect(fprAtTpr(s2, y2)).toBe(fprAtTpr(s, y));
  });

  test('edge cases: perfect, worst, all ties, single pair, booleans and typed arrays', () => {
    const y = [1, 1, 0, 0, 0];
    expect(auroc([5, 4, 3, 2, 1], y)).toBe(1);
    expect(averagePrecision([5, 4, 3, 2, 1], y)).toBe(1);
    expect(fprAtTpr([5, 4, 3, 2, 1], y)).toBe(0);
    expect(auroc([1, 2, 3, 4, 5], y)).toBe(0);
    expect(averagePrecision([1, 2, 3, 4, 5], y)).toBeCloseTo(0.5 * (1 / 4) + 0.5 * (2 / 5), 15);
    expect(fprAtTpr([1, 2, 3, 4, 5], y)).toBe(1);
    expect(auroc([2, 2, 2, 2, 2], y)).toBe(0.5);
    expect(averagePrecision([2, 2, 2, 2, 2], y)).toBeCloseTo(2 / 5, 15);
    expect(fprAtTpr([2, 2, 2, 2, 2], y)).toBe(1);
    expect(rocCurve([2, 2, 2, 2, 2], y).fpr).toEqual(new Float64Array([0, 1]));
    expect(auroc([0.3, 0.3], [true, false])).toBe(0.5);
    expect(auroc(new Float32Array([0.9, 0.1]), new Uint8Array([1, 0]))).toBe(1);
    expect(auroc([-0, 0], [1, 0])).toBe(0.5);
  });

  test('validation: one class, NaN scores, length mismatch, bad labels and levels', () => {
    expectError(
      () => auroc([1, 2, 3], [1, 1, 1]),
      'ERR_ARG',
      /auroc: positive must mark at least one positive and one negative example, got 3 positive and 0 negative/,
    );
    expectError(() => averagePrecision([1, 2], [0, 0]), 'ERR_ARG', /got 0 positive and 2 negative/);
    expectError(() => auroc([1, Number.NaN], [1, 0]), 'ERR_NAN', /auroc: scores\[1\] is NaN/);
    expectError(
      () => auroc([1, 2], [1, 0, 1]),
      'ERR_SHAPE',
      /positive has length 3, expected the number of scores = 2/,
    );
    expectError(() => auroc([1, 2], [1, 2]), 'ERR_ARG', /positive\[1\] is 2, expected a boolean or 0\/1/);
    expectError(() => fprAtTpr([1, 2], [1, 0], 0), 'ERR_ARG', /tpr must be a number in \(0, 1\], got 0/);
  });
});

describe('oodMetrics', () => {
  test('a hand example', () => {
    const inS = [0.1, 0.2, 0.3];
    const outS = [0.25, 0.5];
    const m = oodMetrics(inS, outS);
    expect(m.auroc).toBeCloseTo(5 / 6, 15);
    expect(m.auprOut).toBeCloseTo(0.5 + 0.5 * (2 / 3), 15);
    expect(m.auprIn).toBeCloseTo(1 / 3 + 1 / 3 + (1 / 3) * (3 / 4), 15);
    // accepting 95% of in-distribution needs all 3 (threshold 0.3), which also accepts OOD 0.25
    expect(m.fprAtTpr).toBe(0.5);
    expect(m).toMatchObject({ tpr: 0.95, nIn: 3, nOut: 2 });
    expect(oodMetrics(inS, outS, { tpr: 0.6 }).fprAtTpr).toBe(0);
  });

  test('equals the generic functions with the documented positive classes', () => {
    const r = rng(5);
    const inS = Array.from({ length: 80 }, () => Math.round(r() * 20) / 20);
    const outS = Array.from({ length: 50 }, () => Math.round((r() + 0.4) * 20) / 20);
    const s = [...inS, ...outS];
    const isOut = s.map((_, i) => (i >= inS.length ? 1 : 0));
    const m = oodMetrics(inS, outS);
    expect(m.auroc).toBeCloseTo(aurocPairs(s, isOut), 14);
    expect(m.auprOut).toBeCloseTo(apBrute(s, isOut), 14);
    const neg = s.map((v) => -v);
    const isIn = isOut.map((v) => 1 - v);
    expect(m.auprIn).toBeCloseTo(apBrute(neg, isIn), 14);
    expect(m.fprAtTpr).toBe(fprBrute(neg, isIn, 0.95));
    // AUROC is symmetric in the choice of positive class
    expect(auroc(neg, isIn)).toBeCloseTo(m.auroc, 14);
  });

  test('OodAccumulator equals the whole-array call, batches in any order', () => {
    const r = rng(8);
    const inS = Float64Array.from({ length: 333 }, () => Math.round(r() * 50) / 50);
    const outS = Float64Array.from({ length: 111 }, () => Math.round((r() + 0.2) * 50) / 50);
    const whole = oodMetrics(inS, outS);
    const acc = new OodAccumulator();
    acc.addOutOfDistribution(outS.subarray(0, 60));
    acc.addInDistribution(inS.subarray(0, 100));
    acc.update(Float64Array.from([...inS.subarray(100, 200), ...outS.subarray(60)]), [
      ...new Array(100).fill(false),
      ...new Array(51).fill(true),
    ]);
    acc.addInDistribution(inS.subarray(200));
    expect(acc.counts).toEqual({ nIn: 333, nOut: 111 });
    expect(acc.result()).toEqual(whole);
    expect(acc.result({ tpr: 0.8 })).toEqual(oodMetrics(inS, outS, { tpr: 0.8 }));
    expectError(
      () => new OodAccumulator().addInDistribution([1]).result(),
      'ERR_ARG',
      /needs at least one in-distribution and one OOD score, got 1 and 0/,
    );
    expectError(
      () => acc.addOutOfDistribution([Number.POSITIVE_INFINITY]),
      'ERR_NAN',
      /addOutOfDistribution: scores\[0\] is Infinity/,
    );
  });
});
