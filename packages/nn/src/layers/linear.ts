import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { kaimingUniformBound, type SeedLike, toRng, uniformInit } from '../init.js';
import { Module } from '../module.js';
import { nativeFloatKernels } from './native-float.js';

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Initialisation seed (default 0): weight then bias are drawn from one stream. */
  seed?: SeedLike;
}

function checkPositiveInt(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new QbnnError('ERR_ARG', `${what} must be a positive integer, got ${n}`);
  }
}

/**
 * `y = x W^T + b`, PyTorch layout: `weight` is `[outFeatures, inFeatures]`, `bias` is
 * `[outFeatures]`. Input `[N, inFeatures]`. Initialised like torch (U(±1/sqrt(in))).
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    checkPositiveInt('Linear inFeatures', inFeatures);
    checkPositiveInt('Linear outFeatures', outFeatures);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const rng = toRng(opts.seed);
    const bound = kaimingUniformBound(inFeatures);
    tf.tidy(() => {
      this.registerParameter('weight', uniformInit([outFeatures, inFeatures], bound, rng));
      if (opts.bias ?? true) this.registerParameter('bias', uniformInit([outFeatures], bound, rng));
    });
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new QbnnError('ERR_SHAPE', `Linear: expected input [N, ${this.inFeatures}], got [${x.shape}]`);
    }
    return linear(x, this.param('weight'), this.hasParam('bias') ? this.param('bias') : undefined);
  }

  override extraRepr(): string {
    return `in=${this.inFeatures}, out=${this.outFeatures}, bias=${this.hasParam('bias')}`;
  }
}

/**
 * `x w^T` with a custom gradient made of untransposed matmuls and explicit transposes:
 * tfjs-backend-wasm's BatchMatMul is several times slower with a transpose flag set.
 */
function matMulWt(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  // Native fp32 kernels read transposed operands in place: tfjs's own matMul gradient is faster.
  if (nativeFloatKernels('BatchMatMul')) return tf.matMul(x, w, false, true);
  const f = tf.customGrad((xi: tf.Tensor | tf.GradSaveFunc, wi: tf.Tensor | tf.GradSaveFunc, save) => {
    const xt = xi as tf.Tensor2D;
    const wt = wi as tf.Tensor2D;
    (save as tf.GradSaveFunc)([xt, wt]);
    return {
      value: tf.matMul(xt, tf.transpose(wt)) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as tf.Tensor2D[];
        return [tf.matMul(dy, ws), tf.matMul(tf.transpose(dy), xs)];
      },
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/** Functional linear: `x [N, in]`, `weight [out, in]`, optional `bias [out]`. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const y = matMulWt(x as tf.Tensor2D, weight as tf.Tensor2D);
  return bias ? tf.add(y, bias) : y;
}
