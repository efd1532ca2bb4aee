// A location-scale weight sample w = mu + softplus(rho) * eps as one tfjs kernel forward
// ('QbnnLocScaleSample') and one backward ('QbnnLocScaleSampleGrad': d/drho = dy * eps *
// sigmoid(rho); d/dmu is dy itself). Composed of tfjs ops the sample takes three element-wise
// kernels forward and three backward over every weight. No backend has these kernels by default:
// an fp32 kernel set (@qbnn/native-amx) registers them for wasm, with the arithmetic of the
// composed ops (float32 softplus, then the product, then the sum), and everywhere else
// {@link locScaleSample} composes tfjs ops.
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';

export const LOCSCALE_SAMPLE = 'QbnnLocScaleSample';
export const LOCSCALE_SAMPLE_GRAD = 'QbnnLocScaleSampleGrad';

/**
 * Checks the kernels' inputs: float32 tensors `names` (mu, rho, eps forward; dy, rho, eps
 * backward) of one element count, which it returns.
 */
export function checkLocScaleSample(inputs: tf.NamedTensorInfoMap, name = LOCSCALE_SAMPLE): number {
  return checkSameSizeFloats(
    inputs,
    name === LOCSCALE_SAMPLE ? ['mu', 'rho', 'eps'] : ['dy', 'rho', 'eps'],
    name,
  );
}

/** Checks that `names` are float32 inputs of one element count (named after the first); returns it. */
export function checkSameSizeFloats(inputs: tf.NamedTensorInfoMap, names: string[], name: string): number {
  let n = -1;
  for (const k of names) {
    const t = inputs[k];
    if (t === undefined || t.dtype !== 'float32')
      throw new QbnnError('ERR_ARG', `${name}: input ${k} must be a float32 tensor`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (n >= 0 && size !== n)
      throw new QbnnError(
        'ERR_ARG',
        `${name}: input ${k} has ${size} elements, expected ${n} like ${names[0]}`,
      );
    n = size;
  }
  return n;
}

/** Whether the active backend has the fused sample kernels. */
export function locScaleSampleFused(): boolean {
  const b = tf.getBackend();
  return (
    tf.getKernel(LOCSCALE_SAMPLE, b) !== undefined && tf.getKernel(LOCSCALE_SAMPLE_GRAD, b) !== undefined
  );
}

/**
 * w = mu + softplus(rho) * eps, differentiable in mu and rho (eps is noise: no gradient). One
 * fused kernel each way where the backend has them, tfjs ops otherwise; both give the values of
 * `tf.add(mu, tf.mul(tf.softplus(rho), eps))` on the backend's own kernels.
 */
export function locScaleSample(mu: tf.Tensor, rho: tf.Tensor, eps: tf.Tensor): tf.Tensor {
  if (!locScaleSampleFused()) return tf.tidy(() => tf.add(mu, tf.mul(tf.softplus(rho), eps)));
  const op = tf.customGrad(((m: tf.Tensor, r: tf.Tensor, save: tf.GradSaveFunc) => {
    save([r, eps]);
    return {
      value: tf.engine().runKernel(LOCSCALE_SAMPLE, { mu: m, rho: r, eps }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        dy,
        tf.engine().runKernel(LOCSCALE_SAMPLE_GRAD, { dy, rho: saved[0], eps: saved[1] }) as tf.Tensor,
      ],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)(mu, rho);
}
