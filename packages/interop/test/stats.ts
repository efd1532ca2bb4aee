/** Per-element sample moments of S draws of a vector, with their standard errors. */
export interface Moments {
  n: number;
  mean: Float64Array;
  variance: Float64Array;
  /** Standard error of the mean: sqrt(var / n). */
  seMean: Float64Array;
  /** Standard error of the variance: sqrt((m4 - var^2) / n). */
  seVar: Float64Array;
}

/** Moments of `draws[s][j]` over s, per element j. */
export function moments(draws: ArrayLike<number>[]): Moments {
  const n = draws.length;
  const d = draws[0].length;
  const mean = new Float64Array(d);
  for (const x of draws) for (let j = 0; j < d; j++) mean[j] += x[j] / n;
  const m2 = new Float64Array(d);
  const m4 = new Float64Array(d);
  for (const x of draws)
    for (let j = 0; j < d; j++) {
      const e = x[j] - mean[j];
      m2[j] += (e * e) / n;
      m4[j] += (e * e * e * e) / n;
    }
  const variance = m2.map((v) => (v * n) / (n - 1));
  return {
    n,
    mean,
    variance,
    seMean: variance.map((v) => Math.sqrt(v / n)),
    seVar: m4.map((v, j) => Math.sqrt(Math.max(v - m2[j] * m2[j], 0) / n)),
  };
}

/**
 * The largest z-score over elements of the difference of two independent estimates of means and
 * of variances: |a - b| / sqrt(se_a^2 + se_b^2).
 */
export function maxZ(a: Moments, b: Moments): { mean: number; variance: number } {
  let zm = 0;
  let zv = 0;
  for (let j = 0; j < a.mean.length; j++) {
    zm = Math.max(zm, Math.abs(a.mean[j] - b.mean[j]) / Math.hypot(a.seMean[j], b.seMean[j]));
    zv = Math.max(zv, Math.abs(a.variance[j] - b.variance[j]) / Math.hypot(a.seVar[j], b.seVar[j]));
  }
  return { mean: zm, variance: zv };
}
