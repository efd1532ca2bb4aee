import { Rng } from '@qbnn/core';
import { describe, expect, it } from 'vitest';
import { drawGaussianStats, sampleChiSquare, sampleGamma } from '../src/random.js';
import { meanVar } from './helpers.js';

describe('sampleGamma', () => {
  // Gamma(a, 1): mean a, variance a, fourth central moment 3a^2 + 6a, so the sample variance
  // has standard error sqrt((2a^2 + 6a) / n). Bounds are 5 standard errors.
  for (const a of [0.3, 0.5, 1, 3, 499.5]) {
    it(`matches the mean and variance of Gamma(${a}) within 5 standard errors`, () => {
      const n = 40000;
      const g = sampleGamma(a, n, new Rng(11));
      const { mean, variance } = meanVar(g);
      expect(Math.abs(mean - a)).toBeLessThan(5 * Math.sqrt(a / n));
      expect(Math.abs(variance - a)).toBeLessThan(5 * Math.sqrt((2 * a * a + 6 * a) / n));
      expect(g.every((v) => v > 0 && Number.isFinite(v))).toBe(true);
    });
  }

  it('is a deterministic function of the stream', () => {
    expect(sampleGamma(2.5, 100, new Rng(3))).toEqual(sampleGamma(2.5, 100, new Rng(3)));
    expect(sampleGamma(2.5, 100, new Rng(3))).not.toEqual(sampleGamma(2.5, 100, new Rng(4)));
  });

  it('rejects a non-positive shape', () => {
    expect(() => sampleGamma(0, 1, new Rng(1))).toThrow(/shape/);
  });

  it('chi-square(k) has mean k and variance 2k', () => {
    const n = 40000;
    const k = 9;
    const { mean, variance } = meanVar(sampleChiSquare(k, n, new Rng(5)));
    expect(Math.abs(mean - k)).toBeLessThan(5 * Math.sqrt((2 * k) / n));
    // chi2(k): variance 2k, fourth central moment 12k^2 + 48k.
    expect(Math.abs(variance - 2 * k)).toBeLessThan(5 * Math.sqrt((12 * k * k + 48 * k - 4 * k * k) / n));
    expect(sampleChiSquare(0, 3, new Rng(1))).toEqual(new Float64Array(3));
  });
});

describe('drawGaussianStats (exact t1, t2 of M normal draws)', () => {
  // Reference moments for xi_1..xi_M iid N(0, 1), t1 = mean xi, t2 = mean xi^2:
  // E t1 = 0, Var t1 = 1/M, E t2 = 1, Var t2 = 2/M, E[t1^2 t2] = (M + 2)/M^2 (this last one
  // tests the coupling S^2/M inside t2: independent t1, t2 would give 1/M).
  for (const m of [1, 2, 5, 1000]) {
    it(`has the moments of M = ${m} draws`, () => {
      const n = 50000;
      const { t1, t2 } = drawGaussianStats(n, m, new Rng(100 + m));
      const a = meanVar(t1);
      const b = meanVar(t2);
      expect(Math.abs(a.mean)).toBeLessThan(5 * Math.sqrt(1 / m / n));
      expect(Math.abs(a.variance - 1 / m)).toBeLessThan(5 * Math.sqrt(2 / (m * m) / n));
      expect(Math.abs(b.mean - 1)).toBeLessThan(5 * Math.sqrt(2 / m / n));
      // Var of t2 estimated from n draws: t2 = chi2(M)/M, fourth central moment (12M^2+48M)/M^4.
      expect(Math.abs(b.variance - 2 / m)).toBeLessThan(5 * Math.sqrt((8 * m * m + 48 * m) / m ** 4 / n));
      const prod = new Float64Array(n);
      for (let i = 0; i < n; i++) prod[i] = t1[i] * t1[i] * t2[i];
      const c = meanVar(prod);
      expect(Math.abs(c.mean - (m + 2) / (m * m))).toBeLessThan(5 * Math.sqrt(c.variance / n));
    });
  }

  it('matches brute-force accumulation in distribution (M = 3, two-sample test on t2 quantiles)', () => {
    const n = 20000;
    const m = 3;
    const { t2 } = drawGaussianStats(n, m, new Rng(7));
    const rng = new Rng(8);
    const brute = new Float64Array(n);
    const z = rng.normal(n * m);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += z[i * m + j] ** 2;
      brute[i] = s / m;
    }
    // Two-sample Kolmogorov-Smirnov at alpha ~ 1e-6: D < 2.7 * sqrt(2 / n).
    const a = Float64Array.from(t2).sort();
    const b = brute.sort();
    let i = 0;
    let j = 0;
    let d = 0;
    while (i < n && j < n) {
      if (a[i] <= b[j]) i++;
      else j++;
      d = Math.max(d, Math.abs(i / n - j / n));
    }
    expect(d).toBeLessThan(2.7 * Math.sqrt(2 / n));
  });
});
