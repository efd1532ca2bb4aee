import * as tf from '@tensorflow/tfjs-core';
import { kaimingUniformBound, type SeedLike, toRng, uniformInit } from '../init.js';
import type { Module } from '../module.js';

/**
 * Registers a layer's `weight` of `weightShape` and, unless `bias` is false, its `bias` of
 * `[outChannels]`, both drawn as torch does (U(±1/sqrt(fanIn)), weight first) from `seed`.
 */
export function registerWeightAndBias(
  m: Module,
  weightShape: number[],
  outChannels: number,
  fanIn: number,
  opts: { bias?: boolean; seed?: SeedLike },
): void {
  const bound = kaimingUniformBound(fanIn);
  const rng = toRng(opts.seed);
  tf.tidy(() => {
    m.registerParameter('weight', uniformInit(weightShape, bound, rng));
    if (opts.bias ?? true) m.registerParameter('bias', uniformInit([outChannels], bound, rng));
  });
}
