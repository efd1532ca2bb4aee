/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
 *
 * Counter-based: block i of a stream is a pure function of (key, i), so any sub-range can be
 * produced independently (by any thread, by JS or by native code) and the bytes never depend
 * on how the work was split. This file is the reference every other implementation matches.
 */

import { QbnnError } from '../errors.js';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 (exact; JS doubles cannot hold 2^64). */
function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * One Philox4x32-10 block: writes 4 uint32 words for counter (c0..c3) under key (k0, k1)
 * into `out[offset..offset+3]`.
 */
export function philox4x32(
  k0: number,
  k1: number,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  out: Uint32Array,
  offset = 0,
): void {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let a = k0 >>> 0;
  let b = k1 >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(M0, x0);
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi32(M1, x2);
    const lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ a) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ b) >>> 0;
    x3 = lo0;
    a = (a + W0) >>> 0;
    b = (b + W1) >>> 0;
  }
  out[offset] = x0;
  out[offset + 1] = x1;
  out[offset + 2] = x2;
  out[offset + 3] = x3;
}

const TWO_POW_32 = 0x100000000;

/**
 * Fills `out` with the uint32 words of blocks `b, b+1, ...` of the stream with key (k0, k1),
 * where `b = firstBlock + blockOffset`: word j of the result is word (j % 4) of block
 * b + floor(j / 4). Counter layout: (block low 32 bits, block high 32 bits, 0, 0).
 *
 * The block counter is kept as two uint32 words with a carry, so blocks beyond 2^53 (where a
 * double cannot count by one) are exactly the 64-bit counters the native kernels use; the sum
 * `firstBlock + blockOffset` is formed there too, never in a double.
 * @throws QbnnError ERR_ARG unless `firstBlock` and `blockOffset` are non-negative safe integers.
 */
export function philoxFill(
  k0: number,
  k1: number,
  firstBlock: number,
  out: Uint32Array,
  blockOffset = 0,
): void {
  for (const [name, v] of [
    ['firstBlock', firstBlock],
    ['blockOffset', blockOffset],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new QbnnError('ERR_ARG', `philoxFill: ${name} must be a non-negative safe integer, got ${v}`);
    }
  }
  let lo = (firstBlock % TWO_POW_32) + (blockOffset % TWO_POW_32);
  let hi = Math.floor(firstBlock / TWO_POW_32) + Math.floor(blockOffset / TWO_POW_32);
  if (lo >= TWO_POW_32) {
    lo -= TWO_POW_32;
    hi++;
  }
  const n = out.length;
  const full = n >>> 2;
  for (let i = 0; i < full; i++) {
    philox4x32(k0, k1, lo, hi, 0, 0, out, i * 4);
    if (++lo === TWO_POW_32) {
      lo = 0;
      hi = (hi + 1) >>> 0;
    }
  }
  const rest = n - full * 4;
  if (rest > 0) {
    const tmp = new Uint32Array(4);
    philox4x32(k0, k1, lo, hi, 0, 0, tmp, 0);
    for (let j = 0; j < rest; j++) out[full * 4 + j] = tmp[j];
  }
}
