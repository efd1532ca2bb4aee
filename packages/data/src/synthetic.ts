import { Rng } from '@qbnn/core';
import type { RegressionSet } from './types.js';
import { checkInt, checkNumber } from './util.js';

/** A synthetic regression set with its true noise level at every point. */
export interface SyntheticRegressionSet extends RegressionSet {
  /** The noise standard deviation the target of each sample was drawn with. */
  noiseStd: Float32Array;
  /** The noise-free target 2x + 8 of each sample. */
  mean: Float32Array;
}

/** Options of the synthetic regression sets. */
export interface SyntheticOptions {
  /** Samples, default 1000 (as the paper). */
  n?: number;
  /** Seed, default 0. */
  seed?: number;
  /** Add noise, default true (the paper tests on the noise-free line). */
  noise?: boolean;
}

/**
 * The paper's toy regression: x ~ N(0, 1), y = 2x + 8 + eps, eps ~ N(0, 1), one feature.
 * x and eps come from independent forks (0 and 1) of `new Rng(seed)`, so the same seed gives the
 * same x with and without noise.
 */
export function synthLinear(options: SyntheticOptions = {}): SyntheticRegressionSet {
  const n = checkInt('synthLinear: n', options.n ?? 1000, 0);
  const rng = new Rng(options.seed ?? 0);
  const x = rng.fork(0).normal(n);
  const eps = rng.fork(1).normal(n);
  const noise = options.noise ?? true;
  const y = new Float32Array(n);
  const mean = new Float32Array(n);
  const noiseStd = new Float32Array(n).fill(noise ? 1 : 0);
  for (let i = 0; i < n; i++) {
    mean[i] = 2 * x[i] + 8;
    y[i] = noise ? mean[i] + eps[i] : mean[i];
  }
  return { x, y, n, nFeatures: 1, noiseStd, mean };
}

/** Options of {@link synthHeteroscedastic}. */
export interface HeteroscedasticOptions extends SyntheticOptions {
  /** Half-width of the input range: x ~ U(-range, range), default 3. */
  range?: number;
  /** Noise std at x = 0, default 0.1. */
  sigma0?: number;
  /** Growth of the noise std with |x|, default 0.5. */
  slope?: number;
}

/**
 * A heteroscedastic line. Noise model: x ~ U(-range, range), y = 2x + 8 + sigma(x) eps with
 * eps ~ N(0, 1) and sigma(x) = sigma0 + slope |x|; with the defaults the noise std grows from 0.1
 * at x = 0 to 1.6 at |x| = 3. A model with a variance head should learn sigma(x); `noiseStd`
 * holds the true sigma of each sample (for the oracle NLL).
 */
export function synthHeteroscedastic(options: HeteroscedasticOptions = {}): SyntheticRegressionSet {
  const n = checkInt('synthHeteroscedastic: n', options.n ?? 1000, 0);
  const range = checkNumber('synthHeteroscedastic: range', options.range ?? 3, 0);
  const sigma0 = checkNumber('synthHeteroscedastic: sigma0', options.sigma0 ?? 0.1, 0);
  const slope = checkNumber('synthHeteroscedastic: slope', options.slope ?? 0.5, 0);
  const rng = new Rng(options.seed ?? 0);
  const u = rng.fork(0).uniform(n);
  const eps = rng.fork(1).normal(n);
  const noise = options.noise ?? true;
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  const mean = new Float32Array(n);
  const noiseStd = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = (2 * u[i] - 1) * range;
    mean[i] = 2 * x[i] + 8;
    const s = sigma0 + slope * Math.abs(x[i]);
    noiseStd[i] = noise ? s : 0;
    y[i] = noise ? mean[i] + s * eps[i] : mean[i];
  }
  return { x, y, n, nFeatures: 1, noiseStd, mean };
}
