import { describe, expect, test } from 'vitest';
import {
  classificationMetrics,
  predictiveMean,
  referralCurve,
  referralRateForAccuracy,
} from '../src/index.js';
import { referralOrder } from '../src/referral.js';
import { expectError, randomClassification, rng } from './helpers.js';

/** Brute force: refer the k examples first in (score desc, index asc) order; accuracy of the rest. */
function retainedAccuracy(correct: number[], scores: number[], k: number): number {
  const order = scores.map((s, i) => ({ s, i })).sort((a, b) => (a.s !== b.s ? b.s - a.s : a.i - b.i));
  const referred = new Set(order.slice(0, k).map((o) => o.i));
  const kept = correct.filter((_, i) => !referred.has(i));
  return kept.length ? kept.reduce((a, b) => a + b, 0) / kept.length : Number.NaN;
}

describe('referral', () => {
  test('a hand example', () => {
    const correct = [1, 0, 1, 1, 0];
    const scores = [0.1, 0.9, 0.5, 0.2, 0.8]; // refer order: 1 (wrong), 4 (wrong), 2, 3, 0
    const curve = referralCurve(correct, scores, { fractions: [0, 0.2, 0.4, 0.6, 1] });
    expect(curve.map((p) => p.referred)).toEqual([0, 1, 2, 3, 5]);
    expect(curve.map((p) => p.retained)).toEqual([5, 4, 3, 2, 0]);
    expect(curve.map((p) => p.accuracy)).toEqual([3 / 5, 3 / 4, 1, 1, Number.NaN]);
    expect(referralRateForAccuracy(correct, scores, 0.75)).toEqual({
      reached: true,
      referred: 1,
      fraction: 0.2,
      accuracy: 0.75,
    });
    expect(referralRateForAccuracy(correct, scores, 1)).toEqual({
      reached: true,
      referred: 2,
      fraction: 0.4,
      accuracy: 1,
    });
    expect(referralRateForAccuracy(correct, scores, 0.5)).toEqual({
      reached: true,
      referred: 0,
      fraction: 0,
      accuracy: 0.6,
    });
  });

  test('the default grid is 0, 0.05, ..., 0.5; step and maximum are configurable', () => {
    const r = rng(3);
    const correct = Array.from({ length: 100 }, () => (r() < 0.8 ? 1 : 0));
    const scores = Array.from({ length: 100 }, () => r());
    const curve = referralCurve(correct, scores);
    expect(curve).toHaveLength(11);
    curve.forEach((p, k) => {
      expect(p.fraction).toBeCloseTo(k * 0.05, 15);
      expect(p.referred).toBe(5 * k);
    });
    const c2 = referralCurve(correct, scores, { maxFraction: 0.9, step: 0.3 });
    expect(c2.map((p) => p.referred)).toEqual([0, 30, 60, 90]);
    const c3 = referralCurve(correct, scores, { maxFraction: 0.25, step: 0.1 });
    expect(c3.map((p) => p.referred)).toEqual([0, 10, 20]);
  });

  test('ties are broken by example index (the earlier example is referred first)', () => {
    const correct = [0, 1, 1, 0];
    const scores = [0, 0, 0, 0];
    const c = referralCurve(correct, scores, { fractions: [0.25, 0.5, 0.75] });
    expect(c.map((p) => p.accuracy)).toEqual([2 / 3, 1 / 2, 0]);
    const mixed = referralCurve([1, 0, 0, 1], [0.5, 0.9, 0.5, 0.5], { fractions: [0.25, 0.5] });
    expect(mixed.map((p) => p.accuracy)).toEqual([2 / 3, 1 / 2]);
  });

  test('the referral order is a stable descending sort (radix sort checked against a comparator sort)', () => {
    const special = [-0, 0, -1, 1, -1e-300, 1e300, -1e300, 5e-324, -5e-324, 0.5, -0.5, 0.5, -0, 1];
    const r = rng(12);
    for (const scores of [
      special,
      Array.from({ length: 5000 }, () => Math.round((r() - 0.5) * 200) / 7),
      Array.from({ length: 3000 }, () => (r() - 0.5) * 10 ** Math.round(r() * 40 - 20)),
    ]) {
      const want = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
      expect(Array.from(referralOrder(scores))).toEqual(want);
    }
  });

  test('matches brute force on random data with ties, and the target search is the first k reaching it', () => {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed);
      const n = 97;
      const correct = Array.from({ length: n }, () => (r() < 0.7 ? 1 : 0));
      const scores = correct.map((c) => Math.round((r() + (c ? 0 : 0.4)) * 8) / 8);
      const fractions = Array.from({ length: 21 }, (_, k) => k / 20);
      const curve = referralCurve(correct, scores, { fractions });
      curve.forEach((p) => {
        expect(p.referred).toBe(Math.round(p.fraction * n));
        const want = retainedAccuracy(correct, scores, p.referred);
        if (Number.isNaN(want)) expect(p.accuracy).toBeNaN();
        else expect(p.accuracy).toBeCloseTo(want, 14);
      });
      for (const target of [0.7, 0.8, 0.9, 0.95, 1]) {
        let k = 0;
        while (k < n && !(retainedAccuracy(correct, scores, k) >= target)) k++;
        const got = referralRateForAccuracy(correct, scores, target);
        expect(got.referred).toBe(k);
        expect(got.fraction).toBe(k / n);
        expect(got.reached).toBe(k < n);
      }
    }
  });

  test('perfect and useless uncertainty; unreachable targets', () => {
    // perfect: the wrong examples are the most uncertain -> referring the error rate gives accuracy 1
    const correct = [1, 1, 0, 1, 0, 1, 1, 1, 1, 0];
    const perfect = correct.map((c, i) => (c ? i / 100 : 1 + i / 100));
    expect(referralRateForAccuracy(correct, perfect, 1)).toMatchObject({
      reached: true,
      referred: 3,
      fraction: 0.3,
    });
    // worst: the right examples are referred first, accuracy only falls
    const worst = correct.map((c) => (c ? 1 : 0));
    const curve = referralCurve(correct, worst, { fractions: [0, 0.3, 0.5, 0.7] });
    expect(curve.map((p) => p.accuracy)).toEqual([0.7, 4 / 7, 2 / 5, 0]);
    expect(referralRateForAccuracy(correct, worst, 0.8)).toEqual({
      reached: false,
      referred: 10,
      fraction: 1,
      accuracy: Number.NaN,
    });
    // every prediction wrong: nothing but target 0 is reachable
    expect(referralRateForAccuracy([0, 0], [1, 2], 0.1).reached).toBe(false);
    expect(referralRateForAccuracy([0, 0], [1, 2], 0).referred).toBe(0);
    // single example
    expect(referralCurve([1], [0.3], { fractions: [0, 0.4, 0.6] }).map((p) => p.accuracy)).toEqual([
      1,
      1,
      Number.NaN,
    ]);
  });

  test('composes with classificationMetrics per-example output', () => {
    const { probs } = randomClassification(4, 5, 200, 4, 1.5);
    const shape = { samples: 5, n: 200, classes: 4 };
    // labels drawn from the predictive mean: a calibrated model, so its entropy is informative
    const mean = predictiveMean(probs, shape);
    const r = rng(17);
    const labels = Int32Array.from({ length: 200 }, (_, i) => {
      let u = r();
      for (let c = 0; c < 3; c++) {
        u -= mean[i * 4 + c];
        if (u < 0) return c;
      }
      return 3;
    });
    const m = classificationMetrics(probs, labels, shape);
    const curve = referralCurve(m.perExample.correct, m.perExample.entropy);
    expect(curve[0].accuracy).toBe(m.accuracy);
    // entropy is informative here: referring half raises accuracy
    expect(curve[10].accuracy).toBeGreaterThan(m.accuracy);
  });

  test('validation', () => {
    expectError(
      () => referralCurve([], []),
      'ERR_ARG',
      /referralCurve: scores must hold at least one example, got 0/,
    );
    expectError(
      () => referralCurve([1, 0], [0.5]),
      'ERR_SHAPE',
      /correct has length 2, expected the number of scores = 1/,
    );
    expectError(() => referralCurve([1], [Number.NaN]), 'ERR_NAN', /scores\[0\] is NaN/);
    expectError(
      () => referralCurve([1], [1], { fractions: [0.5, 1.5] }),
      'ERR_ARG',
      /opts.fractions\[1\] must be a number in \[0, 1\], got 1.5/,
    );
    expectError(
      () => referralCurve([1], [1], { step: 0 }),
      'ERR_ARG',
      /opts.step must be a number in \(0, 1\]/,
    );
    expectError(
      () => referralCurve([1], [1], { maxFraction: 2 }),
      'ERR_ARG',
      /opts.maxFraction must be a number in \[0, 1\]/,
    );
    expectError(
      () => referralRateForAccuracy([1], [1], 1.1),
      'ERR_ARG',
      /target must be a number in \[0, 1\]/,
    );
  });
});
