import { bernoulliFill, roundHalfEven } from '@qbnn/core';
import type { DropoutSpec } from '../forms/types.js';
import type { QuantParams } from '../spec.js';
import { qmaxOf } from './requant.js';

/**
 * The requantisation table of MC Dropout, indexed by `mask << 8 | q`: a dropped value (mask 0)
 * becomes the masked grid's zero point (real 0); a kept value q of the input grid is multiplied
 * by 1 / (1 - p) and requantised onto the masked input's own grid. The per-element work is one
 * lookup, without a branch on the random mask.
 */
export function dropoutTable(inQ: QuantParams, d: DropoutSpec): Uint8Array {
  const mult = inQ.scale / ((1 - d.p) * d.masked.scale);
  const zm = d.masked.zeroPoint;
  const qm = qmaxOf(d.masked);
  const lut = new Uint8Array(512).fill(zm);
  for (let q = 0; q < 256; q++)
    lut[256 + q] = Math.min(qm, Math.max(0, roundHalfEven((q - inQ.zeroPoint) * mult) + zm));
  return lut;
}

/**
 * MC Dropout on u8 activations: the Bernoulli keep-mask of sample l (core's bernoulliFill, 1 =
 * keep, from position l * ceil(size / 4) of the layer's mask stream) through the layer's
 * {@link dropoutTable}, written to `out`.
 */
export function dropoutU8(
  a: Uint8Array,
  lut: Uint8Array,
  p: number,
  key: readonly [number, number],
  l: number,
  out: Uint8Array,
): Uint8Array {
  const mask = bernoulliFill(key, l * Math.ceil(a.length / 4), p, new Uint8Array(a.length));
  for (let i = 0; i < a.length; i++) out[i] = lut[(mask[i] << 8) | a[i]];
  return out;
}
