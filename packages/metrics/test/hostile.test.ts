// Regression tests of issue 17 (D7 and what the metrics fuzz suite found): each failed before
// its fix by returning NaN, throwing an untyped error, or allocating what the input did not back.
import { describe, expect, it } from 'vitest';
import {
  averagePredictiveEntropy,
  ClassificationAccumulator,
  calibration,
  calibrationBinIndex,
  entropy,
  erfc,
  gaussianNll,
  MetricsError,
  normalCdf,
  normalQuantile,
  referralCurve,
  regressionMetrics,
  safeLog,
} from '../src/index.js';

function expectMetricsError(fn: () => unknown, code: string, message: RegExp): void {
  expect(fn).toThrow(MetricsError);
  expect(fn).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
}

describe('metrics refuse hostile input (issue 17)', () => {
  it('entropy([NaN]) is an ERR_NAN, not NaN (D7); empty, negative and unnormalised inputs are refused', () => {
    expectMetricsError(() => entropy([Number.NaN]), 'ERR_NAN', /^entropy: p\[0\] is NaN/);
    expectMetricsError(
      () => entropy([0.5, Number.POSITIVE_INFINITY]),
      'ERR_NAN',
      /^entropy: p\[1\] is Infinity/,
    );
    expectMetricsError(() => entropy([]), 'ERR_ARG', /^entropy: p must hold at least one probability/);
    expectMetricsError(() => entropy([1.5, -0.5]), 'ERR_ARG', /^entropy: p\[0\] is 1.5/);
    expectMetricsError(() => entropy([0.2, 0.2]), 'ERR_ARG', /^entropy: row 0 of p .* sums to 0.4/);
    expectMetricsError(() => entropy(null as never), 'ERR_ARG', /^entropy: p must be a typed array or array/);
    expect(entropy([0.5, 0.5])).toBeCloseTo(Math.LN2, 15);
  });

  it('safeLog, erfc and normalCdf refuse NaN; normalQuantile stays finite in the subnormal tail', () => {
    expectMetricsError(() => safeLog(Number.NaN), 'ERR_NAN', /^safeLog/);
    expectMetricsError(() => safeLog(-1), 'ERR_ARG', /^safeLog: p must be >= 0/);
    expectMetricsError(() => erfc(Number.NaN), 'ERR_NAN', /^erfc: x must be a number/);
    expectMetricsError(() => normalCdf(Number.NaN), 'ERR_NAN', /^normalCdf: z must be a number/);
    expect(erfc(Number.POSITIVE_INFINITY)).toBe(0);
    expect(erfc(Number.NEGATIVE_INFINITY)).toBe(2);
    // Was NaN: exp(z^2 / 2) overflowed in the Halley step. scipy.stats.norm.ppf(5e-324) = -38.4674.
    expect(normalQuantile(5e-324)).toBeCloseTo(-38.4674, 2);
    expect(normalQuantile(1e-320)).toBeCloseTo(-38.2691, 2);
  });

  it('calibrationBinIndex validates its arguments (a NaN bin count gave NaN)', () => {
    expectMetricsError(
      () => calibrationBinIndex(0.5, Number.NaN),
      'ERR_ARG',
      /^calibrationBinIndex: bins must be/,
    );
    expectMetricsError(
      () => calibrationBinIndex(Number.NaN, 10),
      'ERR_NAN',
      /^calibrationBinIndex: confidence/,
    );
    expect(calibrationBinIndex(0.3, 10)).toBe(2);
  });

  it('sizes are checked against the input before allocating', () => {
    // A length not backed by data no longer passes as an array.
    const fake = { length: 2 ** 32 - 1 } as unknown as number[];
    expectMetricsError(
      () => calibration(fake, fake),
      'ERR_ARG',
      /^calibration: confidence must be a typed array or array, got Object/,
    );
    // Bins are allocated up front: bounded. Classes are allocated by the first (validated) batch.
    expectMetricsError(
      () => calibration([0.5], [1], { bins: 1e12 }),
      'ERR_ARG',
      /opts.bins must be at most 1048576/,
    );
    const acc = new ClassificationAccumulator({ classes: 2 ** 40 });
    expectMetricsError(() => acc.update([0.5, 0.5], [0]), 'ERR_SHAPE', /probs has length 2/);
    // A referral grid step of 1e-300 looped until memory ran out.
    expectMetricsError(
      () => referralCurve([1, 0], [0.5, 0.2], { step: 1e-300 }),
      'ERR_ARG',
      /^referralCurve: opts.step 1e-300 .* more than 1000000/,
    );
  });

  it('regression inputs whose squares overflow are refused (they gave NaN figures)', () => {
    expectMetricsError(
      () => regressionMetrics([1e308, -1e308], [1, 1], [0], { samples: 2, n: 1 }),
      'ERR_ARG',
      /^regressionMetrics: means\[0\] is 1e\+308, expected an absolute value <= 1e\+150/,
    );
    expectMetricsError(
      () => gaussianNll([0], [1e308], [0], { n: 1 }),
      'ERR_ARG',
      /^gaussianNll: variances\[0\]/,
    );
    expect(regressionMetrics([1e150], [1e300], [-1e150], { n: 1 }).nll).toBeLessThan(
      Number.POSITIVE_INFINITY,
    );
  });

  it('errors name the function the caller called, not the one it delegates to', () => {
    expectMetricsError(
      () => averagePredictiveEntropy([1], { n: 0, classes: 1 }),
      'ERR_ARG',
      /^averagePredictiveEntropy: shape.n/,
    );
    expectMetricsError(() => gaussianNll([0], [1], [0, 1], { n: 1 }), 'ERR_SHAPE', /^gaussianNll: targets/);
  });
});
