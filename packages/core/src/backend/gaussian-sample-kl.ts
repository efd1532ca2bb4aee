// Gaussian weight samples and their closed-form KL as one tfjs kernel each way, for training in
// weights mode: 'QbnnGaussianSampleKl' (inputs, in a list, (mu, rho, eps) of each of k tensors;
// outputs each w = mu + sigma * eps and the KL of all of them: each tensor's KL of N(mu, sigma^2),
// sigma = softplus(rho), to its prior N(m0, s0^2), as 'QbnnGaussianKl' gives it, summed in float32
// in order as AddN sums them) and 'QbnnGaussianSampleKlGrad' (inputs (mu, rho, eps, dw) of each
// tensor and the KL's scalar gradient dkl; outputs each dmu = dw + dkl dKL/dmu and
// drho = dw eps sigmoid(rho) + dkl dKL/drho). The two fused kernels they replace
// ('QbnnLocScaleSample', 'QbnnGaussianKl') each read mu and rho and compute sigma, and their
// gradients come back as two tensors per variable that tfjs then adds: two passes and an add over
// every weight a step. A layer's weight and bias go in one call: each tfjs kernel call costs ~20-40
// us of tape, clones of its saved inputs and garbage, more than a bias's sample. No backend has
// these kernels by default: an fp32 kernel set (@qbnn/native-amx) registers them for wasm, and
// elsewhere posteriors sample and take the KL separately.
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import { checkGaussianPrior } from './gaussian-kl.js';
import { checkSameSizeFloats } from './locscale-sample.js';

export const GAUSSIAN_SAMPLE_KL = 'QbnnGaussianSampleKl';
export const GAUSSIAN_SAMPLE_KL_GRAD = 'QbnnGaussianSampleKlGrad';

/** Attributes of both kernels: tensor j's prior is N(priorMean[j], priorSigma[j]^2). */
export interface GaussianSampleKlAttrs {
  priorMean: number[];
  priorSigma: number[];
}

/** Inputs a tensor takes in the list: (mu, rho, eps) forward, (mu, rho, eps, dw) in the gradient. */
export const sampleKlStride = (name: string): number => (name === GAUSSIAN_SAMPLE_KL ? 3 : 4);

/**
 * Checks the kernels' inputs (a list of float32 (mu, rho, eps) of one element count per tensor;
 * the gradient's (mu, rho, eps, dw) and a last scalar dkl) and the prior attributes (one finite
 * mean and sigma > 0 per tensor); returns each tensor's element count.
 */
export function checkGaussianSampleKl(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
  name = GAUSSIAN_SAMPLE_KL,
): number[] {
  const { priorMean, priorSigma } = attrs as unknown as GaussianSampleKlAttrs;
  if (!Array.isArray(priorMean) || !Array.isArray(priorSigma) || priorMean.length !== priorSigma.length)
    throw new QbnnError(
      'ERR_ARG',
      `${name}: priorMean and priorSigma must be arrays of one length (a prior a tensor)`,
    );
  const count = priorMean.length;
  const stride = sampleKlStride(name);
  const list = Object.values(inputs);
  const want = count * stride + (name === GAUSSIAN_SAMPLE_KL ? 0 : 1);
  if (count === 0 || list.length !== want)
    throw new QbnnError(
      'ERR_ARG',
      `${name}: expected ${want} inputs for ${count} tensor(s) (${stride} a tensor${name === GAUSSIAN_SAMPLE_KL ? '' : ' and dkl'}), got ${list.length}`,
    );
  const names = ['mu', 'rho', 'eps', 'dw'].slice(0, stride);
  const sizes = priorMean.map((m, j) => {
    checkGaussianPrior({ priorMean: m, priorSigma: priorSigma[j] }, name);
    const named = Object.fromEntries(names.map((k, i) => [`${k}[${j}]`, list[j * stride + i]]));
    return checkSameSizeFloats(named, Object.keys(named), name);
  });
  if (name !== GAUSSIAN_SAMPLE_KL) {
    const dkl = list[want - 1];
    if (dkl === undefined || dkl.dtype !== 'float32' || dkl.shape.length !== 0)
      throw new QbnnError('ERR_ARG', `${name}: input dkl must be a float32 scalar`);
  }
  return sizes;
}

/** Whether the active backend has both fused kernels. */
export function gaussianSampleKlFused(): boolean {
  const b = tf.getBackend();
  return (
    tf.getKernel(GAUSSIAN_SAMPLE_KL, b) !== undefined &&
    tf.getKernel(GAUSSIAN_SAMPLE_KL_GRAD, b) !== undefined
  );
}

/** One tensor of {@link gaussianSampleKlMany}: its location, its rho, the noise and the prior. */
export interface GaussianSampleKlPart {
  mu: tf.Tensor;
  rho: tf.Tensor;
  eps: tf.Tensor;
  prior: { mean: number; sigma: number };
}

/**
 * Each part's w = mu + softplus(rho) * eps and the KL of them all (each part's closed-form KL of
 * N(mu, softplus(rho)^2) to its prior, summed in float32 in order), differentiable in every mu and
 * rho (eps is noise: no gradient), as one kernel each way; null when the active backend lacks the
 * kernels (the caller composes `locScaleSample` and the separate KL).
 */
export function gaussianSampleKlMany(
  parts: GaussianSampleKlPart[],
): { w: tf.Tensor[]; kl: tf.Scalar } | null {
  if (!gaussianSampleKlFused()) return null;
  const attrs: GaussianSampleKlAttrs = {
    priorMean: parts.map((p) => p.prior.mean),
    priorSigma: parts.map((p) => p.prior.sigma),
  };
  const inputs = parts.flatMap((p) => [p.mu, p.rho, p.eps]);
  const outs = tf
    .engine()
    .runKernel(
      GAUSSIAN_SAMPLE_KL,
      inputs as unknown as tf.NamedTensorMap,
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
  return { w: outs.slice(0, parts.length), kl: outs[parts.length] as tf.Scalar };
}

/** {@link gaussianSampleKlMany} of one tensor. */
export function gaussianSampleKl(
  mu: tf.Tensor,
  rho: tf.Tensor,
  eps: tf.Tensor,
  prior: { mean: number; sigma: number },
): { w: tf.Tensor; kl: tf.Scalar } | null {
  const r = gaussianSampleKlMany([{ mu, rho, eps, prior }]);
  return r && { w: r.w[0], kl: r.kl };
}

/** The fused kernel's gradient: one kernel from every output's gradient. */
export function registerGaussianSampleKlGradient(): void {
  tf.registerGradient({
    kernelName: GAUSSIAN_SAMPLE_KL,
    saveAllInputs: true,
    gradFunc: (dys, saved, attrs) => {
      const d = dys as tf.Tensor[];
      const count = d.length - 1;
      const inputs = [];
      for (let j = 0; j < count; j++) inputs.push(saved[3 * j], saved[3 * j + 1], saved[3 * j + 2], d[j]);
      inputs.push(d[count]);
      // all at once, here: tfjs calls each input's function inside its own tidy
      const grads = tf
        .engine()
        .runKernel(GAUSSIAN_SAMPLE_KL_GRAD, inputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor[];
      const out: Record<string, () => tf.Tensor> = {};
      for (let j = 0; j < count; j++) {
        out[3 * j] = () => grads[2 * j];
        out[3 * j + 1] = () => grads[2 * j + 1];
      }
      return out;
    },
  });
}
