import type { PackedInts } from '@qbnn/core';

/**
 * An integer tensor as the addon takes it: its bytes and bits, packInts bytes below 8 bits,
 * else the typed array of its signedness (a view, no copy).
 */
export function rawInts(
  t: Int8Array | Uint8Array | PackedInts,
  signed: boolean,
): [Int8Array | Uint8Array, number] {
  if (t instanceof Int8Array || t instanceof Uint8Array) return [t, 8];
  if (t.bits < 8 || !signed) return [t.bytes, t.bits];
  return [new Int8Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.length), 8];
}
