import { QbnnError, type Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * A tensor of standard normals drawn from `rng` (deterministic by the stream's key and position;
 * written in place into the wasm heap on tfjs-backend-wasm). Re-exported from `@qbnn/core`.
 */
export { normalTensor } from '@qbnn/core';

/** A tensor of independent random signs (+1 / -1 with probability 1/2). */
export function signTensor(rng: Rng, shape: readonly number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const w = rng.uint32(n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = w[i] & 1 ? 1 : -1;
  return tf.tensor(out, shape as number[], 'float32');
}

/**
 * A tensor of Bernoulli keep-masks scaled by 1 / (1 - p) (inverted dropout): each element is
 * 1 / (1 - p) with probability 1 - p and 0 with probability p.
 */
export function dropoutMask(rng: Rng, shape: readonly number[], p: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = rng.uniform(n);
  const keep = 1 / (1 - p);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = u[i] >= p ? keep : 0;
  return tf.tensor(out, shape as number[], 'float32');
}

/**
 * `n` independent Gamma(shape, 1) variates (rate 1; multiply by a scale, divide by a rate) by
 * Marsaglia and Tsang (2000), with the boost Gamma(a) = Gamma(a + 1) U^(1/a) for a < 1.
 * Computed in float64 from `rng`'s normals and uniforms, rejections redrawn in rounds, so the
 * result is a deterministic function of the stream.
 *
 * @throws QbnnError ERR_ARG unless shape > 0 and finite.
 */
export function sampleGamma(shape: number, n: number, rng: Rng): Float64Array {
  if (!(shape > 0 && Number.isFinite(shape))) {
    throw new QbnnError('ERR_ARG', `sampleGamma: shape must be positive and finite, got ${shape}`);
  }
  const out = new Float64Array(n);
  const boost = shape < 1;
  const a = boost ? shape + 1 : shape;
  const d = a - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  let pending = Int32Array.from({ length: n }, (_, i) => i);
  while (pending.length > 0) {
    const m = pending.length;
    const z = rng.normal(m);
    const u = rng.uniform(m);
    const rejected: number[] = [];
    for (let j = 0; j < m; j++) {
      const x = z[j];
      const t = 1 + c * x;
      if (t <= 0) {
        rejected.push(pending[j]);
        continue;
      }
      const v = t * t * t;
      // 1 - u lies in (0, 1], so the logarithm is finite.
      const logU = Math.log(1 - u[j]);
      if (logU < 0.5 * x * x + d - d * v + d * Math.log(v)) out[pending[j]] = d * v;
      else rejected.push(pending[j]);
    }
    pending = Int32Array.from(rejected);
  }
  if (boost) {
    const u = rng.uniform(n);
    for (let i = 0; i < n; i++) out[i] *= (1 - u[i]) ** (1 / shape);
  }
  return out;
}

/** `n` independent chi-square variates with `k` > 0 degrees of freedom (2 Gamma(k/2)); k = 0 gives zeros. */
export function sampleChiSquare(k: number, n: number, rng: Rng): Float64Array {
  if (k === 0) return new Float64Array(n);
  const g = sampleGamma(k / 2, n, rng);
  for (let i = 0; i < n; i++) g[i] *= 2;
  return g;
}

/**
 * The sufficient statistics of M independent standard normal draws per element, drawn exactly
 * in O(n) time whatever M is: with S = sum xi ~ N(0, M) and, independently (Cochran),
 * sum xi^2 - S^2 / M ~ chi2(M - 1),
 *
 * t1 = mean_m xi_m = S / M,   t2 = mean_m xi_m^2 = (S^2 / M + R) / M.
 *
 * @param n - number of elements.
 * @param m - number of Monte Carlo samples M >= 1.
 */
export function drawGaussianStats(n: number, m: number, rng: Rng): { t1: Float32Array; t2: Float32Array } {
  if (!Number.isSafeInteger(m) || m < 1) {
    throw new QbnnError('ERR_ARG', `drawGaussianStats: M must be a positive integer, got ${m}`);
  }
  const z = rng.normal(n);
  const r = sampleChiSquare(m - 1, n, rng);
  const t1 = new Float32Array(n);
  const t2 = new Float32Array(n);
  const sq = Math.sqrt(m);
  for (let i = 0; i < n; i++) {
    // S = sqrt(M) z, so S / M = z / sqrt(M) and S^2 / M = z^2.
    t1[i] = z[i] / sq;
    t2[i] = (z[i] * z[i] + r[i]) / m;
  }
  return { t1, t2 };
}
