import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';

/** Options of {@link BatchNorm2d}. */
export interface BatchNorm2dOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Running statistics update weight: `running = (1 - m) running + m batch` (default 0.1). */
  momentum?: number;
  /** Learn a per-channel scale `weight` and shift `bias` (default true). */
  affine?: boolean;
}

/**
 * Batch normalisation over the channel axis of NCHW input, PyTorch semantics.
 *
 * Training mode normalises with the batch mean and biased variance over (N, H, W) and updates
 * the buffers `running_mean` and `running_var` (the latter with the unbiased variance) and the
 * int32 counter `num_batches_tracked`; eval mode normalises with the running statistics.
 * Parameters `weight` (ones) and `bias` (zeros). Names match torch, so state dicts map 1:1.
 */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly affine: boolean;

  constructor(numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    if (!Number.isSafeInteger(numFeatures) || numFeatures <= 0) {
      throw new QbnnError(
        'ERR_ARG',
        `BatchNorm2d numFeatures must be a positive integer, got ${numFeatures}`,
      );
    }
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.affine = opts.affine ?? true;
    if (!(this.eps > 0)) throw new QbnnError('ERR_ARG', `BatchNorm2d eps must be > 0, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new QbnnError('ERR_ARG', `BatchNorm2d momentum must be in [0, 1], got ${this.momentum}`);
    }
    tf.tidy(() => {
      if (this.affine) {
        this.registerParameter('weight', tf.ones([numFeatures]));
        this.registerParameter('bias', tf.zeros([numFeatures]));
      }
      this.registerBuffer('running_mean', tf.zeros([numFeatures]));
      this.registerBuffer('running_var', tf.ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
    });
  }

  forward(x: tf.Tensor): tf.Tensor {
    const c = this.numFeatures;
    if (x.rank !== 4 || x.shape[1] !== c) {
      throw new QbnnError(
        'ERR_SHAPE',
        `BatchNorm2d: expected NCHW input with ${c} channels, got [${x.shape}]`,
      );
    }
    const shape = [1, c, 1, 1];
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (this.training) {
      const n = x.size / c;
      if (n < 2)
        throw new QbnnError('ERR_SHAPE', 'BatchNorm2d: training needs more than one value per channel');
      mean = tf.mean(x, [0, 2, 3], true);
      variance = tf.mean(tf.square(tf.sub(x, mean)), [0, 2, 3], true);
      const m = this.momentum;
      const rm = this.buffer('running_mean');
      const rv = this.buffer('running_var');
      const bm = tf.reshape(mean, [c]);
      const bv = tf.mul(tf.reshape(variance, [c]), n / (n - 1));
      rm.assign(tf.add(tf.mul(rm, 1 - m), tf.mul(bm, m)));
      rv.assign(tf.add(tf.mul(rv, 1 - m), tf.mul(bv, m)));
      const nb = this.buffer('num_batches_tracked');
      nb.assign(tf.add(nb, tf.scalar(1, 'int32')));
    } else {
      mean = tf.reshape(this.buffer('running_mean'), shape);
      variance = tf.reshape(this.buffer('running_var'), shape);
    }
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
    if (this.affine) {
      y = tf.add(tf.mul(y, tf.reshape(this.param('weight'), shape)), tf.reshape(this.param('bias'), shape));
    }
    return y;
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine}`;
  }
}
