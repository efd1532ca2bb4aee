import { QbnnError, Rng } from '@qbnn/core';
import type { RegressionSet } from './types.js';
import { checkInt, gatherRows, permutation } from './util.js';

/** The 13 input columns of Boston housing, in order; the target is MEDV. */
export const BOSTON_FEATURES: readonly string[] = [
  'crim',
  'zn',
  'indus',
  'chas',
  'nox',
  'rm',
  'age',
  'dis',
  'rad',
  'tax',
  'ptratio',
  'b',
  'lstat',
];

/** A {@link RegressionSet} with column names. */
export interface NamedRegressionSet extends RegressionSet {
  featureNames: readonly string[];
  /** Name of the target column. */
  targetName: string;
}

/** A train/test pair of sample indices. */
export interface Fold {
  train: Int32Array;
  test: Int32Array;
}

/** Options of {@link kFold}. */
export interface KFoldOptions {
  /** Number of folds, default 10 (the paper's). */
  k?: number;
  /** Shuffle the samples before cutting folds, default true. */
  shuffle?: boolean;
  /** Seed of the shuffle, default 0. */
  seed?: number;
}

/**
 * K-fold cross-validation indices. The (optionally permuted, by `new Rng(seed).fork(1)`) order is
 * cut into k contiguous folds, the first `n % k` one sample larger (as scikit-learn's KFold);
 * fold i tests on the i-th piece and trains on the rest, both in ascending position order. With
 * `shuffle: false` this is the unshuffled KFold the paper's code used.
 *
 * @throws QbnnError ERR_ARG unless 2 <= k <= n
 */
export function kFold(n: number, options: KFoldOptions = {}): Fold[] {
  checkInt('kFold: n', n, 0);
  const k = checkInt('kFold: k', options.k ?? 10, 2);
  if (k > n) throw new QbnnError('ERR_ARG', `kFold: k must be at most n = ${n}, got ${k}`);
  let order: Int32Array;
  if (options.shuffle ?? true) order = permutation(n, new Rng(options.seed ?? 0).fork(1));
  else {
    order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
  }
  const folds: Fold[] = [];
  let start = 0;
  for (let f = 0; f < k; f++) {
    const size = Math.floor(n / k) + (f < n % k ? 1 : 0);
    const test = order.slice(start, start + size);
    const train = new Int32Array(n - size);
    train.set(order.subarray(0, start), 0);
    train.set(order.subarray(start + size), start);
    folds.push({ train, test });
    start += size;
  }
  return folds;
}

/** A split standardised with statistics of its train part. */
export interface StandardizedSplit {
  train: RegressionSet;
  test: RegressionSet;
  /** Per-feature mean and standard deviation of the train inputs (float64). */
  xMean: Float64Array;
  xStd: Float64Array;
  /** Mean and standard deviation of the train targets: y = yz * yStd + yMean undoes it. */
  yMean: number;
  yStd: number;
  /** The sample indices of each part. */
  trainIndex: Int32Array;
  testIndex: Int32Array;
}

/**
 * Standardises a split: every feature and the target become (v - mean) / std with mean and
 * population std (divisor n, as numpy's `var()` in the paper's code) of the TRAIN rows only, so
 * nothing of the test rows leaks in. A constant train column gets std 1 (it becomes all zeros).
 *
 * @throws QbnnError ERR_ARG when an index is out of range or the train part is empty
 */
export function standardizeSplit(
  data: RegressionSet,
  trainIndex: Int32Array,
  testIndex: Int32Array,
): StandardizedSplit {
  const { n, nFeatures: d } = data;
  if (trainIndex.length === 0) throw new QbnnError('ERR_ARG', 'standardizeSplit: trainIndex is empty');
  for (const idx of [trainIndex, testIndex]) {
    for (let i = 0; i < idx.length; i++) {
      if (!(idx[i] >= 0 && idx[i] < n)) {
        throw new QbnnError('ERR_ARG', `standardizeSplit: index ${idx[i]} out of range [0, ${n})`);
      }
    }
  }
  const m = trainIndex.length;
  const xMean = new Float64Array(d);
  const xStd = new Float64Array(d);
  let yMean = 0;
  for (let i = 0; i < m; i++) {
    const r = trainIndex[i];
    for (let j = 0; j < d; j++) xMean[j] += data.x[r * d + j];
    yMean += data.y[r];
  }
  for (let j = 0; j < d; j++) xMean[j] /= m;
  yMean /= m;
  let yVar = 0;
  for (let i = 0; i < m; i++) {
    const r = trainIndex[i];
    for (let j = 0; j < d; j++) {
      const t = data.x[r * d + j] - xMean[j];
      xStd[j] += t * t;
    }
    const t = data.y[r] - yMean;
    yVar += t * t;
  }
  for (let j = 0; j < d; j++) xStd[j] = Math.sqrt(xStd[j] / m) || 1;
  const yStd = Math.sqrt(yVar / m) || 1;
  const part = (idx: Int32Array): RegressionSet => {
    const x = gatherRows(data.x, d, idx);
    const y = gatherRows(data.y, 1, idx);
    for (let i = 0; i < idx.length; i++) {
      for (let j = 0; j < d; j++) x[i * d + j] = (x[i * d + j] - xMean[j]) / xStd[j];
      y[i] = (y[i] - yMean) / yStd;
    }
    return { x, y, n: idx.length, nFeatures: d };
  };
  return {
    train: part(trainIndex),
    test: part(testIndex),
    xMean,
    xStd,
    yMean,
    yStd,
    trainIndex: trainIndex.slice(),
    testIndex: testIndex.slice(),
  };
}

/**
 * Maps standardised predictions back to target units: mean `yz * yStd + yMean`; pass a standard
 * deviation (or `isStd`) to get `s * yStd` only (a variance scales by yStd^2).
 */
export function unstandardizeTarget(
  yz: ArrayLike<number>,
  yMean: number,
  yStd: number,
  isStd = false,
): Float32Array {
  const out = new Float32Array(yz.length);
  for (let i = 0; i < yz.length; i++) out[i] = isStd ? yz[i] * yStd : yz[i] * yStd + yMean;
  return out;
}

/**
 * Any regression set as K standardised cross-validation splits (default 10, shuffled by seed):
 * {@link kFold} over its rows, then {@link standardizeSplit} of each fold.
 */
export function regressionFolds(data: RegressionSet, options: KFoldOptions = {}): StandardizedSplit[] {
  return kFold(data.n, options).map((f) => standardizeSplit(data, f.train, f.test));
}
