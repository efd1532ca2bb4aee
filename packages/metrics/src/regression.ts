import { MetricsError } from './errors.js';
import { GrowableF64, LOG_FLOOR, normalQuantile } from './numeric.js';
import {
  ADD_BATCH,
  checkArray,
  checkFinite,
  checkInt,
  checkLength,
  checkNonNegative,
  type FloatArray,
} from './validate.js';

/**
 * The layout of regression predictions, row-major:
 * - with `samples` (= L): per-sample means and variances of shape [L, N], element `l * n + i`;
 * - without `samples`: one predictive mean and one (total) variance per example, [N].
 */
export interface RegressionShape {
  /** Number of Monte Carlo samples L (positive integer), or omitted for [N] inputs (L = 1). */
  samples?: number;
  /** Number of examples N (positive integer). */
  n: number;
}

/** Default central-interval levels for coverage. */
export const DEFAULT_COVERAGE_LEVELS: readonly number[] = [0.5, 0.9, 0.95];

/** Options of the regression metrics. */
export interface RegressionOptions {
  /** Central-interval levels in (0, 1) whose coverage is reported (default 0.5, 0.9, 0.95). */
  levels?: ArrayLike<number>;
}

/** Coverage of one central predictive interval. */
export interface CoveragePoint {
  /** Nominal level, e.g. 0.9. */
  level: number;
  /** Half-width in standard deviations, `Phi^-1((1 + level) / 2)` (1.6448... for 0.9). */
  z: number;
  /** Fraction of targets with `|y - mean| <= z * sqrt(variance)`; equal to `level` when calibrated. */
  coverage: number;
}

/** Per-example predictive moments of a regression model. */
export interface RegressionMoments {
  /** Predictive mean `mean_l mu_l`. */
  mean: Float64Array;
  /** Total predictive variance `aleatoric + epistemic`. */
  variance: Float64Array;
  /** `mean_l sigma_l^2`. */
  aleatoric: Float64Array;
  /** `var_l(mu_l)`, the population variance (divide by L) of the sample means. */
  epistemic: Float64Array;
}

/** Every regression figure at once (see {@link regressionMetrics}). */
export interface RegressionMetrics {
  n: number;
  /** L, or null for [N] inputs. */
  samples: number | null;
  /** Root mean squared error of the predictive mean. */
  rmse: number;
  /** Mean absolute error of the predictive mean. */
  mae: number;
  /** Mean Gaussian NLL `1/2 log(2 pi v) + (y - mean)^2 / (2 v)`, v = max(total variance, 1e-12). */
  nll: number;
  /** Mean total predictive variance. */
  meanVariance: number;
  /** Mean aleatoric variance `mean_l sigma_l^2`. */
  meanAleatoricVariance: number;
  /** Mean epistemic variance `var_l(mu_l)`. */
  meanEpistemicVariance: number;
  /** Central-interval coverage at each requested level. */
  coverage: CoveragePoint[];
  /** Per-example moments in example order. */
  perExample: RegressionMoments;
}

const LOG_2PI = Math.log(2 * Math.PI);

function checkLevels(fn: string, levels: ArrayLike<number>): { level: number; z: number }[] {
  checkArray(fn, 'opts.levels', levels);
  return Array.from(levels, (level, i) => {
    if (typeof level !== 'number' || !(level > 0 && level < 1)) {
      throw new MetricsError(
        'ERR_ARG',
        `${fn}: opts.levels[${i}] must be a number in (0, 1), got ${String(level)}`,
      );
    }
    // Phi^-1((1 + level) / 2), computed as -Phi^-1((1 - level) / 2): 1 - level is exact for level >= 0.5.
    return { level, z: -normalQuantile((1 - level) / 2) };
  });
}

function resolveShape(fn: string, shape: RegressionShape): { L: number; isMean: boolean; n: number } {
  if (shape === null || typeof shape !== 'object') {
    throw new MetricsError('ERR_ARG', `${fn}: shape must be an object { samples?, n }, got ${String(shape)}`);
  }
  const n = checkInt(fn, 'shape.n', shape.n, 1);
  const isMean = shape.samples === undefined;
  const L = isMean ? 1 : checkInt(fn, 'shape.samples', shape.samples, 1);
  return { L, isMean, n };
}

function checkInputs(
  fn: string,
  L: number,
  isMean: boolean,
  nb: number,
  means: FloatArray,
  variances: FloatArray | null,
  targets: FloatArray | null,
): void {
  const how = isMean ? 'n' : `samples*n (${L}*${nb})`;
  checkArray(fn, 'means', means);
  checkLength(fn, 'means', means, L * nb, how);
  checkBounded(fn, 'means', means, MAX_VALUE);
  if (variances !== null) {
    checkArray(fn, 'variances', variances);
    checkLength(fn, 'variances', variances, L * nb, how);
    checkNonNegative(fn, 'variances', variances);
    checkBounded(fn, 'variances', variances, MAX_VARIANCE);
  }
  if (targets !== null) {
    checkArray(fn, 'targets', targets);
    checkLength(fn, 'targets', targets, nb, 'n');
    checkBounded(fn, 'targets', targets, MAX_VALUE);
  }
}

/**
 * Largest |mean| and |target| (and variance) accepted: squared errors and variances of values
 * up to these stay finite in float64, so no Infinity - Infinity turns into a NaN figure.
 */
const MAX_VALUE = 1e150;
const MAX_VARIANCE = 1e300;

function checkBounded(fn: string, name: string, a: FloatArray, max: number): void {
  checkFinite(fn, name, a);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i]) > max) {
      throw new MetricsError(
        'ERR_ARG',
        `${fn}: ${name}[${i}] is ${a[i]}, expected an absolute value <= ${max}`,
      );
    }
  }
}

interface Moments {
  mean: number;
  aleatoric: number;
  epistemic: number;
}

/** Moments of example i of a batch [L, nb], sums in sample order (independent of batching). */
function moments(
  means: FloatArray,
  variances: FloatArray | null,
  L: number,
  nb: number,
  i: number,
  out: Moments,
) {
  let s = 0;
  for (let l = 0; l < L; l++) s += means[l * nb + i];
  const mean = s / L;
  let a = 0;
  if (variances !== null) for (let l = 0; l < L; l++) a += variances[l * nb + i];
  let e = 0;
  for (let l = 0; l < L; l++) {
    const d = means[l * nb + i] - mean;
    e += d * d;
  }
  out.mean = mean;
  out.aleatoric = a / L;
  out.epistemic = e / L;
}

/**
 * Streaming regression metrics: feed batches with {@link RegressionAccumulator.update}; the
 * result equals {@link regressionMetrics} on the concatenated data exactly (per-example
 * arithmetic is the same and every sum runs in example order).
 *
 * A batch of `nb` examples is laid out [L, nb] (each sample's values for that batch only), or
 * [nb] when `samples` is omitted.
 */
export class RegressionAccumulator {
  /** L, or null for [N] inputs. */
  readonly samples: number | null;
  private readonly L: number;
  private readonly levels: { level: number; z: number }[];
  private readonly covered: Float64Array;
  private readonly mo: Moments = { mean: 0, aleatoric: 0, epistemic: 0 };
  private nSeen = 0;
  private sumSq = 0;
  private sumAbs = 0;
  private sumNll = 0;
  private sumVar = 0;
  private sumAle = 0;
  private sumEpi = 0;
  private readonly per = {
    mean: new GrowableF64(),
    variance: new GrowableF64(),
    aleatoric: new GrowableF64(),
    epistemic: new GrowableF64(),
  };

  /** @param opts - `samples` (L; omit for [N] batches) and coverage `levels` (default 0.5, 0.9, 0.95). */
  constructor(
    opts: { samples?: number } & RegressionOptions = {},
    /** @internal The function named in errors (a function building an accumulator passes its own). */
    fn = 'RegressionAccumulator',
  ) {
    if (opts === null || typeof opts !== 'object') {
      throw new MetricsError(
        'ERR_ARG',
        `${fn}: opts must be an object { samples?, levels? }, got ${String(opts)}`,
      );
    }
    const s = resolveShape(fn, { n: 1, samples: opts.samples });
    this.L = s.L;
    this.samples = s.isMean ? null : s.L;
    this.levels = checkLevels(fn, opts.levels ?? DEFAULT_COVERAGE_LEVELS);
    this.covered = new Float64Array(this.levels.length);
  }

  /** Number of examples seen so far. */
  get count(): number {
    return this.nSeen;
  }

  /**
   * Add a batch (validated as a whole first; a rejected batch changes nothing).
   *
   * @param means - [L, nb] per-sample predictive means (or [nb]), nb = targets.length.
   * @param variances - [L, nb] per-sample predictive variances sigma^2 >= 0 (or [nb]).
   * @param targets - nb observed values.
   * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite value, ERR_ARG on
   *   a negative variance.
   */
  update(means: FloatArray, variances: FloatArray, targets: FloatArray): this {
    return this[ADD_BATCH]('RegressionAccumulator.update', means, variances, targets);
  }

  /** @internal */
  [ADD_BATCH](fn: string, means: FloatArray, variances: FloatArray, targets: FloatArray): this {
    checkArray(fn, 'targets', targets);
    const nb = targets.length;
    const L = this.L;
    checkInputs(fn, L, this.samples === null, nb, means, variances, targets);
    const { mo, per, levels, covered } = this;
    for (let i = 0; i < nb; i++) {
      moments(means, variances, L, nb, i, mo);
      const v = mo.aleatoric + mo.epistemic;
      const err = targets[i] - mo.mean;
      const vf = Math.max(v, LOG_FLOOR);
      this.sumSq += err * err;
      this.sumAbs += Math.abs(err);
      this.sumNll += 0.5 * (LOG_2PI + Math.log(vf) + (err * err) / vf);
      this.sumVar += v;
      this.sumAle += mo.aleatoric;
      this.sumEpi += mo.epistemic;
      const sd = Math.sqrt(v);
      const ae = Math.abs(err);
      for (let k = 0; k < levels.length; k++) if (ae <= levels[k].z * sd) covered[k]++;
      per.mean.push(mo.mean);
      per.variance.push(v);
      per.aleatoric.push(mo.aleatoric);
      per.epistemic.push(mo.epistemic);
    }
    this.nSeen += nb;
    return this;
  }

  /**
   * Every figure over the examples seen so far.
   * @throws MetricsError ERR_ARG when no example has been added.
   */
  result(): RegressionMetrics {
    const n = this.nSeen;
    if (n === 0)
      throw new MetricsError(
        'ERR_ARG',
        'RegressionAccumulator.result: no examples added yet, expected at least one',
      );
    return {
      n,
      samples: this.samples,
      rmse: Math.sqrt(this.sumSq / n),
      mae: this.sumAbs / n,
      nll: this.sumNll / n,
      meanVariance: this.sumVar / n,
      meanAleatoricVariance: this.sumAle / n,
      meanEpistemicVariance: this.sumEpi / n,
      coverage: this.levels.map(({ level, z }, k) => ({ level, z, coverage: this.covered[k] / n })),
      perExample: {
        mean: this.per.mean.toArray(),
        variance: this.per.variance.toArray(),
        aleatoric: this.per.aleatoric.toArray(),
        epistemic: this.per.epistemic.toArray(),
      },
    };
  }
}

/**
 * All regression metrics of a Bayesian regressor with mean and variance heads: RMSE, MAE,
 * Gaussian NLL and central-interval coverage, all from the predictive mean
 * `mean_l mu_l` and the total predictive variance
 * `var = mean_l(sigma_l^2) + var_l(mu_l)` (aleatoric plus epistemic; `var_l` is the population
 * variance, dividing by L, the variance of the equally weighted mixture of the L Gaussians).
 * The NLL treats the predictive as a Gaussian with that variance, floored at 1e-12.
 *
 * @param means - per-sample means [L, N] (or [N]), see {@link RegressionShape}.
 * @param variances - per-sample variances sigma^2 >= 0, same layout (zeros for a mean-only model).
 * @param targets - N observed values.
 * @param shape - `{ samples?, n }`.
 * @param opts - coverage `levels` (default 0.5, 0.9, 0.95).
 * @throws MetricsError ERR_SHAPE on a length mismatch, ERR_NAN on a non-finite value, ERR_ARG on
 *   a negative variance, a |mean| or |target| above 1e150 or a variance above 1e300 (their
 *   squares would overflow float64), a bad shape or a level outside (0, 1).
 */
export function regressionMetrics(
  means: FloatArray,
  variances: FloatArray,
  targets: FloatArray,
  shape: RegressionShape,
  opts: RegressionOptions = {},
): RegressionMetrics {
  return regressionAs('regressionMetrics', means, variances, targets, shape, opts);
}

/** {@link regressionMetrics} with errors naming `fn` (the public function called). */
function regressionAs(
  fn: string,
  means: FloatArray,
  variances: FloatArray,
  targets: FloatArray,
  shape: RegressionShape,
  opts: RegressionOptions,
): RegressionMetrics {
  const s = resolveShape(fn, shape);
  checkLength(fn, 'targets', targets, s.n, 'shape.n');
  if (opts === null || typeof opts !== 'object') {
    throw new MetricsError('ERR_ARG', `${fn}: opts must be an object, got ${String(opts)}`);
  }
  const acc = new RegressionAccumulator({ ...opts, samples: s.isMean ? undefined : s.L }, fn);
  return acc[ADD_BATCH](fn, means, variances, targets).result();
}

/**
 * Per-example predictive mean and total, aleatoric and epistemic variance.
 *
 * @param means - per-sample means [L, N] (or [N]).
 * @param variances - per-sample variances, same layout.
 * @param shape - `{ samples?, n }`.
 * @throws MetricsError as {@link regressionMetrics}.
 */
export function predictiveMoments(
  means: FloatArray,
  variances: FloatArray,
  shape: RegressionShape,
): RegressionMoments {
  const fn = 'predictiveMoments';
  const { L, isMean, n } = resolveShape(fn, shape);
  checkInputs(fn, L, isMean, n, means, variances, null);
  const out = {
    mean: new Float64Array(n),
    variance: new Float64Array(n),
    aleatoric: new Float64Array(n),
    epistemic: new Float64Array(n),
  };
  const mo: Moments = { mean: 0, aleatoric: 0, epistemic: 0 };
  for (let i = 0; i < n; i++) {
    moments(means, variances, L, n, i, mo);
    out.mean[i] = mo.mean;
    out.aleatoric[i] = mo.aleatoric;
    out.epistemic[i] = mo.epistemic;
    out.variance[i] = mo.aleatoric + mo.epistemic;
  }
  return out;
}

function errorSums(fn: string, means: FloatArray, targets: FloatArray, shape: RegressionShape) {
  const { L, isMean, n } = resolveShape(fn, shape);
  checkInputs(fn, L, isMean, n, means, null, targets);
  const mo: Moments = { mean: 0, aleatoric: 0, epistemic: 0 };
  let sq = 0;
  let ab = 0;
  for (let i = 0; i < n; i++) {
    moments(means, null, L, n, i, mo);
    const e = targets[i] - mo.mean;
    sq += e * e;
    ab += Math.abs(e);
  }
  return { n, sq, ab };
}

/**
 * Root mean squared error of the predictive mean `mean_l mu_l`.
 *
 * @param means - per-sample means [L, N] (or [N]).
 * @param targets - N observed values.
 * @param shape - `{ samples?, n }`.
 */
export function rmse(means: FloatArray, targets: FloatArray, shape: RegressionShape): number {
  const { n, sq } = errorSums('rmse', means, targets, shape);
  return Math.sqrt(sq / n);
}

/**
 * Mean absolute error of the predictive mean `mean_l mu_l`.
 *
 * @param means - per-sample means [L, N] (or [N]).
 * @param targets - N observed values.
 * @param shape - `{ samples?, n }`.
 */
export function mae(means: FloatArray, targets: FloatArray, shape: RegressionShape): number {
  const { n, ab } = errorSums('mae', means, targets, shape);
  return ab / n;
}

/**
 * Mean Gaussian NLL with the total predictive variance (see {@link regressionMetrics}).
 * Arguments and errors as {@link regressionMetrics}.
 */
export function gaussianNll(
  means: FloatArray,
  variances: FloatArray,
  targets: FloatArray,
  shape: RegressionShape,
): number {
  return regressionAs('gaussianNll', means, variances, targets, shape, { levels: [] }).nll;
}

/**
 * Coverage of the central Gaussian predictive intervals `mean +- z sqrt(var)` at each level
 * (default 0.5, 0.9, 0.95). Arguments and errors as {@link regressionMetrics}.
 */
export function intervalCoverage(
  means: FloatArray,
  variances: FloatArray,
  targets: FloatArray,
  shape: RegressionShape,
  levels: ArrayLike<number> = DEFAULT_COVERAGE_LEVELS,
): CoveragePoint[] {
  return regressionAs('intervalCoverage', means, variances, targets, shape, { levels }).coverage;
}
