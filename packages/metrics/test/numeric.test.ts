import { describe, expect, test } from 'vitest';
import { entropy, erfc, LOG_FLOOR, MetricsError, normalCdf, normalQuantile, safeLog } from '../src/index.js';

// Reference values computed with mpmath at 50 significant digits (erfc, and Phi^-1 as
// sqrt(2) erfinv(2p - 1) of the exact double p), rounded to double: independent of this code.
const ERFC: [number, number][] = [
  [0.1, 0.887537083981715],
  [0.45, 0.5245182802130763],
  [0.5, 0.4795001221869535],
  [1.0, 0.15729920705028513],
  [1.163, 0.10002542631944211],
  [1.49, 0.03510213515679579],
  [1.5, 0.033894853524689274],
  [2, 0.004677734981047266],
  [3, 2.209049699858544e-5],
  [5, 1.537459794428035e-12],
  [10, 2.088487583762545e-45],
  [26, 5.663192408856143e-296],
];
const QUANTILE: [number, number][] = [
  [0.75, 0.6744897501960817],
  [0.95, 1.6448536269514722],
  [0.975, 1.9599639845400538],
  [0.9995, 3.290526731491926],
  [0.3, -0.5244005127080408],
  [0.25, -0.6744897501960817],
  [0.05, -1.6448536269514726],
  [0.025, -1.9599639845400543],
  [0.005, -2.575829303548901],
  [1e-10, -6.361340902404057],
  [1e-300, -37.0470962993612],
];

/** Phi(z) by Simpson's rule on the density from -12 (brute force, independent of erfc). */
function phiBySimpson(z: number): number {
  const a = -12;
  const m = 20000;
  const h = (z - a) / m;
  const f = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
  let s = f(a) + f(z);
  for (let k = 1; k < m; k++) s += (k % 2 ? 4 : 2) * f(a + k * h);
  return (s * h) / 3;
}

describe('numerics', () => {
  test('erfc matches 50-digit reference values to a few ulps, and erfc(-x) = 2 - erfc(x)', () => {
    for (const [x, want] of ERFC) {
      expect(Math.abs(erfc(x) - want) / want).toBeLessThan(8e-16);
      expect(erfc(-x)).toBeCloseTo(2 - want, 15);
    }
    expect(erfc(0)).toBe(1);
    expect(erfc(30)).toBe(0);
  });

  test('normalCdf agrees with a brute-force integral of the density', () => {
    for (const z of [-3, -1.96, -1, -0.3, 0, 0.5, 1.2, 2.5]) {
      expect(normalCdf(z)).toBeCloseTo(phiBySimpson(z), 12);
    }
  });

  test('normalQuantile matches reference values and inverts normalCdf', () => {
    for (const [p, want] of QUANTILE) {
      expect(Math.abs(normalQuantile(p) - want)).toBeLessThan(1e-15 * Math.max(1, Math.abs(want)));
    }
    expect(normalQuantile(0.5)).toBe(0);
    expect(normalQuantile(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(normalQuantile(1)).toBe(Number.POSITIVE_INFINITY);
    // Lower tail: full relative accuracy. Upper tail: limited by the rounding of p near 1.
    for (let z = -8; z <= 0; z += 0.37) expect(normalQuantile(normalCdf(z))).toBeCloseTo(z, 12);
    for (let z = 0.1; z <= 5; z += 0.37) expect(normalQuantile(normalCdf(z))).toBeCloseTo(z, 9);
    for (const p of [0.01, 0.2, 0.4999, 0.6, 0.99])
      expect(normalQuantile(1 - p)).toBeCloseTo(-normalQuantile(p), 14);
  });

  test('normalQuantile rejects non-probabilities', () => {
    for (const p of [-0.1, 1.1, Number.NaN]) {
      expect(() => normalQuantile(p)).toThrow(MetricsError);
      expect(() => normalQuantile(p)).toThrow(/normalQuantile: p must be a probability in \[0, 1\]/);
    }
  });

  test('the log guard: log(max(p, 1e-12)); 0 log 0 = 0', () => {
    expect(LOG_FLOOR).toBe(1e-12);
    expect(safeLog(0)).toBe(Math.log(1e-12));
    expect(safeLog(0.5)).toBe(Math.log(0.5));
    expect(entropy([1, 0, 0])).toBe(0);
    expect(entropy([0.25, 0.25, 0.25, 0.25])).toBeCloseTo(Math.log(4), 15);
    expect(entropy([0.5, 0.5])).toBeCloseTo(Math.LN2, 15);
  });
});
