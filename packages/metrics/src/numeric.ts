import { MetricsError } from './errors.js';
import { checkArray, checkProbRows, checkTolerance } from './validate.js';

/**
 * The one guard against `log(0)` used everywhere in this package: a probability is clamped to
 * at least `LOG_FLOOR` before its logarithm is taken (`log(max(p, LOG_FLOOR))`), and a
 * predictive variance is clamped to at least `LOG_FLOOR` before it enters the Gaussian NLL.
 * Entropies are computed as `-sum p * log(max(p, LOG_FLOOR))`, so a zero probability
 * contributes exactly 0 (the usual `0 log 0 = 0`) and the NLL of a zero probability is
 * `-log(1e-12) = 27.631...`, finite.
 */
export const LOG_FLOOR = 1e-12;

/** @internal `log(max(p, LOG_FLOOR))` without a check, for inputs already validated. */
export function logFloor(p: number): number {
  return Math.log(Math.max(p, LOG_FLOOR));
}

/**
 * `log(max(p, LOG_FLOOR))`: the guarded logarithm used by every metric.
 *
 * @param p - a number >= 0 (+Infinity gives +Infinity).
 * @throws MetricsError ERR_NAN for NaN, ERR_ARG for a negative `p` (not a probability or a variance).
 */
export function safeLog(p: number): number {
  if (typeof p !== 'number' || Number.isNaN(p)) {
    throw new MetricsError(
      typeof p === 'number' ? 'ERR_NAN' : 'ERR_ARG',
      `safeLog: p must be a number >= 0, got ${String(p)}`,
    );
  }
  if (p < 0) throw new MetricsError('ERR_ARG', `safeLog: p must be >= 0, got ${p}`);
  return logFloor(p);
}

/**
 * Shannon entropy in nats, `-sum_c p_c log(max(p_c, LOG_FLOOR))`, of one distribution, summed
 * in float64. `p` is not renormalised: it must already be a distribution.
 *
 * @param p - the probabilities of one distribution (at least one), each finite and in [0, 1],
 *   summing to 1 within `opts.tolerance`.
 * @param opts - `tolerance` on `|sum p - 1|` (default 1e-3, as the classification metrics).
 * @returns the entropy in nats (0 for a one-hot distribution, `log C` for the uniform one).
 * @throws MetricsError ERR_NAN for a non-finite entry, ERR_ARG for an empty array, an entry
 *   outside [0, 1] or a sum other than 1.
 */
export function entropy(p: ArrayLike<number>, opts: { tolerance?: number } = {}): number {
  const fn = 'entropy';
  checkArray(fn, 'p', p);
  if (p.length === 0) throw new MetricsError('ERR_ARG', `${fn}: p must hold at least one probability, got 0`);
  checkProbRows(fn, 'p', p, 1, p.length, checkTolerance(fn, opts.tolerance ?? 1e-3));
  let h = 0;
  for (let c = 0; c < p.length; c++) {
    const v = p[c];
    h -= v * logFloor(v);
  }
  return h;
}

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT2 = Math.SQRT2;
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** exp(-x^2) without the error of rounding x^2: x = xh + (x - xh) with xh^2 exact. */
function expMinusSquare(x: number): number {
  const xh = Math.round(x * 65536) / 65536;
  return Math.exp(-xh * xh) * Math.exp(-(x - xh) * (x + xh));
}

/** erf(x) for 0 <= x < 0.5 by the series of positive terms exp(-x^2) sum (2x^2)^n x / (2n+1)!!. */
function erfSeries(x: number): number {
  const x2 = 2 * x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / SQRT_PI) * expMinusSquare(x) * sum;
}

/**
 * erfc(x) for x >= 0.5 by its continued fraction
 * `erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2)/(x + (2/2)/(x + (3/2)/(x + ...))))`, evaluated
 * backwards from a fixed depth (20 + 250 / x^2 terms, ample for 1e-17 truncation error), which
 * keeps rounding errors from accumulating.
 */
function erfcContinuedFraction(x: number): number {
  const depth = Math.ceil(20 + 250 / (x * x));
  let t = x;
  for (let n = depth; n >= 1; n--) t = x + n / 2 / t;
  return expMinusSquare(x) / (SQRT_PI * t);
}

/**
 * The complementary error function, accurate to about 3 units in the last place over the whole
 * real line (checked against 40-digit references): a positive-term series for erf below 0.5,
 * a continued fraction above.
 *
 * @throws MetricsError ERR_NAN for NaN (infinities give the limits 0 and 2).
 */
export function erfc(x: number): number {
  return erfcOf(checkNumber('erfc', 'x', x));
}

function checkNumber(fn: string, name: string, x: unknown): number {
  if (typeof x !== 'number' || Number.isNaN(x)) {
    throw new MetricsError(
      typeof x === 'number' ? 'ERR_NAN' : 'ERR_ARG',
      `${fn}: ${name} must be a number, got ${String(x)}`,
    );
  }
  return x;
}

function erfcOf(x: number): number {
  if (x < 0) return 2 - erfcOf(-x);
  if (x < 0.5) return 1 - erfSeries(x);
  if (x > 27.3) return 0;
  return erfcContinuedFraction(x);
}

/**
 * The standard normal cumulative distribution function, `Phi(z) = erfc(-z / sqrt 2) / 2`,
 * with full relative accuracy in the lower tail.
 *
 * @throws MetricsError ERR_NAN for NaN.
 */
export function normalCdf(z: number): number {
  return 0.5 * erfcOf(-checkNumber('normalCdf', 'z', z) / SQRT2);
}

/**
 * The standard normal quantile (inverse CDF), `Phi^-1(p)`: a rational starting guess
 * (Abramowitz and Stegun 26.2.23) polished by Halley steps on {@link normalCdf}, accurate to
 * a few units in the last place. The upper half uses the symmetry `Phi^-1(p) = -Phi^-1(1 - p)`
 * (`1 - p` is exact for p >= 0.5).
 *
 * @param p - a probability in [0, 1]; 0 and 1 give -Infinity and +Infinity.
 * @throws MetricsError ERR_ARG when `p` is outside [0, 1] or NaN.
 */
export function normalQuantile(p: number): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new MetricsError('ERR_ARG', `normalQuantile: p must be a probability in [0, 1], got ${p}`);
  }
  if (p === 0) return Number.NEGATIVE_INFINITY;
  if (p === 1) return Number.POSITIVE_INFINITY;
  if (p > 0.5) return -lowerQuantile(1 - p);
  return lowerQuantile(p);
}

/** Phi^-1(q) for 0 < q <= 0.5. */
function lowerQuantile(q: number): number {
  if (q === 0.5) return 0;
  const t = Math.sqrt(-2 * Math.log(q));
  let z = -(
    t -
    (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + t * (1.432788 + t * (0.189269 + t * 0.001308)))
  );
  for (let it = 0; it < 8; it++) {
    const e = 0.5 * erfcOf(-z / SQRT2) - q;
    const u = e * SQRT_2PI * Math.exp((z * z) / 2);
    const step = u / (1 + (z * u) / 2);
    // In the subnormal tail (q < ~1e-300) exp(z^2 / 2) overflows: keep the current estimate.
    if (!Number.isFinite(step)) break;
    z -= step;
    if (Math.abs(step) <= 1e-16 * Math.max(1, Math.abs(z))) break;
  }
  return z;
}

/** A growable float64 buffer used by the streaming accumulators. */
export class GrowableF64 {
  private buf: Float64Array;
  private len = 0;
  constructor(capacity = 1024) {
    this.buf = new Float64Array(capacity);
  }
  get length(): number {
    return this.len;
  }
  push(v: number): void {
    if (this.len === this.buf.length) this.grow(this.len + 1);
    this.buf[this.len++] = v;
  }
  reserve(extra: number): void {
    if (this.len + extra > this.buf.length) this.grow(this.len + extra);
  }
  private grow(min: number): void {
    const next = new Float64Array(Math.max(min, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  /** A copy of the stored values. */
  toArray(): Float64Array {
    return this.buf.slice(0, this.len);
  }
  /** A view (no copy) of the stored values; valid until the next push. */
  view(): Float64Array {
    return this.buf.subarray(0, this.len);
  }
}
