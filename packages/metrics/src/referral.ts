import { MetricsError } from './errors.js';
import { checkArray, checkFinite, type FloatArray, toMask } from './validate.js';

/** One point of an accuracy-vs-referral curve. */
export interface ReferralPoint {
  /** The requested referral fraction. */
  fraction: number;
  /** Number of examples referred, `Math.round(fraction * N)`. */
  referred: number;
  /** Number of examples kept, `N - referred`. */
  retained: number;
  /** Accuracy on the retained examples (NaN when none is retained). */
  accuracy: number;
}

/** Options of {@link referralCurve}. */
export interface ReferralOptions {
  /** Explicit referral fractions in [0, 1]; when given, `maxFraction` and `step` are ignored. */
  fractions?: ArrayLike<number>;
  /** Largest referral fraction (default 0.5). */
  maxFraction?: number;
  /**
   * Step between fractions (default 0.05): the fractions are `k * step` for k = 0, 1, ... up to
   * `maxFraction`, at most 10^6 of them.
   */
  step?: number;
}

/** Most fractions the default grid (`maxFraction` / `step`) may produce. */
const MAX_GRID_POINTS = 1_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The referral order: examples sorted by score descending (most uncertain first), ties broken
 * by example index ascending (the earlier example is referred first); -0 and 0 are the same
 * score. Deterministic and documented so that curves are reproducible.
 *
 * Implemented as a stable LSD radix sort (six 11-bit passes) on an order-preserving 64-bit key
 * of each double, inverted for descending order, which keeps ties in index order.
 */
export function referralOrder(scores: ArrayLike<number>): Uint32Array {
  const n = scores.length;
  const f = new Float64Array(1);
  const u = new Uint32Array(f.buffer);
  const H = LITTLE_ENDIAN ? 1 : 0;
  const Lo = 1 - H;
  let khi = new Uint32Array(n);
  let klo = new Uint32Array(n);
  let idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    f[0] = scores[i] + 0; // -0 becomes 0
    let hi = u[H];
    let lo = u[Lo];
    // IEEE order to unsigned order: flip everything for negatives, the sign bit for positives.
    if (hi & 0x80000000) {
      hi = ~hi;
      lo = ~lo;
    } else {
      hi ^= 0x80000000;
    }
    // descending: invert the key
    khi[i] = ~hi >>> 0;
    klo[i] = ~lo >>> 0;
    idx[i] = i;
  }
  let thi = new Uint32Array(n);
  let tlo = new Uint32Array(n);
  let tidx = new Uint32Array(n);
  const count = new Uint32Array(2048);
  for (let pass = 0; pass < 6; pass++) {
    const word = pass < 3 ? klo : khi;
    const shift = (pass % 3) * 11;
    count.fill(0);
    for (let k = 0; k < n; k++) count[(word[k] >>> shift) & 2047]++;
    let sum = 0;
    for (let b = 0; b < 2048; b++) {
      const c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (let k = 0; k < n; k++) {
      const dst = count[(word[k] >>> shift) & 2047]++;
      thi[dst] = khi[k];
      tlo[dst] = klo[k];
      tidx[dst] = idx[k];
    }
    [khi, thi] = [thi, khi];
    [klo, tlo] = [tlo, klo];
    [idx, tidx] = [tidx, idx];
  }
  return idx;
}

function prepare(fn: string, correct: ArrayLike<boolean | number>, scores: FloatArray) {
  checkArray(fn, 'scores', scores);
  checkFinite(fn, 'scores', scores);
  const n = scores.length;
  if (n === 0) throw new MetricsError('ERR_ARG', `${fn}: scores must hold at least one example, got 0`);
  const ok = toMask(fn, 'correct', correct, n);
  const order = referralOrder(scores);
  // referredCorrect[k] = number of correct examples among the k most uncertain.
  const referredCorrect = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) referredCorrect[k + 1] = referredCorrect[k] + ok[order[k]];
  return { n, referredCorrect, total: referredCorrect[n] };
}

function checkFraction(fn: string, name: string, f: unknown): number {
  if (typeof f !== 'number' || !(f >= 0 && f <= 1)) {
    throw new MetricsError('ERR_ARG', `${fn}: ${name} must be a number in [0, 1], got ${String(f)}`);
  }
  return f;
}

/**
 * The accuracy-vs-referral curve: refer the most uncertain fraction of the examples to an expert
 * and measure the accuracy on the rest. Examples are referred in order of decreasing score,
 * ties broken by example index (lower index referred first); a fraction f refers
 * `Math.round(f * N)` examples.
 *
 * @param correct - per example, whether the model's prediction is right (booleans or 0/1), e.g.
 *   `perExample.correct` of {@link classificationMetrics}.
 * @param scores - per-example uncertainty (higher = more uncertain), e.g. `perExample.entropy`.
 * @param opts - explicit `fractions`, or `maxFraction` (default 0.5) and `step` (default 0.05).
 * @returns one point per fraction, in the order given (ascending for the default grid).
 * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite score, ERR_ARG on
 *   an empty input or a fraction, maximum or step out of range.
 */
export function referralCurve(
  correct: ArrayLike<boolean | number>,
  scores: FloatArray,
  opts: ReferralOptions = {},
): ReferralPoint[] {
  const fn = 'referralCurve';
  let fractions: number[];
  if (opts === null || typeof opts !== 'object') {
    throw new MetricsError('ERR_ARG', `${fn}: opts must be an object, got ${String(opts)}`);
  }
  if (opts.fractions !== undefined) {
    checkArray(fn, 'opts.fractions', opts.fractions);
    fractions = Array.from(opts.fractions, (f, i) => checkFraction(fn, `opts.fractions[${i}]`, f));
  } else {
    const max = checkFraction(fn, 'opts.maxFraction', opts.maxFraction ?? 0.5);
    const step = opts.step ?? 0.05;
    if (typeof step !== 'number' || !(step > 0 && step <= 1)) {
      throw new MetricsError('ERR_ARG', `${fn}: opts.step must be a number in (0, 1], got ${String(step)}`);
    }
    const k = Math.floor(max / step + 1e-9);
    if (k >= MAX_GRID_POINTS) {
      throw new MetricsError(
        'ERR_ARG',
        `${fn}: opts.step ${step} up to opts.maxFraction ${max} gives ${k + 1} fractions, more than ${MAX_GRID_POINTS}: use a larger step or explicit opts.fractions`,
      );
    }
    fractions = [];
    for (let i = 0; i <= k; i++) fractions.push(Math.min(i * step, max));
  }
  const { n, referredCorrect, total } = prepare(fn, correct, scores);
  return fractions.map((fraction) => {
    const referred = Math.round(fraction * n);
    const retained = n - referred;
    const accuracy = retained > 0 ? (total - referredCorrect[referred]) / retained : Number.NaN;
    return { fraction, referred, retained, accuracy };
  });
}

/** The answer of {@link referralRateForAccuracy}. */
export interface ReferralTarget {
  /** Whether some referral that keeps at least one example reaches the target. */
  reached: boolean;
  /** Smallest number of referred examples reaching the target (N when not reached). */
  referred: number;
  /** `referred / N`, the referral rate. */
  fraction: number;
  /** Accuracy on the retained examples at that rate (NaN when not reached). */
  accuracy: number;
}

/**
 * The smallest referral rate at which the accuracy on the retained examples reaches `target`:
 * the smallest k in 0..N-1 such that, after referring the k most uncertain examples (order as
 * in {@link referralCurve}), the accuracy of the N - k others is >= target. The accuracy need
 * not be monotone in k; this is the first k that reaches it.
 *
 * @param correct - per example, whether the prediction is right (booleans or 0/1).
 * @param scores - per-example uncertainty (higher = more uncertain).
 * @param target - the required accuracy in [0, 1].
 * @throws MetricsError as {@link referralCurve}, and ERR_ARG for a target outside [0, 1].
 */
export function referralRateForAccuracy(
  correct: ArrayLike<boolean | number>,
  scores: FloatArray,
  target: number,
): ReferralTarget {
  const fn = 'referralRateForAccuracy';
  checkFraction(fn, 'target', target);
  const { n, referredCorrect, total } = prepare(fn, correct, scores);
  for (let k = 0; k < n; k++) {
    const accuracy = (total - referredCorrect[k]) / (n - k);
    if (accuracy >= target) return { reached: true, referred: k, fraction: k / n, accuracy };
  }
  return { reached: false, referred: n, fraction: 1, accuracy: Number.NaN };
}
