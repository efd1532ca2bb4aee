import { describe, expect, test } from 'vitest';
import {
  gaussianNll,
  intervalCoverage,
  mae,
  predictiveMoments,
  RegressionAccumulator,
  regressionMetrics,
  rmse,
} from '../src/index.js';
import { expectError, randomCuts, rng } from './helpers.js';

// Phi^-1((1 + level) / 2) for the double levels, by mpmath at 50 digits (independent of this code).
const Z = { 0.5: 0.6744897501960817, 0.9: 1.6448536269514729, 0.95: 1.9599639845400538 };

function gaussian(r: () => number): number {
  const u = 1 - r();
  const v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function randomRegression(seed: number, L: number, N: number) {
  const r = rng(seed);
  const means = new Float64Array(L * N);
  const variances = new Float64Array(L * N);
  const targets = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const centre = 5 * gaussian(r);
    targets[i] = centre + gaussian(r);
    for (let l = 0; l < L; l++) {
      means[l * N + i] = centre + 0.5 * gaussian(r);
      variances[l * N + i] = 0.2 + r();
    }
  }
  return { means, variances, targets };
}

/** Brute-force reference from the definitions. */
function reference(mu: ArrayLike<number>, s2: ArrayLike<number>, y: ArrayLike<number>, L: number, N: number) {
  let se = 0;
  let ae = 0;
  let nll = 0;
  const cov = { 0.5: 0, 0.9: 0, 0.95: 0 };
  for (let i = 0; i < N; i++) {
    const ms = Array.from({ length: L }, (_, l) => mu[l * N + i]);
    const vs = Array.from({ length: L }, (_, l) => s2[l * N + i]);
    const m = ms.reduce((a, b) => a + b, 0) / L;
    const v = vs.reduce((a, b) => a + b, 0) / L + ms.reduce((a, b) => a + (b - m) ** 2, 0) / L;
    const e = y[i] - m;
    se += e * e;
    ae += Math.abs(e);
    nll += 0.5 * Math.log(2 * Math.PI * v) + (e * e) / (2 * v);
    for (const k of [0.5, 0.9, 0.95] as const) if (Math.abs(e) <= Z[k] * Math.sqrt(v)) cov[k]++;
  }
  return {
    rmse: Math.sqrt(se / N),
    mae: ae / N,
    nll: nll / N,
    cov: [cov[0.5] / N, cov[0.9] / N, cov[0.95] / N],
  };
}

describe('regressionMetrics', () => {
  test('a hand example', () => {
    // x0: sample means 1 and 3, variances 1 and 1 -> mean 2, var = 1 + 1 = 2, target 2 (error 0)
    // x1: sample means 2 and 2, variances 0.5 -> mean 2, var 0.5, target 3 (error 1)
    const means = [1, 2, 3, 2];
    const variances = [1, 0.5, 1, 0.5];
    const m = regressionMetrics(means, variances, [2, 3], { samples: 2, n: 2 });
    expect(m.rmse).toBeCloseTo(Math.sqrt(0.5), 15);
    expect(m.mae).toBe(0.5);
    expect(m.nll).toBeCloseTo(
      (0.5 * Math.log(2 * Math.PI * 2) + 0.5 * Math.log(2 * Math.PI * 0.5) + 1) / 2,
      14,
    );
    expect(m.meanVariance).toBe(1.25);
    expect(m.meanAleatoricVariance).toBe(0.75);
    expect(m.meanEpistemicVariance).toBe(0.5);
    // x1: |1| > 0.674 * 0.707 = 0.477 but <= 1.645 * 0.707 = 1.163
    expect(m.coverage.map((c) => c.coverage)).toEqual([0.5, 1, 1]);
    expect(m.coverage.map((c) => c.level)).toEqual([0.5, 0.9, 0.95]);
    m.coverage.forEach((c) => {
      expect(Math.abs(c.z - Z[c.level as 0.5 | 0.9 | 0.95])).toBeLessThan(1e-15);
    });
    expect(Array.from(m.perExample.variance)).toEqual([2, 0.5]);
    expect(Array.from(m.perExample.epistemic)).toEqual([1, 0]);
  });

  test('matches the brute-force reference on random data', () => {
    for (const [seed, L, N] of [
      [1, 10, 300],
      [2, 1, 100],
      [3, 3, 7],
    ]) {
      const { means, variances, targets } = randomRegression(seed, L, N);
      const m = regressionMetrics(means, variances, targets, { samples: L, n: N });
      const r = reference(means, variances, targets, L, N);
      expect(m.rmse).toBeCloseTo(r.rmse, 12);
      expect(m.mae).toBeCloseTo(r.mae, 12);
      expect(m.nll).toBeCloseTo(r.nll, 12);
      expect(m.coverage.map((c) => c.coverage)).toEqual(r.cov);
      expect(rmse(means, targets, { samples: L, n: N })).toBe(m.rmse);
      expect(mae(means, targets, { samples: L, n: N })).toBe(m.mae);
      expect(gaussianNll(means, variances, targets, { samples: L, n: N })).toBe(m.nll);
      expect(intervalCoverage(means, variances, targets, { samples: L, n: N })).toEqual(m.coverage);
      expect(predictiveMoments(means, variances, { samples: L, n: N })).toEqual(m.perExample);
    }
  });

  test('a calibrated Gaussian predictive covers its nominal levels, any level requested', () => {
    const r = rng(42);
    const N = 20000;
    const mu = new Float64Array(N);
    const v = new Float64Array(N);
    const y = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      mu[i] = 3 * gaussian(r);
      v[i] = 0.1 + 2 * r();
      y[i] = mu[i] + Math.sqrt(v[i]) * gaussian(r);
    }
    const levels = [0.1, 0.5, 0.8, 0.9, 0.95, 0.99];
    const cov = intervalCoverage(mu, v, y, { n: N }, levels);
    cov.forEach((c, k) => {
      expect(c.level).toBe(levels[k]);
      expect(Math.abs(c.coverage - c.level)).toBeLessThan(0.012);
    });
    expect(cov[5].z).toBeCloseTo(2.5758293035489004, 14);
  });

  test('edge cases: single sample, [N] inputs, zero variance, perfect predictions', () => {
    const one = regressionMetrics([1.5], [0.25], [2], { n: 1 });
    expect(one.samples).toBeNull();
    expect(one.rmse).toBe(0.5);
    expect(one.nll).toBeCloseTo(0.5 * Math.log(2 * Math.PI * 0.25) + 0.25 / 0.5, 15);
    expect(one.coverage.map((c) => c.coverage)).toEqual([0, 1, 1]); // 0.5 <= z * 0.5 iff z >= 1
    // zero total variance: the NLL uses the 1e-12 floor, coverage needs an exact hit
    const zero = regressionMetrics([1, 1], [0, 0], [1, 2], { samples: 1, n: 2 });
    expect(zero.nll).toBeCloseTo(
      (0.5 * Math.log(2 * Math.PI * 1e-12) + 0.5 * Math.log(2 * Math.PI * 1e-12) + 1 / (2 * 1e-12)) / 2,
      2,
    );
    expect(Number.isFinite(zero.nll)).toBe(true);
    expect(zero.coverage.map((c) => c.coverage)).toEqual([0.5, 0.5, 0.5]);
    // perfect mean predictions with spread only in the samples (variances zero): epistemic only
    const ens = regressionMetrics([0, 0, 2, 2], [0, 0, 0, 0], [1, 1], { samples: 2, n: 2 });
    expect(ens).toMatchObject({
      rmse: 0,
      mae: 0,
      meanVariance: 1,
      meanAleatoricVariance: 0,
      meanEpistemicVariance: 1,
    });
    expect(ens.nll).toBeCloseTo(0.5 * Math.log(2 * Math.PI), 15);
  });

  test('RegressionAccumulator equals the whole-array call exactly, whatever the split', () => {
    const L = 4;
    const N = 211;
    const { means, variances, targets } = randomRegression(9, L, N);
    const opts = { levels: [0.5, 0.683, 0.9, 0.95] };
    const whole = regressionMetrics(means, variances, targets, { samples: L, n: N }, opts);
    const slice = (a: Float64Array, from: number, to: number) => {
      const out = new Float64Array(L * (to - from));
      for (let l = 0; l < L; l++) out.set(a.subarray(l * N + from, l * N + to), l * (to - from));
      return out;
    };
    for (const [seed, parts] of [
      [1, 3],
      [2, 30],
      [3, 211],
    ]) {
      const cuts = randomCuts(seed, N, parts);
      const acc = new RegressionAccumulator({ samples: L, ...opts });
      for (let k = 0; k + 1 < cuts.length; k++) {
        const [a, b] = [cuts[k], cuts[k + 1]];
        acc.update(slice(means, a, b), slice(variances, a, b), targets.subarray(a, b));
      }
      expect(acc.count).toBe(N);
      expect(acc.result()).toEqual(whole);
    }
    expectError(() => new RegressionAccumulator().result(), 'ERR_ARG', /no examples added yet/);
  });

  test('validation', () => {
    const s = { samples: 2, n: 2 };
    expectError(
      () => regressionMetrics([1, 2, 3], [1, 1, 1, 1], [0, 0], s),
      'ERR_SHAPE',
      /regressionMetrics: means has length 3, expected samples\*n \(2\*2\) = 4/,
    );
    expectError(
      () => regressionMetrics([1, 2, 3, 4], [1, 1, 1], [0, 0], s),
      'ERR_SHAPE',
      /variances has length 3/,
    );
    expectError(
      () => regressionMetrics([1, 2, 3, 4], [1, 1, 1, 1], [0], s),
      'ERR_SHAPE',
      /targets has length 1, expected shape.n = 2/,
    );
    expectError(
      () => regressionMetrics([1, Number.NaN, 3, 4], [1, 1, 1, 1], [0, 0], s),
      'ERR_NAN',
      /means\[1\] is NaN/,
    );
    expectError(
      () => regressionMetrics([1, 2, 3, 4], [1, 1, -1, 1], [0, 0], s),
      'ERR_ARG',
      /variances\[2\] is -1, expected >= 0/,
    );
    expectError(
      () => regressionMetrics([1, 2, 3, 4], [1, 1, 1, 1], [0, Number.POSITIVE_INFINITY], s),
      'ERR_NAN',
      /targets\[1\] is Infinity/,
    );
    expectError(
      () => regressionMetrics([1, 2, 3, 4], [1, 1, 1, 1], [0, 0], s, { levels: [0.5, 1] }),
      'ERR_ARG',
      /opts.levels\[1\] must be a number in \(0, 1\), got 1/,
    );
    expectError(() => rmse([1], [1], { n: 0 }), 'ERR_ARG', /rmse: shape.n must be a positive integer, got 0/);
  });
});
