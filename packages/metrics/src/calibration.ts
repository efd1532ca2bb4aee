import { MetricsError } from './errors.js';
import { checkArray, checkInt, checkLength, type FloatArray, toMask } from './validate.js';

/** Default number of equal-width confidence bins for ECE, MCE and the reliability diagram. */
export const DEFAULT_BINS = 10;

/** One bin of a reliability diagram. */
export interface ReliabilityBin {
  /** Lower edge `b / bins` (exclusive, except bin 0 which also holds confidence 0). */
  lower: number;
  /** Upper edge `(b + 1) / bins` (inclusive). */
  upper: number;
  /** Number of examples whose top-label confidence falls in the bin. */
  count: number;
  /** Mean top-label confidence of those examples (NaN when the bin is empty). */
  meanConfidence: number;
  /** Fraction of those examples classified correctly (NaN when the bin is empty). */
  accuracy: number;
  /** `accuracy - meanConfidence` (NaN when empty): negative means over-confident. */
  gap: number;
}

/** Calibration figures from top-label confidences. */
export interface CalibrationResult {
  /** Expected calibration error `sum_b (count_b / N) |accuracy_b - meanConfidence_b|`. */
  ece: number;
  /** Maximum calibration error: the largest `|accuracy_b - meanConfidence_b|` over non-empty bins. */
  mce: number;
  /** The per-bin data, `bins` entries from low to high confidence. */
  bins: ReliabilityBin[];
}

/**
 * The bin of a top-label confidence among `bins` equal-width bins on [0, 1].
 *
 * Edge convention: bin `b` holds the confidences in the half-open interval
 * `(b / bins, (b + 1) / bins]`, the edges being the float64 values of `b / bins`; bin 0 also
 * holds exactly 0. So with 10 bins a confidence of exactly 0.3 goes to bin 2, (0.2, 0.3], and
 * 1 goes to bin 9. Values below 0 or above 1 are clamped to the first or last bin.
 *
 * @param confidence - a top-label confidence in [0, 1].
 * @param bins - the number of bins (a positive integer, at most 2^20).
 * @throws MetricsError ERR_NAN for a NaN confidence, ERR_ARG for a bad bin count.
 */
export function calibrationBinIndex(confidence: number, bins: number): number {
  const fn = 'calibrationBinIndex';
  const b = checkBins(fn, bins, 'bins');
  if (typeof confidence !== 'number' || Number.isNaN(confidence)) {
    throw new MetricsError(
      typeof confidence === 'number' ? 'ERR_NAN' : 'ERR_ARG',
      `${fn}: confidence must be a number in [0, 1], got ${String(confidence)}`,
    );
  }
  return binOf(confidence, b);
}

/** {@link calibrationBinIndex} without the checks, for validated inputs. */
function binOf(confidence: number, bins: number): number {
  if (!(confidence > 0)) return 0;
  let b = Math.ceil(confidence * bins) - 1;
  if (b < 0) b = 0;
  if (b > bins - 1) b = bins - 1;
  // Correct the rounding of confidence * bins against the exact float64 edges b / bins.
  while (b > 0 && confidence <= b / bins) b--;
  while (b < bins - 1 && confidence > (b + 1) / bins) b++;
  return b;
}

/** @internal Per-bin running sums, added to in example order (so batching never changes a result). */
export class BinSums {
  readonly bins: number;
  readonly count: Float64Array;
  readonly confidence: Float64Array;
  readonly correct: Float64Array;
  n = 0;
  constructor(bins: number) {
    this.bins = bins;
    this.count = new Float64Array(bins);
    this.confidence = new Float64Array(bins);
    this.correct = new Float64Array(bins);
  }
  add(confidence: number, correct: boolean): void {
    const b = binOf(confidence, this.bins);
    this.count[b] += 1;
    this.confidence[b] += confidence;
    if (correct) this.correct[b] += 1;
    this.n++;
  }
  result(): CalibrationResult {
    const out: ReliabilityBin[] = [];
    let ece = 0;
    let mce = 0;
    for (let b = 0; b < this.bins; b++) {
      const cnt = this.count[b];
      const lower = b / this.bins;
      const upper = (b + 1) / this.bins;
      if (cnt === 0) {
        out.push({
          lower,
          upper,
          count: 0,
          meanConfidence: Number.NaN,
          accuracy: Number.NaN,
          gap: Number.NaN,
        });
        continue;
      }
      const meanConfidence = this.confidence[b] / cnt;
      const accuracy = this.correct[b] / cnt;
      const gap = accuracy - meanConfidence;
      ece += Math.abs(this.correct[b] - this.confidence[b]);
      if (Math.abs(gap) > mce) mce = Math.abs(gap);
      out.push({ lower, upper, count: cnt, meanConfidence, accuracy, gap });
    }
    return { ece: this.n > 0 ? ece / this.n : Number.NaN, mce: this.n > 0 ? mce : Number.NaN, bins: out };
  }
}

/** Most calibration bins: each bin is three float64 running sums, allocated up front. */
const MAX_BINS = 2 ** 20;

/** @internal A bin count: an integer in [1, {@link MAX_BINS}]. */
export function checkBins(fn: string, bins: unknown, name = 'opts.bins'): number {
  const b = checkInt(fn, name, bins, 1);
  if (b > MAX_BINS) throw new MetricsError('ERR_ARG', `${fn}: ${name} must be at most ${MAX_BINS}, got ${b}`);
  return b;
}

/**
 * ECE, MCE and the reliability-diagram bins from per-example top-label confidences and
 * correctness, for callers who already have those arrays (for example from another framework).
 * {@link classificationMetrics} computes the same figures from probabilities.
 *
 * @param confidence - top-label confidences, each finite and in [0, 1].
 * @param correct - per example, whether the top-label prediction was right (booleans or 0/1).
 * @param opts - `bins`: number of equal-width bins (default 10, at most 2^20); see {@link calibrationBinIndex}
 *   for the edge convention.
 * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite confidence,
 *   ERR_ARG on a confidence outside [0, 1], an empty input or a bad bin count.
 */
export function calibration(
  confidence: FloatArray,
  correct: ArrayLike<boolean | number>,
  opts: { bins?: number } = {},
): CalibrationResult {
  const fn = 'calibration';
  const bins = checkBins(fn, opts.bins ?? DEFAULT_BINS);
  checkArray(fn, 'confidence', confidence);
  const n = confidence.length;
  if (n === 0) throw new MetricsError('ERR_ARG', `${fn}: confidence must hold at least one example, got 0`);
  checkLength(fn, 'correct', correct, n, 'confidence.length');
  const ok = toMask(fn, 'correct', correct, n);
  const sums = new BinSums(bins);
  for (let i = 0; i < n; i++) {
    const c = confidence[i];
    if (!Number.isFinite(c)) {
      throw new MetricsError(
        'ERR_NAN',
        `${fn}: confidence[${i}] is ${c}, expected a finite number in [0, 1]`,
      );
    }
    if (c < 0 || c > 1)
      throw new MetricsError('ERR_ARG', `${fn}: confidence[${i}] is ${c}, expected a value in [0, 1]`);
    sums.add(c, ok[i] === 1);
  }
  return sums.result();
}
