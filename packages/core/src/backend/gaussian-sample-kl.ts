// A Gaussian weight sample and its closed-form KL as one tfjs kernel each way, for training in
// weights mode: 'QbnnGaussianSampleKl' (inputs mu, rho, eps; outputs w = mu + sigma * eps and the
// summed KL of N(mu, sigma^2), sigma = softplus(rho), to the prior N(m0, s0^2), as
// 'QbnnGaussianKl' gives it) and 'QbnnGaussianSampleKlGrad' (from dw and the KL's scalar
// gradient dkl: dmu = dw + dkl dKL/dmu, drho = dw eps sigmoid(rho) + dkl dKL/drho). The two fused
// kernels they replace ('QbnnLocScaleSample', 'QbnnGaussianKl') each read mu and rho and compute
// sigma, and their gradients come back as two tensors per variable that tfjs then adds: two
// passes and an add over every weight a step. No backend has these kernels by default: an fp32
// kernel set (@qbnn/native-amx) registers them for wasm, and elsewhere posteriors sample and take
// the KL separately.
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import { checkGaussianPrior, type GaussianKlAttrs } from './gaussian-kl.js';
import { checkSameSizeFloats } from './locscale-sample.js';

export const GAUSSIAN_SAMPLE_KL = 'QbnnGaussianSampleKl';
export const GAUSSIAN_SAMPLE_KL_GRAD = 'QbnnGaussianSampleKlGrad';

/**
 * Checks the kernels' inputs (float32 mu, rho, eps of one element count; the gradient's dw too and
 * a scalar dkl) and the prior attributes; returns the element count.
 */
export function checkGaussianSampleKl(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
  name = GAUSSIAN_SAMPLE_KL,
): number {
  const n = checkSameSizeFloats(
    inputs,
    name === GAUSSIAN_SAMPLE_KL ? ['mu', 'rho', 'eps'] : ['mu', 'rho', 'eps', 'dw'],
    name,
  );
  if (name !== GAUSSIAN_SAMPLE_KL) {
    const dkl = inputs.dkl;
    if (dkl === undefined || dkl.dtype !== 'float32' || dkl.shape.length !== 0)
      throw new QbnnError('ERR_ARG', `${name}: input dkl must be a float32 scalar`);
  }
  checkGaussianPrior(attrs, name);
  return n;
}

/** Whether the active backend has both fused kernels. */
export function gaussianSampleKlFused(): boolean {
  const b = tf.getBackend();
  return (
    tf.getKernel(GAUSSIAN_SAMPLE_KL, b) !== undefined &&
    tf.getKernel(GAUSSIAN_SAMPLE_KL_GRAD, b) !== undefined
  );
}

/**
 * w = mu + softplus(rho) * eps and the summed closed-form KL of N(mu, softplus(rho)^2) to
 * N(prior.mean, prior.sigma^2), differentiable in mu and rho (eps is noise: no gradient), as one
 * kernel each way; null when the active backend lacks the kernels (the caller composes
 * `locScaleSample` and the separate KL).
 */
export function gaussianSampleKl(
  mu: tf.Tensor,
  rho: tf.Tensor,
  eps: tf.Tensor,
  prior: { mean: number; sigma: number },
): { w: tf.Tensor; kl: tf.Scalar } | null {
  if (!gaussianSampleKlFused()) return null;
  const attrs: GaussianKlAttrs = { priorMean: prior.mean, priorSigma: prior.sigma };
  const [w, kl] = tf
    .engine()
    .runKernel(GAUSSIAN_SAMPLE_KL, { mu, rho, eps }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { w, kl: kl as tf.Scalar };
}

/** The fused kernel's gradient: one kernel from both outputs' gradients. */
export function registerGaussianSampleKlGradient(): void {
  tf.registerGradient({
    kernelName: GAUSSIAN_SAMPLE_KL,
    inputsToSave: ['mu', 'rho', 'eps'],
    gradFunc: (dys, saved, attrs) => {
      const [dw, dkl] = dys as tf.Tensor[];
      const [mu, rho, eps] = saved;
      // both at once, here: tfjs calls each input's function inside its own tidy
      const [dMu, dRho] = tf
        .engine()
        .runKernel(GAUSSIAN_SAMPLE_KL_GRAD, { mu, rho, eps, dw, dkl }, attrs) as tf.Tensor[];
      return { mu: () => dMu, rho: () => dRho };
    },
  });
}
