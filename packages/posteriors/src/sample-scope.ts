// Within one Monte Carlo prediction the posteriors' parameters do not change, so sigma =
// softplus(rho) is the same for every sample: computed once per tensor and kept until the
// prediction ends, instead of one softplus per weight per sample. Outside a scope nothing is kept.
import * as tf from '@tensorflow/tfjs-core';
import { softplus } from './math.js';

interface Entry {
  data: object;
  sigma: tf.Tensor;
}

let cache: Map<tf.Tensor, Entry> | null = null;

/** Runs `fn` with sigma kept per rho tensor (nested scopes share the outer one); frees them after. */
export function withSigmaCache<T>(fn: () => T): T {
  if (cache !== null) return fn();
  const own = new Map<tf.Tensor, Entry>();
  cache = own;
  try {
    return fn();
  } finally {
    cache = null;
    for (const e of own.values()) e.sigma.dispose();
  }
}

/**
 * softplus(rho): inside {@link withSigmaCache} one tensor per rho and data (an assign to rho
 * computes it again), not to be disposed by the caller; outside, a fresh tensor.
 */
export function sigmaOf(rho: tf.Tensor): tf.Tensor {
  if (cache === null) return softplus(rho);
  const hit = cache.get(rho);
  if (hit !== undefined && hit.data === rho.dataId && !hit.sigma.isDisposed) return hit.sigma;
  hit?.sigma.dispose();
  const sigma = tf.keep(softplus(rho));
  cache.set(rho, { data: rho.dataId, sigma });
  return sigma;
}
