import { QbnnError, type Rng } from '@qbnn/core';

/** Throws ERR_ARG unless `v` is an integer in [min, max]. */
export function checkInt(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new QbnnError('ERR_ARG', `${name} must be an integer ${range}, got ${String(v)}`);
  }
  return v;
}

/** Throws ERR_ARG unless `v` is a finite number in [min, max]. */
export function checkNumber(name: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new QbnnError('ERR_ARG', `${name} must be a finite number in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

const INV_2_53 = 1 / 9007199254740992;

/**
 * A uniformly random permutation of 0..n-1 (Fisher-Yates). Each swap index is drawn from 53 random
 * bits (two uint32 words), so the bias is below 2^-36 for any n a typed array can hold.
 */
export function permutation(n: number, rng: Rng): Int32Array {
  checkInt('n', n, 0, 0x7fffffff);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  if (n < 2) return p;
  const w = rng.uint32(2 * (n - 1));
  for (let i = n - 1, k = 0; i > 0; i--, k += 2) {
    const u = ((w[k] >>> 5) * 67108864 + (w[k + 1] >>> 6)) * INV_2_53;
    const j = Math.floor(u * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Copies samples `idx` of a row-major array with `width` values a sample into a new array. */
export function gatherRows<T extends Float32Array | Int32Array>(
  src: T,
  width: number,
  idx: ArrayLike<number>,
): T {
  const out = new (src.constructor as new (n: number) => T)(idx.length * width);
  if (width === 1) {
    for (let i = 0; i < idx.length; i++) out[i] = src[idx[i]];
    return out;
  }
  for (let i = 0; i < idx.length; i++) {
    const s = idx[i] * width;
    out.set(src.subarray(s, s + width), i * width);
  }
  return out;
}
