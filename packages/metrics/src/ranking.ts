import { MetricsError } from './errors.js';
import { GrowableF64 } from './numeric.js';
import { checkArray, checkFinite, type FloatArray, toMask } from './validate.js';

/**
 * Score groups of a binary ranking problem, from the highest score down: each distinct score
 * value is one group (tied examples enter together), with the number of positives and
 * negatives holding it. Every ranking metric here is a function of these groups only, so it
 * does not depend on the order of the examples and treats ties the Mann-Whitney way.
 */
interface Groups {
  thresholds: Float64Array;
  pos: Float64Array;
  neg: Float64Array;
  count: number;
  P: number;
  N: number;
}

function groupsOf(posScores: Float64Array, negScores: Float64Array): Groups {
  const p = posScores.slice().sort();
  const q = negScores.slice().sort();
  const P = p.length;
  const N = q.length;
  const thresholds = new Float64Array(P + N);
  const pos = new Float64Array(P + N);
  const neg = new Float64Array(P + N);
  let ip = P - 1;
  let iq = N - 1;
  let g = 0;
  while (ip >= 0 || iq >= 0) {
    const t = ip < 0 ? q[iq] : iq < 0 ? p[ip] : Math.max(p[ip], q[iq]);
    let a = 0;
    let b = 0;
    while (ip >= 0 && p[ip] === t) {
      a++;
      ip--;
    }
    while (iq >= 0 && q[iq] === t) {
      b++;
      iq--;
    }
    thresholds[g] = t;
    pos[g] = a;
    neg[g] = b;
    g++;
  }
  return { thresholds, pos, neg, count: g, P, N };
}

function split(fn: string, scores: FloatArray, positive: ArrayLike<boolean | number>): Groups {
  checkArray(fn, 'scores', scores);
  checkFinite(fn, 'scores', scores);
  const mask = toMask(fn, 'positive', positive, scores.length);
  let P = 0;
  for (let i = 0; i < mask.length; i++) P += mask[i];
  const N = mask.length - P;
  if (P === 0 || N === 0) {
    throw new MetricsError(
      'ERR_ARG',
      `${fn}: positive must mark at least one positive and one negative example, got ${P} positive and ${N} negative`,
    );
  }
  const ps = new Float64Array(P);
  const ns = new Float64Array(N);
  let a = 0;
  let b = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) ps[a++] = scores[i];
    else ns[b++] = scores[i];
  }
  return groupsOf(ps, ns);
}

function aurocOf(g: Groups): number {
  // U = #(pos > neg) + 1/2 #(pos = neg); from the top, negatives below group k are N - cumNeg.
  let u = 0;
  let cumNeg = 0;
  for (let k = 0; k < g.count; k++) {
    cumNeg += g.neg[k];
    u += g.pos[k] * (g.N - cumNeg) + 0.5 * g.pos[k] * g.neg[k];
  }
  return u / (g.P * g.N);
}

function apOf(g: Groups): number {
  let ap = 0;
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < g.count; k++) {
    tp += g.pos[k];
    fp += g.neg[k];
    if (g.pos[k] > 0) ap += (g.pos[k] / g.P) * (tp / (tp + fp));
  }
  return ap;
}

function fprAtTprOf(g: Groups, level: number): number {
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < g.count; k++) {
    tp += g.pos[k];
    fp += g.neg[k];
    if (tp / g.P >= level) return fp / g.N;
  }
  return 1;
}

function checkLevel(fn: string, level: unknown): number {
  if (typeof level !== 'number' || !(level > 0 && level <= 1)) {
    throw new MetricsError('ERR_ARG', `${fn}: tpr must be a number in (0, 1], got ${String(level)}`);
  }
  return level;
}

/**
 * Area under the ROC curve: the probability that a random positive scores higher than a random
 * negative, ties counting 1/2 (the Mann-Whitney U statistic divided by P*N). Exact, O(n log n),
 * independent of example order.
 *
 * @param scores - one finite score per example; higher should mean "positive" (for OOD
 *   detection with an uncertainty score: positive = out-of-distribution).
 * @param positive - per example, true/1 for the positive class, false/0 for the negative.
 * @returns AUROC in [0, 1]: 1 for a perfect ranking, 0 for a reversed one, 0.5 for all ties.
 * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite score, ERR_ARG
 *   when either class is empty or a label is not boolean/0/1.
 */
export function auroc(scores: FloatArray, positive: ArrayLike<boolean | number>): number {
  return aurocOf(split('auroc', scores, positive));
}

/**
 * Area under the precision-recall curve by average precision,
 * `AP = sum_k (R_k - R_{k-1}) P_k` over the distinct score values from the highest down, where
 * `R_k` and `P_k` are recall and precision when every example scoring at least the k-th value
 * is called positive. Tied examples enter together (one step), so the result is deterministic
 * and independent of example order; there is no interpolation.
 *
 * @param scores - one finite score per example; higher should mean "positive".
 * @param positive - per example, true/1 for the positive class.
 * @returns AP in (0, 1]; with all scores tied it is the positive fraction P / (P + N).
 * @throws MetricsError as {@link auroc}.
 */
export function averagePrecision(scores: FloatArray, positive: ArrayLike<boolean | number>): number {
  return apOf(split('averagePrecision', scores, positive));
}

/**
 * False-positive rate at the first threshold (from the highest score down, tied scores taken
 * together) whose true-positive rate reaches `tpr`; equivalently the smallest FPR over all
 * thresholds with TPR >= `tpr`.
 *
 * @param scores - one finite score per example; higher should mean "positive".
 * @param positive - per example, true/1 for the positive class.
 * @param tpr - the required true-positive rate in (0, 1] (default 0.95).
 * @throws MetricsError as {@link auroc}, and ERR_ARG for `tpr` outside (0, 1].
 */
export function fprAtTpr(scores: FloatArray, positive: ArrayLike<boolean | number>, tpr = 0.95): number {
  const level = checkLevel('fprAtTpr', tpr);
  return fprAtTprOf(split('fprAtTpr', scores, positive), level);
}

/** Points of a ROC curve, from (0, 0) to (1, 1). */
export interface RocCurve {
  /** False-positive rates, non-decreasing. */
  fpr: Float64Array;
  /** True-positive rates, non-decreasing. */
  tpr: Float64Array;
  /** Point k counts as positive every example with score >= thresholds[k]; the first is +Infinity. */
  thresholds: Float64Array;
}

/**
 * The ROC curve for plotting: one point per distinct score value (ties enter together), plus
 * the starting point (0, 0) at threshold +Infinity. The trapezoidal area under these points
 * equals {@link auroc}.
 *
 * @param scores - one finite score per example; higher should mean "positive".
 * @param positive - per example, true/1 for the positive class.
 * @throws MetricsError as {@link auroc}.
 */
export function rocCurve(scores: FloatArray, positive: ArrayLike<boolean | number>): RocCurve {
  const g = split('rocCurve', scores, positive);
  const fpr = new Float64Array(g.count + 1);
  const tpr = new Float64Array(g.count + 1);
  const thresholds = new Float64Array(g.count + 1);
  thresholds[0] = Number.POSITIVE_INFINITY;
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < g.count; k++) {
    tp += g.pos[k];
    fp += g.neg[k];
    tpr[k + 1] = tp / g.P;
    fpr[k + 1] = fp / g.N;
    thresholds[k + 1] = g.thresholds[k];
  }
  return { fpr, tpr, thresholds };
}

/** OOD-detection figures from an uncertainty score (higher = more likely out-of-distribution). */
export interface OodMetrics {
  /** AUROC with OOD as the positive class (symmetric: the same with in-distribution as positive). */
  auroc: number;
  /** Average precision with OOD as the positive class, ranked by the score. */
  auprOut: number;
  /** Average precision with in-distribution as the positive class, ranked by the negated score. */
  auprIn: number;
  /**
   * FPR at `tpr` TPR, in-distribution as the positive class (the convention of the OOD
   * literature): the fraction of OOD examples accepted as in-distribution at the threshold
   * that accepts `tpr` of the in-distribution examples.
   */
  fprAtTpr: number;
  /** The TPR level used (default 0.95). */
  tpr: number;
  /** Number of in-distribution examples. */
  nIn: number;
  /** Number of out-of-distribution examples. */
  nOut: number;
}

function oodFrom(fn: string, inScores: Float64Array, outScores: Float64Array, tpr: number): OodMetrics {
  const level = checkLevel(fn, tpr);
  if (inScores.length === 0 || outScores.length === 0) {
    throw new MetricsError(
      'ERR_ARG',
      `${fn}: needs at least one in-distribution and one OOD score, got ${inScores.length} and ${outScores.length}`,
    );
  }
  const out = groupsOf(outScores, inScores);
  const negIn = inScores.map((v) => -v);
  const negOut = outScores.map((v) => -v);
  const inn = groupsOf(negIn, negOut);
  return {
    auroc: aurocOf(out),
    auprOut: apOf(out),
    auprIn: apOf(inn),
    fprAtTpr: fprAtTprOf(inn, level),
    tpr: level,
    nIn: inScores.length,
    nOut: outScores.length,
  };
}

function toF64(fn: string, name: string, a: FloatArray): Float64Array {
  checkArray(fn, name, a);
  checkFinite(fn, name, a);
  return Float64Array.from(a);
}

/**
 * OOD-detection metrics from the uncertainty scores of an in-distribution set and an OOD set
 * (for example the `entropy` or `mutualInformation` of {@link uncertaintyScores}): AUROC,
 * AUPR-Out, AUPR-In and FPR at 95% TPR.
 *
 * @param inScores - scores of in-distribution examples (finite).
 * @param outScores - scores of out-of-distribution examples (finite).
 * @param opts - `tpr`: the TPR level of `fprAtTpr` (default 0.95).
 * @throws MetricsError ERR_NAN on a non-finite score, ERR_ARG on an empty set or a bad level.
 */
export function oodMetrics(
  inScores: FloatArray,
  outScores: FloatArray,
  opts: { tpr?: number } = {},
): OodMetrics {
  const fn = 'oodMetrics';
  return oodFrom(fn, toF64(fn, 'inScores', inScores), toF64(fn, 'outScores', outScores), opts.tpr ?? 0.95);
}

/**
 * Streaming OOD metrics: add score batches of either set in any order; {@link OodAccumulator.result}
 * equals {@link oodMetrics} on the concatenated scores exactly (the scores are kept; every
 * figure depends only on the multiset of scores).
 */
export class OodAccumulator {
  private readonly inS = new GrowableF64();
  private readonly outS = new GrowableF64();

  /** Add scores of in-distribution examples. @throws MetricsError ERR_NAN on a non-finite score. */
  addInDistribution(scores: FloatArray): this {
    const fn = 'OodAccumulator.addInDistribution';
    checkArray(fn, 'scores', scores);
    checkFinite(fn, 'scores', scores);
    this.inS.reserve(scores.length);
    for (let i = 0; i < scores.length; i++) this.inS.push(scores[i]);
    return this;
  }

  /** Add scores of out-of-distribution examples. @throws MetricsError ERR_NAN on a non-finite score. */
  addOutOfDistribution(scores: FloatArray): this {
    const fn = 'OodAccumulator.addOutOfDistribution';
    checkArray(fn, 'scores', scores);
    checkFinite(fn, 'scores', scores);
    this.outS.reserve(scores.length);
    for (let i = 0; i < scores.length; i++) this.outS.push(scores[i]);
    return this;
  }

  /**
   * Add a mixed batch: `isOod[i]` says whether example i is out-of-distribution.
   * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite score.
   */
  update(scores: FloatArray, isOod: ArrayLike<boolean | number>): this {
    const fn = 'OodAccumulator.update';
    checkArray(fn, 'scores', scores);
    checkFinite(fn, 'scores', scores);
    const m = toMask(fn, 'isOod', isOod, scores.length);
    for (let i = 0; i < scores.length; i++) (m[i] ? this.outS : this.inS).push(scores[i]);
    return this;
  }

  /** Numbers of in-distribution and OOD scores held. */
  get counts(): { nIn: number; nOut: number } {
    return { nIn: this.inS.length, nOut: this.outS.length };
  }

  /** The figures of {@link oodMetrics} over every score added. */
  result(opts: { tpr?: number } = {}): OodMetrics {
    return oodFrom('OodAccumulator.result', this.inS.toArray(), this.outS.toArray(), opts.tpr ?? 0.95);
  }
}
