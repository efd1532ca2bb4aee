import { QbnnError, softmaxCrossEntropy } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { checkClassLabels } from './inputs.js';

/** Class indices of `labels`: int32 `[N]` as is, one-hot / probabilities `[N, C]` by argmax. */
export function labelIndices(labels: tf.Tensor): tf.Tensor1D {
  if (labels.rank === 1) return (labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32')) as tf.Tensor1D;
  if (labels.rank === 2) return tf.argMax(labels, 1) as tf.Tensor1D;
  throw new QbnnError('ERR_SHAPE', `labels must be [N] indices or [N, C] one-hot, got [${labels.shape}]`);
}

/**
 * Mean softmax cross-entropy of `logits [N, C]` against class indices `[N]` (int32) or target
 * distributions `[N, C]` (float32, e.g. one-hot or label-smoothed).
 */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (logits.rank !== 2) throw new QbnnError('ERR_SHAPE', `logits must be [N, C], got [${logits.shape}]`);
  const [n, c] = logits.shape;
  // class indices must be integers in [0, C): a label of 7 of 3 classes, -1 or 0.5 contributed
  // nothing (or another class) to the loss and its gradient, silently (PyTorch refuses them)
  if (labels.rank === 1) checkClassLabels('crossEntropy: labels', labels, n, c);
  if (labels.rank === 1 && labels.shape[0] === n) {
    // class indices: one fused kernel each way where the backend has it (@qbnn/core)
    const fused = softmaxCrossEntropy(logits, labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32'));
    if (fused) return fused;
  }
  const target =
    labels.rank === 1 ? tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, c) : tf.cast(labels, 'float32');
  if (target.shape[0] !== n || target.shape[1] !== c) {
    throw new QbnnError('ERR_SHAPE', `labels [${labels.shape}] do not match logits [${logits.shape}]`);
  }
  return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** Mean squared error. */
export function mse(pred: tf.Tensor, target: tf.Tensor): tf.Scalar {
  if (!tf.util.arraysEqual(pred.shape, target.shape)) {
    throw new QbnnError('ERR_SHAPE', `mse: prediction [${pred.shape}] vs target [${target.shape}]`);
  }
  return tf.mean(tf.squaredDifference(pred, target)) as tf.Scalar;
}

/**
 * Mean Gaussian negative log-likelihood for a mean / log-variance network whose output is
 * `[N, 2K]` (means then log-variances, as {@link RegressionMLP} returns) and targets `[N, K]`
 * (or `[N]` when K = 1): `0.5 (log 2 pi + logvar + (y - mean)^2 exp(-logvar))`.
 */
export function gaussianNll(out: tf.Tensor, target: tf.Tensor): tf.Scalar {
  const width = (out.shape as number[])[1];
  if (out.rank !== 2 || width % 2 !== 0) {
    throw new QbnnError('ERR_SHAPE', `gaussianNll: output must be [N, 2K], got [${out.shape}]`);
  }
  const k = width / 2;
  const y = target.rank === 1 ? tf.reshape(target, [-1, 1]) : target;
  if (y.shape[0] !== out.shape[0] || y.shape[1] !== k) {
    throw new QbnnError('ERR_SHAPE', `gaussianNll: targets [${target.shape}] vs output [${out.shape}]`);
  }
  const [mean, logVar] = tf.split(out, 2, 1);
  const sq = tf.mul(tf.squaredDifference(y, mean), tf.exp(tf.neg(logVar)));
  return tf.mul(tf.mean(tf.add(tf.add(logVar, sq), Math.log(2 * Math.PI))), 0.5) as tf.Scalar;
}
