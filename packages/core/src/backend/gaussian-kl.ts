// The closed-form KL of a mean-field Gaussian posterior N(mu, softplus(rho)^2) to a Gaussian
// prior N(m0, s0^2) with scalar m0, s0, as two tfjs kernels: 'QbnnGaussianKl' (the sum, one pass)
// and 'QbnnGaussianKlGrad' (d/dmu and d/drho of dy * KL, one pass). Composed of tfjs ops the same
// KL and its gradient take ~20 element-wise kernels over every weight. Per element:
//
//   kl = log s0 - log sigma - 1/2 + ((mu - m0)^2 + sigma^2) / (2 s0^2),  sigma = softplus(rho)
//   d/dmu = (mu - m0) / s0^2
//   d/drho = sigmoid(rho) sigma / s0^2 - dlog(sigma)/drho,  dlog(sigma)/drho = sigmoid(rho) / sigma
//
// with log sigma = rho and its derivative 1 below rho = -20 (softplus(rho) = e^rho there to
// float precision), as posteriors' logSoftplus. The JS kernels compute in float64 and are the
// reference; @qbnn/native-amx replaces the wasm ones (float32 element maths, float64 sums).
import type * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import { type FloatIo, registerFloatKernel } from './heap.js';

export const GAUSSIAN_KL = 'QbnnGaussianKl';
export const GAUSSIAN_KL_GRAD = 'QbnnGaussianKlGrad';

/** The prior of {@link GAUSSIAN_KL}: mean m0 and standard deviation s0 > 0. */
export interface GaussianKlAttrs {
  priorMean: number;
  priorSigma: number;
}

/** Below this rho, log softplus(rho) is rho (float32 cannot tell them apart). */
export const LOG_SOFTPLUS_LINEAR_BELOW = -20;

function softplus64(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Sum of the per-element KL, in float64. */
export function gaussianKlSum(mu: Float32Array, rho: Float32Array, a: GaussianKlAttrs): number {
  const m0 = a.priorMean;
  const inv2s2 = 1 / (2 * a.priorSigma * a.priorSigma);
  let sum = 0;
  for (let i = 0; i < mu.length; i++) {
    const r = rho[i];
    const s = softplus64(r);
    const logS = r < LOG_SOFTPLUS_LINEAR_BELOW ? r : Math.log(s);
    const d = mu[i] - m0;
    sum += -logS + (d * d + s * s) * inv2s2;
  }
  return sum + mu.length * (Math.log(a.priorSigma) - 0.5);
}

/** dy times the gradient of {@link gaussianKlSum} with respect to mu and rho. */
export function gaussianKlGrad(
  mu: Float32Array,
  rho: Float32Array,
  dy: number,
  dMu: Float32Array,
  dRho: Float32Array,
  a: GaussianKlAttrs,
): void {
  const m0 = a.priorMean;
  const invS2 = 1 / (a.priorSigma * a.priorSigma);
  for (let i = 0; i < mu.length; i++) {
    const r = rho[i];
    const s = softplus64(r);
    const sig = 1 / (1 + Math.exp(-r));
    const dLogS = r < LOG_SOFTPLUS_LINEAR_BELOW ? 1 : sig / s;
    dMu[i] = dy * (mu[i] - m0) * invS2;
    dRho[i] = dy * (sig * s * invS2 - dLogS);
  }
}

/** Checks the kernels' inputs and attributes; returns the element count. */
export function checkGaussianKl(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
  name = GAUSSIAN_KL,
): number {
  const { mu, rho } = inputs;
  if (mu === undefined || rho === undefined || mu.dtype !== 'float32' || rho.dtype !== 'float32')
    throw new QbnnError('ERR_ARG', `${name}: inputs mu and rho must be float32 tensors`);
  const n = mu.shape.reduce((x, y) => x * y, 1);
  if (rho.shape.reduce((x, y) => x * y, 1) !== n)
    throw new QbnnError('ERR_ARG', `${name}: rho must have ${n} elements like mu`);
  checkGaussianPrior(attrs, name);
  return n;
}

/** Checks the prior attributes of the Gaussian KL kernels: a finite priorMean, a finite priorSigma > 0. */
export function checkGaussianPrior(attrs: tf.NamedAttrMap, name: string): void {
  const { priorMean, priorSigma } = attrs as unknown as GaussianKlAttrs;
  if (typeof priorMean !== 'number' || !Number.isFinite(priorMean))
    throw new QbnnError('ERR_ARG', `${name}: priorMean must be a finite number, got ${String(priorMean)}`);
  if (typeof priorSigma !== 'number' || !(priorSigma > 0 && Number.isFinite(priorSigma)))
    throw new QbnnError(
      'ERR_ARG',
      `${name}: priorSigma must be a finite number > 0, got ${String(priorSigma)}`,
    );
}

function klKernel(io: (b: unknown) => FloatIo): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    checkGaussianKl(inputs, attrs);
    const b = io(backend);
    const out = b.alloc([]);
    const { mu, rho } = inputs as Record<string, tf.TensorInfo>;
    b.read(out)[0] = gaussianKlSum(b.read(mu), b.read(rho), attrs as unknown as GaussianKlAttrs);
    return out;
  };
}

function gradKernel(io: (b: unknown) => FloatIo): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    checkGaussianKl(inputs, attrs, GAUSSIAN_KL_GRAD);
    const b = io(backend);
    const { mu, rho, dy } = inputs as Record<string, tf.TensorInfo>;
    if (dy === undefined || dy.shape.length !== 0)
      throw new QbnnError('ERR_ARG', `${GAUSSIAN_KL_GRAD}: input dy must be a scalar`);
    // every output allocated before any view is taken (a wasm allocation may move the heap)
    const outs = [b.alloc([...mu.shape]), b.alloc([...rho.shape])];
    const [dMu, dRho] = outs.map((t) => b.read(t));
    gaussianKlGrad(b.read(mu), b.read(rho), b.read(dy)[0], dMu, dRho, attrs as unknown as GaussianKlAttrs);
    return outs;
  };
}

/** Registers the JS kernels for 'wasm' and 'cpu' (unless someone already did). */
export function registerGaussianKlKernels(): void {
  registerFloatKernel(GAUSSIAN_KL, klKernel);
  registerFloatKernel(GAUSSIAN_KL_GRAD, gradKernel);
}
