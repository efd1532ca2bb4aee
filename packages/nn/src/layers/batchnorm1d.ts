import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { BatchNorm2d } from './norm.js';

/**
 * Batch normalisation of `[N, C]` or `[N, C, L]` input over the channel axis, PyTorch's
 * BatchNorm1d: statistics over N (and L), the same parameters, buffers and names as
 * {@link BatchNorm2d} (it runs BatchNorm2d's computation on a `[N, C, 1, L]` view).
 */
export class BatchNorm1d extends BatchNorm2d {
  override forward(x: tf.Tensor): tf.Tensor {
    const c = this.numFeatures;
    if ((x.rank !== 2 && x.rank !== 3) || x.shape[1] !== c) {
      throw new QbnnError(
        'ERR_SHAPE',
        `BatchNorm1d: expected [N, ${c}] or [N, ${c}, L] input, got [${x.shape}]`,
      );
    }
    const view = tf.reshape(x, [x.shape[0], c, 1, x.rank === 3 ? (x.shape[2] as number) : 1]);
    return tf.reshape(super.forward(view), x.shape);
  }
}
