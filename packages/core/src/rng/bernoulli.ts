import { QbnnError } from '../errors.js';
import { roundHalfEven } from '../quant/round.js';
import { philoxFill } from './philox.js';

/**
 * The integer drop threshold of a Bernoulli mask: `round(p * 2^32)` (ties to even), p the drop
 * probability in [0, 1]. An element is kept (mask 1) iff its uniform word u satisfies
 * `u >= threshold`, so P(keep) = 1 - threshold / 2^32: exactly 1 for p = 0 and 0 for p = 1.
 */
export function bernoulliThreshold(p: number): number {
  if (typeof p !== 'number' || Number.isNaN(p) || p < 0 || p > 1) {
    throw new QbnnError('ERR_ARG', `p (the drop probability) must be a number in [0, 1], got ${p}`);
  }
  return roundHalfEven(p * 0x100000000);
}

const CHUNK_WORDS = 16384;

/**
 * Fills `out` with a keep-mask (1 = keep, 0 = drop) for drop probability p from the Philox
 * stream (key, position), element j from word j % 4 of block position + floor(j / 4).
 */
export function bernoulliFill(
  key: readonly [number, number],
  position: number,
  p: number,
  out: Uint8Array,
): Uint8Array {
  if (!(out instanceof Uint8Array)) throw new QbnnError('ERR_ARG', 'bernoulliFill: out must be a Uint8Array');
  if (!Number.isSafeInteger(position) || position < 0) {
    throw new QbnnError(
      'ERR_ARG',
      `bernoulliFill: position must be a non-negative safe integer, got ${position}`,
    );
  }
  const t = bernoulliThreshold(p);
  const n = out.length;
  const words = new Uint32Array(Math.min(n, CHUNK_WORDS));
  for (let start = 0; start < n; start += CHUNK_WORDS) {
    const len = Math.min(CHUNK_WORDS, n - start);
    const w = len === words.length ? words : words.subarray(0, len);
    philoxFill(key[0], key[1], position, w, start / 4);
    for (let i = 0; i < len; i++) out[start + i] = w[i] >= t ? 1 : 0;
  }
  return out;
}
