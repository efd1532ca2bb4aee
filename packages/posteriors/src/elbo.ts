import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { LOG_2PI } from './math.js';

/**
 * Mean categorical negative log-likelihood: mean over the batch of -log softmax(logits)[y].
 * @param logits - `[N, C]`.
 * @param labels - `[N]` integer class indices (int32 or float), or `[N, C]` one-hot / soft labels.
 */
export function categoricalNll(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (logits.rank !== 2)
    throw new QbnnError('ERR_SHAPE', `categoricalNll: logits must be [N, C], got [${logits.shape}]`);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const target =
      labels.rank === 1
        ? tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, logits.shape[1] as number)
        : tf.cast(labels, 'float32');
    if (target.shape[0] !== logits.shape[0]) {
      throw new QbnnError(
        'ERR_SHAPE',
        `categoricalNll: ${target.shape[0]} labels for ${logits.shape[0]} rows`,
      );
    }
    return tf.neg(tf.mean(tf.sum(tf.mul(target, logp), 1))) as tf.Scalar;
  });
}

/** How a regression head's second output becomes a variance. */
export type VarianceLink = 'softplus' | 'exp';

/** The variance of a mean/variance head's raw second output: softplus(raw) + minVar, or exp(raw) + minVar. */
export function linkVariance(raw: tf.Tensor, link: VarianceLink = 'softplus', minVar = 1e-6): tf.Tensor {
  return tf.tidy(() => tf.add(link === 'exp' ? tf.exp(raw) : tf.softplus(raw), minVar));
}

/**
 * Mean Gaussian negative log-likelihood with predicted variance:
 * mean(1/2 log(2 pi var) + (y - mu)^2 / (2 var)).
 * @param output - `[N, 2]` (mean, raw variance) passed through `link`, or give `variance` directly.
 */
export function gaussianNll(
  output: tf.Tensor,
  target: tf.Tensor,
  options: { link?: VarianceLink; minVar?: number; variance?: tf.Tensor } = {},
): tf.Scalar {
  return tf.tidy(() => {
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (options.variance) {
      mean = output;
      variance = options.variance;
    } else {
      if (output.rank !== 2 || output.shape[1] !== 2) {
        throw new QbnnError(
          'ERR_SHAPE',
          `gaussianNll: output must be [N, 2] (mean, raw variance), got [${output.shape}]`,
        );
      }
      const [m, raw] = tf.split(output, 2, 1);
      mean = tf.reshape(m, [-1]);
      variance = linkVariance(tf.reshape(raw, [-1]), options.link, options.minVar);
    }
    const y = tf.reshape(target, mean.shape);
    const per = tf.add(
      tf.mul(0.5, tf.add(tf.log(variance), LOG_2PI)),
      tf.div(tf.square(tf.sub(y, mean)), tf.mul(2, variance)),
    );
    return tf.mean(per) as tf.Scalar;
  });
}

/**
 * The per-example negative ELBO of one minibatch:
 *
 * loss = NLL_mean + beta * KL / datasetSize.
 *
 * KL scaling: the ELBO of the whole dataset is sum_i E[log p(y_i | x_i, w)] - KL. Dividing it by
 * the dataset size N gives a per-example objective whose minibatch estimate is the batch mean of
 * the NLL plus KL / N, independent of the batch size B (a sum-over-batch NLL with KL / M for M
 * batches would scale with B, and the learning rate with it). Summed over the M = N / B batches
 * of an epoch (times B) it is exactly -ELBO when beta = 1. `beta` comes from a
 * {@link klWeight} schedule, in these units (1 = the true ELBO).
 */
export function elboLoss(
  nllMean: tf.Scalar,
  kl: tf.Scalar,
  options: { datasetSize: number; beta?: number },
): tf.Scalar {
  const n = options.datasetSize;
  if (!(Number.isSafeInteger(n) && n > 0)) {
    throw new QbnnError('ERR_ARG', `elboLoss: datasetSize must be a positive integer, got ${n}`);
  }
  const beta = options.beta ?? 1;
  return tf.tidy(() => tf.add(nllMean, tf.mul(beta / n, kl)) as tf.Scalar);
}
