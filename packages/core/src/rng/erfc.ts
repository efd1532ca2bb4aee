/**
 * Complementary error function and standard normal CDF in float64, written for this package.
 *
 * Method: for |x| < 1, erfc = 1 - erf with erf from the everywhere-positive series
 * `erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))` (no cancellation);
 * for x >= 1, the Laplace continued fraction
 * `erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))` evaluated by the
 * modified Lentz method to a relative change below 2^-53; `exp(-x^2)` is taken as
 * `exp(-h^2) exp(-(x-h)(x+h))` with h the top 26 bits of x, so the square is exact.
 * Negative x uses erfc(x) = 2 - erfc(-x).
 *
 * Accuracy: relative error below 4e-15 wherever erfc(x) is a normal float64 (x < 26.5),
 * measured against 30-digit mpmath at 3300 points in [-6, 27]; the tests check 1e-14 at known
 * values and agreement with Simpson integration. So `normalCdf` is within 1e-15 absolute
 * everywhere, while the quantised normal's thresholds need only ~1e-12 (see qnormal.ts).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 1) return 1 - erfSeries(x);
  if (x > 27.3) return 0; // erfc(27.3) < 2^-1074: underflows
  return expMinusSquare(x) * continuedFraction(x) * INV_SQRT_PI;
}

/** Standard normal CDF, Phi(z) = erfc(-z / sqrt 2) / 2. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

const INV_SQRT_PI = 0.5641895835477563; // 1 / sqrt(pi)

/** exp(-x^2) with the square split so that no rounding error is amplified by exp. */
function expMinusSquare(x: number): number {
  // Veltkamp split: h keeps the top 26 significand bits, so h * h is exact.
  const c = 134217729 * x; // 2^27 + 1
  const h = c - (c - x);
  const l = x - h;
  return Math.exp(-h * h) * Math.exp(-l * (x + h));
}

function erfSeries(x: number): number {
  const x2 = 2 * x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return 2 * INV_SQRT_PI * expMinusSquare(x) * sum;
}

/** 1/(x + a1/(x + a2/(x + ...))) with a_n = n/2, by modified Lentz. */
function continuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    c = x + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1.1e-16) break;
  }
  return 1 / f;
}
