// A Gaussian weight sample for inference as one tfjs kernel: 'QbnnNormalLocScale' draws the
// standard normals of a Philox stream (Rng.normal's values, from a given block) and returns
// w = mu + sigma * eps without eps ever being a tensor. Composed, the sample writes eps (one
// float a weight) and reads it back; for a Bayesian LeNet-5 that is 5 MB each way per Monte Carlo
// sample. No gradient: posteriors use it only where no tape records (inference). No backend has
// the kernel by default: an fp32 kernel set (@qbnn/native-amx) registers it for wasm.
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import type { Rng } from '../rng/rng.js';
import { checkSameSizeFloats } from './locscale-sample.js';

export const NORMAL_LOCSCALE = 'QbnnNormalLocScale';

/** The kernel's attributes: the stream's key words and the block its first normal comes from. */
export interface NormalLocScaleAttrs {
  k0: number;
  k1: number;
  firstBlock: number;
}

/**
 * Checks the kernel's inputs (float32 mu and sigma of one element count) and attributes (uint32
 * key words, a non-negative safe-integer block); returns the element count.
 */
export function checkNormalLocScale(inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap): number {
  const n = checkSameSizeFloats(inputs, ['mu', 'sigma'], NORMAL_LOCSCALE);
  const { k0, k1, firstBlock } = attrs as unknown as NormalLocScaleAttrs;
  for (const [name, v] of [
    ['k0', k0],
    ['k1', k1],
  ] as const)
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw new QbnnError('ERR_ARG', `${NORMAL_LOCSCALE}: ${name} must be an integer in [0, 2^32), got ${v}`);
  if (!Number.isSafeInteger(firstBlock) || firstBlock < 0)
    throw new QbnnError(
      'ERR_ARG',
      `${NORMAL_LOCSCALE}: firstBlock must be a non-negative safe integer, got ${firstBlock}`,
    );
  return n;
}

/** Whether the active backend has the kernel. */
export function normalLocScaleFused(): boolean {
  return tf.getKernel(NORMAL_LOCSCALE, tf.getBackend()) !== undefined;
}

/**
 * w = mu + sigma * eps with eps = `rng.normal(mu.size)`: the values of
 * `tf.add(mu, tf.mul(sigma, normalTensor(rng, mu.shape)))` and the same advance of `rng`, in one
 * kernel without gradient; null (and `rng` untouched) when the active backend lacks the kernel.
 */
export function normalLocScale(mu: tf.Tensor, sigma: tf.Tensor, rng: Rng): tf.Tensor | null {
  if (!normalLocScaleFused()) return null;
  const n = mu.size;
  // Rng.normal's positions: word pairs, so an odd count still takes the pair's second word
  const firstBlock = rng.take(Math.ceil((n + (n & 1)) / 4));
  const attrs: NormalLocScaleAttrs = { k0: rng.key[0], k1: rng.key[1], firstBlock };
  return tf
    .engine()
    .runKernel(NORMAL_LOCSCALE, { mu, sigma }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
