import { GAUSSIAN_KL, GAUSSIAN_KL_GRAD, QbnnError, type Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { LOG_2PI } from './math.js';
import { type GaussianPrior, priorTensors } from './priors.js';
import { drawGaussianStats } from './random.js';
import type { KlMethod, KlOptions } from './types.js';

/**
 * The KL pieces of DESIGN.md section 4, as functions over tfjs tensors. For a posterior
 * w = mu + sigma * xi and prior N(mu0, s0^2):
 *
 * KL(q || p) = E_q[log q] - E_q[log p]   (entropy term minus cross term).
 */

/** Entropy term of a factorised Gaussian: E_q[log q] = -1/2 sum(log(2 pi sigma^2) + 1). */
export function gaussianEntropyTerm(logSigma: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mul(-0.5, tf.sum(tf.add(tf.mul(2, logSigma), LOG_2PI + 1))) as tf.Scalar);
}

/** sum over elements of the log density of N(mean, sigma^2) at `w`. */
export function gaussianLogDensity(w: tf.Tensor, prior: GaussianPrior): tf.Scalar {
  return tf.tidy(() => {
    const { mean, sigma } = priorTensors(prior);
    const z = tf.div(tf.sub(w, mean), sigma);
    const per = tf.add(tf.mul(-0.5, tf.square(z)), tf.sub(-0.5 * LOG_2PI, tf.log(sigma)));
    // Broadcast the per-element term to w's shape before summing (a scalar sigma with a tensor w).
    return tf.sum(tf.add(per, tf.zerosLike(w))) as tf.Scalar;
  });
}

/**
 * Cross term from sufficient statistics (t1, t2) of the standardised noise xi:
 *
 * E[log p] ~ sum(-1/2 log(2 pi s0^2) - ((mu - mu0)^2 + 2 (mu - mu0) sigma t1 + sigma^2 t2) / (2 s0^2)).
 *
 * With t1 = E[xi] and t2 = E[xi^2] (numbers or tensors) this is exact; with Monte Carlo
 * averages it is the `repar` estimator (t1, t2 carry no gradient).
 */
export function crossFromStats(
  mu: tf.Tensor,
  sigma: tf.Tensor,
  prior: GaussianPrior,
  t1: number | tf.Tensor,
  t2: number | tf.Tensor,
): tf.Scalar {
  return tf.tidy(() => {
    const { mean, sigma: s0 } = priorTensors(prior);
    const d = tf.sub(mu, mean);
    const quad = tf.add(
      tf.add(tf.square(d), tf.mul(tf.mul(2, d), tf.mul(sigma, t1))),
      tf.mul(tf.square(sigma), t2),
    );
    const per = tf.sub(tf.sub(-0.5 * LOG_2PI, tf.log(s0)), tf.div(quad, tf.mul(2, tf.square(s0))));
    return tf.sum(tf.add(per, tf.zerosLike(mu))) as tf.Scalar;
  });
}

/**
 * `direct` cross term: the average of log p(w_m) over M weight samples w_m = mu + sigma * xi_m,
 * all kept in the autodiff graph (memory grows with M).
 *
 * @param drawXi - draws one standardised noise tensor of mu's shape.
 */
export function crossDirect(
  mu: tf.Tensor,
  sigma: tf.Tensor,
  prior: GaussianPrior,
  m: number,
  drawXi: () => tf.Tensor,
): tf.Scalar {
  checkM(m);
  return tf.tidy(() => {
    let acc: tf.Tensor = tf.scalar(0);
    for (let i = 0; i < m; i++) {
      const w = tf.add(mu, tf.mul(sigma, drawXi()));
      acc = tf.add(acc, gaussianLogDensity(w, prior));
    }
    return tf.div(acc, m) as tf.Scalar;
  });
}

/**
 * Accumulates t1 = mean xi, t2 = mean xi^2 over M draws of `draw` (each `n` values) in float64
 * JavaScript arrays: no tfjs op runs, so nothing is recorded on a gradient tape and tfjs memory
 * is independent of M (the general `repar` path, for noise without an exact shortcut).
 */
export function accumulateStats(
  n: number,
  m: number,
  draw: () => ArrayLike<number>,
): { t1: Float32Array; t2: Float32Array } {
  checkM(m);
  const s1 = new Float64Array(n);
  const s2 = new Float64Array(n);
  for (let k = 0; k < m; k++) {
    const xi = draw();
    if (xi.length !== n)
      throw new QbnnError('ERR_SHAPE', `accumulateStats: draw gave ${xi.length} values, expected ${n}`);
    for (let i = 0; i < n; i++) {
      s1[i] += xi[i];
      s2[i] += xi[i] * xi[i];
    }
  }
  const t1 = new Float32Array(n);
  const t2 = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t1[i] = s1[i] / m;
    t2[i] = s2[i] / m;
  }
  return { t1, t2 };
}

/** Exact draws of (t1, t2) for M standard normal samples per element, as tensors of `shape`. */
export function gaussianStatsTensors(
  shape: readonly number[],
  m: number,
  rng: Rng,
): { t1: tf.Tensor; t2: tf.Tensor } {
  const n = shape.reduce((a, b) => a * b, 1);
  const { t1, t2 } = drawGaussianStats(n, m, rng);
  return { t1: tf.tensor(t1, shape as number[]), t2: tf.tensor(t2, shape as number[]) };
}

/** KL(N(mu, sigma^2) || prior) in closed form, summed: sum(log(s0/sigma) + (sigma^2 + (mu-mu0)^2)/(2 s0^2) - 1/2). */
export function gaussianKlClosed(
  mu: tf.Tensor,
  sigma: tf.Tensor,
  logSigma: tf.Tensor,
  prior: GaussianPrior,
): tf.Scalar {
  return tf.tidy(() => {
    const { mean, sigma: s0 } = priorTensors(prior);
    const num = tf.add(tf.square(sigma), tf.square(tf.sub(mu, mean)));
    const per = tf.sub(tf.add(tf.sub(tf.log(s0), logSigma), tf.div(num, tf.mul(2, tf.square(s0)))), 0.5);
    return tf.sum(tf.add(per, tf.zerosLike(mu))) as tf.Scalar;
  });
}

/** Whether {@link gaussianKlClosedFused} runs for this prior on the active backend. */
export function fusedKlApplies(prior: GaussianPrior): boolean {
  return (
    typeof prior.mean === 'number' &&
    typeof prior.sigma === 'number' &&
    prior.sigma > 0 &&
    tf.getKernel(GAUSSIAN_KL, tf.getBackend()) !== undefined
  );
}

/**
 * {@link gaussianKlClosed} with sigma = softplus(rho) as one fused kernel forward and one
 * backward (@qbnn/core's 'QbnnGaussianKl'), for a prior with number mean and sigma on a backend
 * that has the kernels; null otherwise (the caller composes tfjs ops).
 */
export function gaussianKlClosedFused(mu: tf.Tensor, rho: tf.Tensor, prior: GaussianPrior): tf.Scalar | null {
  if (!fusedKlApplies(prior)) return null;
  if (typeof prior.mean !== 'number' || typeof prior.sigma !== 'number') return null;
  const attrs = { priorMean: prior.mean, priorSigma: prior.sigma } as unknown as tf.NamedAttrMap;
  const op = tf.customGrad(((m: tf.Tensor, r: tf.Tensor, save: tf.GradSaveFunc) => {
    save([m, r]);
    return {
      value: tf.engine().runKernel(GAUSSIAN_KL, { mu: m, rho: r }, attrs) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(GAUSSIAN_KL_GRAD, { mu: saved[0], rho: saved[1], dy }, attrs) as tf.Tensor[],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Scalar)(mu, rho);
}

/** Resolved KL options with defaults, validated against what a posterior supports. */
export function resolveKlOptions(
  kind: string,
  supported: readonly KlMethod[],
  options: KlOptions | undefined,
): { method: KlMethod; m: number } {
  const method = options?.method ?? 'closed';
  if (!supported.includes(method)) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `posterior '${kind}' does not support KL method '${method}'` +
        (supported.length ? ` (supported: ${supported.join(', ')})` : ' (it has no KL divergence)'),
    );
  }
  const m = options?.nMcIter ?? 1;
  checkM(m);
  return { method, m };
}

function checkM(m: number): void {
  if (!Number.isSafeInteger(m) || m < 1) {
    throw new QbnnError('ERR_ARG', `nMcIter must be a positive integer, got ${m}`);
  }
}
