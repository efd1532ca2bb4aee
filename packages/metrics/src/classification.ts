import {
  BinSums,
  type CalibrationResult,
  checkBins,
  DEFAULT_BINS,
  type ReliabilityBin,
} from './calibration.js';
import { MetricsError } from './errors.js';
import { GrowableF64, logFloor } from './numeric.js';
import {
  ADD_BATCH,
  checkArray,
  checkInt,
  checkLabels,
  checkLength,
  checkProbRows,
  checkTolerance,
  type FloatArray,
} from './validate.js';

/** Default tolerance on `|sum_c p_c - 1|` for every probability row. */
export const DEFAULT_TOLERANCE = 1e-3;

/**
 * The layout of a probability array, row-major:
 * - with `samples` (= L): per-sample probabilities of shape [L, N, C], element
 *   `(l * n + i) * classes + c` is p_l(y = c | x_i);
 * - without `samples`: the predictive mean [N, C], element `i * classes + c`. The figures that
 *   need the individual samples (expected aleatoric entropy, mutual information) are then NaN,
 *   since they cannot be recovered from a mean. Pass `samples: 1` for a single deterministic
 *   network, whose mutual information is 0.
 */
export interface ClassificationShape {
  /** Number of Monte Carlo samples L (positive integer), or omitted for a predictive mean. */
  samples?: number;
  /** Number of examples N (positive integer). */
  n: number;
  /** Number of classes C (positive integer). */
  classes: number;
}

/** Options of the classification metrics. */
export interface ClassificationOptions {
  /** Number of equal-width confidence bins for ECE/MCE/reliability (default 10, at most 2^20). */
  bins?: number;
  /** Each probability row must sum to 1 within this (default {@link DEFAULT_TOLERANCE} = 1e-3). */
  tolerance?: number;
}

/** Per-example uncertainty scores, each an array of length N (higher = more uncertain for the scores). */
export interface UncertaintyScores {
  /** Predictive mean [N, C], `mean_l p_l`. */
  mean: Float64Array;
  /** argmax of the predictive mean (the lowest class index wins a tie). */
  prediction: Int32Array;
  /** Top-label confidence, the largest predictive-mean probability. */
  confidence: Float64Array;
  /** Predictive entropy `H(mean_l p_l)` in nats (total uncertainty). */
  entropy: Float64Array;
  /** Expected aleatoric entropy `mean_l H(p_l)` in nats (NaN for a predictive-mean input). */
  aleatoricEntropy: Float64Array;
  /** Mutual information `entropy - aleatoricEntropy` (epistemic; NaN for a predictive-mean input). */
  mutualInformation: Float64Array;
  /** `1 - confidence`. */
  oneMinusMaxProb: Float64Array;
}

/** Per-example results with labels. */
export interface ClassificationPerExample {
  prediction: Int32Array;
  confidence: Float64Array;
  /** 1 where `prediction === label`. */
  correct: Uint8Array;
  /** `-log(max(mean_l p_l(y), 1e-12))`. */
  nll: Float64Array;
  entropy: Float64Array;
  aleatoricEntropy: Float64Array;
  mutualInformation: Float64Array;
  oneMinusMaxProb: Float64Array;
}

/** Every classification figure at once (see {@link classificationMetrics}). */
export interface ClassificationMetrics extends CalibrationResult {
  /** Number of examples N. */
  n: number;
  classes: number;
  /** Number of MC samples L, or null for a predictive-mean input. */
  samples: number | null;
  /** Fraction of examples whose predictive-mean argmax equals the label. */
  accuracy: number;
  /** `1 - accuracy`. */
  error: number;
  /** Mean negative log-likelihood of the predictive mean, `mean_i -log(max(pbar_i(y_i), 1e-12))`. */
  nll: number;
  /** Brier score `mean_i sum_c (pbar_ic - [c = y_i])^2`, summed over classes (range [0, 2]). */
  brier: number;
  /** aPE: average predictive entropy `mean_i H(pbar_i)` in nats. */
  averagePredictiveEntropy: number;
  /** Expected aleatoric entropy `mean_i mean_l H(p_li)` (NaN for a predictive-mean input). */
  expectedAleatoricEntropy: number;
  /** Mean mutual information (aPE minus expected aleatoric entropy; NaN for a predictive-mean input). */
  mutualInformation: number;
  /** ECE on top-label confidence (see {@link calibrationBinIndex} for the bin edges). */
  ece: number;
  /** Maximum calibration error over non-empty bins. */
  mce: number;
  /** Reliability-diagram bins. */
  bins: ReliabilityBin[];
  /** The per-example arrays, in example order. */
  perExample: ClassificationPerExample;
}

interface ExampleStats {
  entropy: number;
  aleatoric: number;
  prediction: number;
  confidence: number;
}

/**
 * Predictive mean of example `i` of a batch [L, nb, C] into `m`, with its entropy, mean per-sample
 * entropy, argmax and confidence. Sums run in a fixed order (samples, then classes), so the
 * result for an example does not depend on the batch it came in.
 */
function exampleStats(
  probs: ArrayLike<number>,
  L: number,
  nb: number,
  C: number,
  i: number,
  m: Float64Array,
  out: ExampleStats,
): void {
  m.fill(0);
  let hSum = 0;
  for (let l = 0; l < L; l++) {
    const off = (l * nb + i) * C;
    let h = 0;
    for (let c = 0; c < C; c++) {
      const p = probs[off + c];
      m[c] += p;
      h -= p * logFloor(p);
    }
    hSum += h;
  }
  let H = 0;
  let best = 0;
  for (let c = 0; c < C; c++) {
    const v = m[c] / L;
    m[c] = v;
    H -= v * logFloor(v);
    if (v > m[best]) best = c;
  }
  out.entropy = H;
  out.aleatoric = hSum / L;
  out.prediction = best;
  out.confidence = m[best];
}

interface ResolvedShape {
  L: number;
  isMean: boolean;
  n: number;
  C: number;
}

function resolveShape(fn: string, shape: ClassificationShape): ResolvedShape {
  if (shape === null || typeof shape !== 'object') {
    throw new MetricsError(
      'ERR_ARG',
      `${fn}: shape must be an object { samples?, n, classes }, got ${String(shape)}`,
    );
  }
  const n = checkInt(fn, 'shape.n', shape.n, 1);
  const C = checkInt(fn, 'shape.classes', shape.classes, 1);
  const isMean = shape.samples === undefined;
  const L = isMean ? 1 : checkInt(fn, 'shape.samples', shape.samples, 1);
  return { L, isMean, n, C };
}

function checkProbs(
  fn: string,
  probs: FloatArray,
  s: { L: number; isMean: boolean; C: number },
  nb: number,
  tol: number,
) {
  checkArray(fn, 'probs', probs);
  const how = s.isMean ? `n*classes (${nb}*${s.C})` : `samples*n*classes (${s.L}*${nb}*${s.C})`;
  checkLength(fn, 'probs', probs, s.L * nb * s.C, how);
  checkProbRows(fn, 'probs', probs, s.L * nb, s.C, tol);
}

/**
 * Streaming classification metrics: feed batches with {@link ClassificationAccumulator.update}
 * and read every figure with {@link ClassificationAccumulator.result}. The result equals
 * {@link classificationMetrics} on the concatenated data exactly (the same per-example
 * arithmetic and float64 sums in example order; ECE bins are running sums, and the per-example
 * scores are kept for referral and OOD curves).
 *
 * A batch of `nb` examples is laid out [L, nb, C] (each sample's rows for that batch only), or
 * [nb, C] when `samples` is omitted (predictive-mean input).
 */
export class ClassificationAccumulator {
  readonly classes: number;
  /** L, or null for predictive-mean input. */
  readonly samples: number | null;
  readonly bins: number;
  readonly tolerance: number;
  private readonly shape: ResolvedShape;
  /** The predictive mean of one example, [C]; allocated by the first batch (which proves C). */
  private m: Float64Array | null = null;
  private readonly st: ExampleStats = { entropy: 0, aleatoric: 0, prediction: 0, confidence: 0 };
  private readonly binSums: BinSums;
  private nSeen = 0;
  private sumCorrect = 0;
  private sumNll = 0;
  private sumBrier = 0;
  private sumEntropy = 0;
  private sumAleatoric = 0;
  private sumMi = 0;
  private readonly per = {
    prediction: new GrowableF64(),
    confidence: new GrowableF64(),
    correct: new GrowableF64(),
    nll: new GrowableF64(),
    entropy: new GrowableF64(),
    aleatoricEntropy: new GrowableF64(),
    mutualInformation: new GrowableF64(),
    oneMinusMaxProb: new GrowableF64(),
  };

  /**
   * @param opts - `classes` (C), `samples` (L; omit for predictive-mean batches), `bins`
   *   (default 10), `tolerance` on row sums (default 1e-3).
   */
  constructor(
    opts: { classes: number; samples?: number } & ClassificationOptions,
    /** @internal The function named in errors (a function building an accumulator passes its own). */
    fn = 'ClassificationAccumulator',
  ) {
    if (opts === null || typeof opts !== 'object') {
      throw new MetricsError(
        'ERR_ARG',
        `${fn}: opts must be an object { classes, samples?, bins?, tolerance? }`,
      );
    }
    this.shape = resolveShape(fn, { n: 1, classes: opts.classes, samples: opts.samples });
    this.classes = this.shape.C;
    this.samples = this.shape.isMean ? null : this.shape.L;
    this.bins = checkBins(fn, opts.bins ?? DEFAULT_BINS);
    this.tolerance = checkTolerance(fn, opts.tolerance ?? DEFAULT_TOLERANCE);
    this.binSums = new BinSums(this.bins);
  }

  /** Number of examples seen so far. */
  get count(): number {
    return this.nSeen;
  }

  /**
   * Add a batch. The whole batch is validated before anything is added, so a rejected batch
   * leaves the accumulator unchanged.
   *
   * @param probs - [L, nb, C] per-sample probabilities (or [nb, C] means), nb = labels.length.
   * @param labels - nb integer labels in [0, C).
   * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite probability,
   *   ERR_ARG on a probability outside [0, 1], a row not summing to 1 or a label out of range.
   */
  update(probs: FloatArray, labels: Int32Array | ArrayLike<number>): this {
    return this[ADD_BATCH]('ClassificationAccumulator.update', probs, labels);
  }

  /** @internal */
  [ADD_BATCH](fn: string, probs: FloatArray, labels: Int32Array | ArrayLike<number>): this {
    checkArray(fn, 'labels', labels);
    const nb = labels.length;
    const { L, C } = this.shape;
    checkProbs(fn, probs, this.shape, nb, this.tolerance);
    checkLabels(fn, labels, nb, C);
    const { st, per } = this;
    if (nb > 0) this.m ??= new Float64Array(C);
    const m = this.m as Float64Array;
    for (let i = 0; i < nb; i++) {
      exampleStats(probs, L, nb, C, i, m, st);
      const y = labels[i];
      const correct = st.prediction === y;
      const nll = -logFloor(m[y]);
      let brier = 0;
      for (let c = 0; c < C; c++) {
        const d = m[c] - (c === y ? 1 : 0);
        brier += d * d;
      }
      const aleatoric = this.shape.isMean ? Number.NaN : st.aleatoric;
      const mi = st.entropy - aleatoric;
      if (correct) this.sumCorrect++;
      this.sumNll += nll;
      this.sumBrier += brier;
      this.sumEntropy += st.entropy;
      this.sumAleatoric += aleatoric;
      this.sumMi += mi;
      this.binSums.add(st.confidence, correct);
      per.prediction.push(st.prediction);
      per.confidence.push(st.confidence);
      per.correct.push(correct ? 1 : 0);
      per.nll.push(nll);
      per.entropy.push(st.entropy);
      per.aleatoricEntropy.push(aleatoric);
      per.mutualInformation.push(mi);
      per.oneMinusMaxProb.push(1 - st.confidence);
    }
    this.nSeen += nb;
    return this;
  }

  /**
   * Every figure over the examples seen so far.
   *
   * @throws MetricsError ERR_ARG when no example has been added.
   */
  result(): ClassificationMetrics {
    const n = this.nSeen;
    if (n === 0)
      throw new MetricsError(
        'ERR_ARG',
        'ClassificationAccumulator.result: no examples added yet, expected at least one',
      );
    const cal = this.binSums.result();
    const accuracy = this.sumCorrect / n;
    const p = this.per;
    return {
      n,
      classes: this.classes,
      samples: this.samples,
      accuracy,
      error: 1 - accuracy,
      nll: this.sumNll / n,
      brier: this.sumBrier / n,
      averagePredictiveEntropy: this.sumEntropy / n,
      expectedAleatoricEntropy: this.sumAleatoric / n,
      mutualInformation: this.sumMi / n,
      ece: cal.ece,
      mce: cal.mce,
      bins: cal.bins,
      perExample: {
        prediction: Int32Array.from(p.prediction.view()),
        confidence: p.confidence.toArray(),
        correct: Uint8Array.from(p.correct.view()),
        nll: p.nll.toArray(),
        entropy: p.entropy.toArray(),
        aleatoricEntropy: p.aleatoricEntropy.toArray(),
        mutualInformation: p.mutualInformation.toArray(),
        oneMinusMaxProb: p.oneMinusMaxProb.toArray(),
      },
    };
  }
}

/**
 * All classification metrics of a Bayesian classifier from its per-sample probabilities
 * [L, N, C] (or its predictive mean [N, C]): accuracy, error, NLL, Brier, aPE, expected
 * aleatoric entropy, mutual information, ECE, MCE, the reliability bins and the per-example
 * scores. Everything is computed from the predictive mean `pbar_i = mean_l p_li`, in float64,
 * with `log(max(p, 1e-12))` as the one log guard.
 *
 * @param probs - probabilities laid out as described in {@link ClassificationShape}.
 * @param labels - N integer labels in [0, C).
 * @param shape - `{ samples?, n, classes }`, validated against the array lengths.
 * @param opts - `bins` (default 10), `tolerance` on row sums (default 1e-3).
 * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite probability,
 *   ERR_ARG on a bad shape, a probability outside [0, 1], a row not summing to 1 within the
 *   tolerance, or a label out of range.
 * @example
 * ```ts
 * const m = classificationMetrics(probs, labels, { samples: 20, n: 1000, classes: 10 });
 * console.log(m.accuracy, m.nll, m.ece, m.mutualInformation);
 * ```
 */
export function classificationMetrics(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): ClassificationMetrics {
  return metricsAs('classificationMetrics', probs, labels, shape, opts);
}

/** {@link classificationMetrics} with errors naming `fn` (the public function called). */
function metricsAs(
  fn: string,
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions,
): ClassificationMetrics {
  const s = resolveShape(fn, shape);
  checkLength(fn, 'labels', labels, s.n, 'shape.n');
  const o = checkOptions(fn, opts);
  const acc = new ClassificationAccumulator({ ...o, classes: s.C, samples: s.isMean ? undefined : s.L }, fn);
  return acc[ADD_BATCH](fn, probs, labels).result();
}

function checkOptions<T extends object>(fn: string, opts: T): T {
  if (opts === null || typeof opts !== 'object') {
    throw new MetricsError('ERR_ARG', `${fn}: opts must be an object, got ${String(opts)}`);
  }
  return opts;
}

/**
 * Per-example uncertainty scores (no labels needed): predictive mean, prediction, confidence,
 * predictive entropy, expected aleatoric entropy, mutual information and `1 - max prob`, for
 * OOD detection ({@link oodMetrics}) and referral ({@link referralCurve}).
 *
 * @param probs - probabilities laid out as described in {@link ClassificationShape}.
 * @param shape - `{ samples?, n, classes }`.
 * @param opts - `tolerance` on row sums (default 1e-3).
 * @throws MetricsError as {@link classificationMetrics}.
 */
export function uncertaintyScores(
  probs: FloatArray,
  shape: ClassificationShape,
  opts: { tolerance?: number } = {},
): UncertaintyScores {
  return scoresAs('uncertaintyScores', probs, shape, opts);
}

/** {@link uncertaintyScores} with errors naming `fn` (the public function called). */
function scoresAs(
  fn: string,
  probs: FloatArray,
  shape: ClassificationShape,
  opts: { tolerance?: number },
): UncertaintyScores {
  const s = resolveShape(fn, shape);
  const tol = checkTolerance(fn, checkOptions(fn, opts).tolerance ?? DEFAULT_TOLERANCE);
  checkProbs(fn, probs, s, s.n, tol);
  const { L, n, C } = s;
  const mean = new Float64Array(n * C);
  const prediction = new Int32Array(n);
  const confidence = new Float64Array(n);
  const ent = new Float64Array(n);
  const ale = new Float64Array(n);
  const mi = new Float64Array(n);
  const omp = new Float64Array(n);
  const m = new Float64Array(C);
  const st: ExampleStats = { entropy: 0, aleatoric: 0, prediction: 0, confidence: 0 };
  for (let i = 0; i < n; i++) {
    exampleStats(probs, L, n, C, i, m, st);
    mean.set(m, i * C);
    prediction[i] = st.prediction;
    confidence[i] = st.confidence;
    ent[i] = st.entropy;
    ale[i] = s.isMean ? Number.NaN : st.aleatoric;
    mi[i] = st.entropy - ale[i];
    omp[i] = 1 - st.confidence;
  }
  return {
    mean,
    prediction,
    confidence,
    entropy: ent,
    aleatoricEntropy: ale,
    mutualInformation: mi,
    oneMinusMaxProb: omp,
  };
}

/**
 * The predictive mean `pbar[i, c] = mean_l p[l, i, c]`, [N, C], in float64.
 *
 * @param probs - probabilities laid out as described in {@link ClassificationShape}.
 * @param shape - `{ samples?, n, classes }`.
 * @param opts - `tolerance` on row sums (default 1e-3).
 */
export function predictiveMean(
  probs: FloatArray,
  shape: ClassificationShape,
  opts: { tolerance?: number } = {},
): Float64Array {
  return scoresAs('predictiveMean', probs, shape, opts).mean;
}

function meanOf(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

/** Accuracy of the predictive-mean argmax. Arguments and errors as {@link classificationMetrics}. */
export function accuracy(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): number {
  return metricsAs('accuracy', probs, labels, shape, opts).accuracy;
}

/** Error rate, `1 - accuracy`. Arguments and errors as {@link classificationMetrics}. */
export function errorRate(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): number {
  return metricsAs('errorRate', probs, labels, shape, opts).error;
}

/** Mean NLL of the predictive mean (log guarded at 1e-12). Arguments as {@link classificationMetrics}. */
export function negativeLogLikelihood(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): number {
  return metricsAs('negativeLogLikelihood', probs, labels, shape, opts).nll;
}

/** Brier score of the predictive mean, summed over classes. Arguments as {@link classificationMetrics}. */
export function brierScore(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): number {
  return metricsAs('brierScore', probs, labels, shape, opts).brier;
}

/** Expected calibration error (default 10 bins). Arguments as {@link classificationMetrics}. */
export function expectedCalibrationError(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): number {
  return metricsAs('expectedCalibrationError', probs, labels, shape, opts).ece;
}

/** Maximum calibration error (default 10 bins). Arguments as {@link classificationMetrics}. */
export function maximumCalibrationError(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): number {
  return metricsAs('maximumCalibrationError', probs, labels, shape, opts).mce;
}

/** Reliability-diagram bins (default 10). Arguments as {@link classificationMetrics}. */
export function reliabilityDiagram(
  probs: FloatArray,
  labels: Int32Array | ArrayLike<number>,
  shape: ClassificationShape,
  opts: ClassificationOptions = {},
): ReliabilityBin[] {
  return metricsAs('reliabilityDiagram', probs, labels, shape, opts).bins;
}

/** aPE, the average predictive entropy `mean_i H(pbar_i)` in nats. Arguments as {@link uncertaintyScores}. */
export function averagePredictiveEntropy(
  probs: FloatArray,
  shape: ClassificationShape,
  opts: { tolerance?: number } = {},
): number {
  return meanOf(scoresAs('averagePredictiveEntropy', probs, shape, opts).entropy);
}

/**
 * Expected aleatoric entropy `mean_i mean_l H(p_li)` in nats (NaN for a predictive-mean input).
 * Arguments as {@link uncertaintyScores}.
 */
export function expectedAleatoricEntropy(
  probs: FloatArray,
  shape: ClassificationShape,
  opts: { tolerance?: number } = {},
): number {
  return meanOf(scoresAs('expectedAleatoricEntropy', probs, shape, opts).aleatoricEntropy);
}

/**
 * Mean mutual information between prediction and weights (aPE minus expected aleatoric
 * entropy), the epistemic part, in nats (NaN for a predictive-mean input). Arguments as
 * {@link uncertaintyScores}.
 */
export function mutualInformation(
  probs: FloatArray,
  shape: ClassificationShape,
  opts: { tolerance?: number } = {},
): number {
  return meanOf(scoresAs('mutualInformation', probs, shape, opts).mutualInformation);
}
