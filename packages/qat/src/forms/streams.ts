import { Rng } from '@qbnn/core';
import type { LayerStreams } from './types.js';

/** The streams of the layer at `index` (execution order) for a call seeded by `root`. */
export function layerStreams(root: Rng, index: number): LayerStreams {
  const r = root.fork(index);
  return {
    weight: r.fork(0).key,
    bias: r.fork(1).key,
    mask: r.fork(2).key,
    scalar: r.fork(3),
    local: r.fork(4).key,
  };
}

/**
 * A standard normal scalar of sample l for tensor `which` (0 the weight, 1 the bias) from the
 * layer's scalar stream: the radial radius draws it, and so can a plugin's low-rank factor.
 */
export function scalarNormal(streams: LayerStreams, l: number, which: 0 | 1): number {
  const rng = Rng.fromKey(streams.scalar.key[0], streams.scalar.key[1], 2 * l + which);
  return rng.normal(1)[0];
}
