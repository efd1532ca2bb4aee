import { QbnnError, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

/** A seed for initialisation or sampling: a number (`new Rng(seed)`) or a stream. */
export type SeedLike = number | Rng;

/** The Rng for a seed (default seed 0, so an unseeded layer is still deterministic). */
export function toRng(seed: SeedLike | undefined): Rng {
  if (seed instanceof Rng) return seed;
  return new Rng(seed ?? 0);
}

/** A float32 tensor of U(-bound, bound) values drawn from `rng`. */
export function uniformInit(shape: number[], bound: number, rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = rng.uniform(n);
  for (let i = 0; i < n; i++) u[i] = (2 * u[i] - 1) * bound;
  return tf.tensor(u, shape, 'float32');
}

/**
 * PyTorch's default layer initialisation: `kaiming_uniform_(a = sqrt(5))` for the weight,
 * which is U(-1/sqrt(fanIn), 1/sqrt(fanIn)), and the same bound for the bias. `fanIn` is
 * in_features for Linear and (in/groups)*kh*kw for Conv2d.
 */
export function kaimingUniformBound(fanIn: number): number {
  if (!(fanIn > 0)) throw new QbnnError('ERR_ARG', `fanIn must be positive, got ${fanIn}`);
  return 1 / Math.sqrt(fanIn);
}
