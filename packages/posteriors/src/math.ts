import * as tf from '@tensorflow/tfjs-core';

/** log(2 pi). */
export const LOG_2PI = Math.log(2 * Math.PI);

const LOG_LINEAR_BELOW = -20;

/**
 * softplus(x) = log(1 + e^x), tfjs's thresholded kernel (x itself for large x, e^x for very
 * negative x, log1p(e^x) between: no overflow, full relative precision where it underflows
 * towards 0), with gradient sigmoid(x). (Composing log1p(exp(.)) is not stable here: the wasm
 * backend's log1p is log(1 + u), which loses all precision below u ~ 1e-7.)
 */
export function softplus(x: tf.Tensor): tf.Tensor {
  return tf.softplus(x);
}

const logSoftplusGrad = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  const mid = tf.log(softplus(tf.maximum(x, LOG_LINEAR_BELOW)));
  const value = tf.where(tf.less(x, LOG_LINEAR_BELOW), x, mid);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs] = saved;
      // d/dx log softplus(x) = sigmoid(x) / softplus(x), which tends to 1 as x -> -inf.
      const xc = tf.maximum(xs, LOG_LINEAR_BELOW);
      const g = tf.where(
        tf.less(xs, LOG_LINEAR_BELOW),
        tf.onesLike(xs),
        tf.div(tf.sigmoid(xc), softplus(xc)),
      );
      return tf.mul(dy, g);
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/**
 * log(softplus(x)), stable for very negative x where softplus underflows (there it is x to
 * float32 precision). Gradient sigmoid(x) / softplus(x).
 */
export function logSoftplus(x: tf.Tensor): tf.Tensor {
  return logSoftplusGrad(x);
}

/**
 * The inverse of softplus, rho = log(e^sigma - 1) = sigma + log(1 - e^-sigma), in float64: the
 * rho that gives a wanted sigma (used by initialisation and MOPED).
 */
export function softplusInverse(sigma: number): number {
  if (sigma > 20) return sigma;
  return Math.log(-Math.expm1(-sigma)) + sigma;
}

/** softplus in float64 (a reference for tests and initialisation). */
export function softplus64(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** log Gamma(x) for x > 0 in float64 (Lanczos approximation, g = 7; relative error ~1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Euler-Mascheroni constant. */
export const EULER_GAMMA = 0.5772156649015329;
