import { initBackend } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerOp } from '../src/types.js';

/** The qbnn backend (wasm with gradients, or cpu). */
export async function setup(): Promise<void> {
  await initBackend({ log: () => {} });
}

/** A linear op [N, in] x [out, in]^T, independent of @qbnn/nn, for unit tests. */
export const testLinearOp: LayerOp = {
  kind: 'linear',
  apply: (x, w, b) => {
    const y = tf.matMul(x, w, false, true);
    return b ? tf.add(y, b) : y;
  },
};

/** Mean and unbiased variance of a sample. */
export function meanVar(xs: ArrayLike<number>): { mean: number; variance: number } {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m += xs[i];
  m /= xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i] - m) ** 2;
  return { mean: m, variance: v / (xs.length - 1) };
}

/** softplus in float64. */
export function sp(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}
