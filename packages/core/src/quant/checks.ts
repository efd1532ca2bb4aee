import { QbnnError } from '../errors.js';

// Argument checks shared by quant/ and kernels/ (internal: not exported from the package).

export function checkInt(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new QbnnError('ERR_ARG', `${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  }
  return v;
}

export function checkPositiveScale(name: string, v: unknown): number {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new QbnnError(
      typeof v === 'number' ? 'ERR_NAN' : 'ERR_ARG',
      `${name} must be a number, got ${String(v)}`,
    );
  }
  if (!Number.isFinite(v) || v <= 0) {
    throw new QbnnError('ERR_ARG', `${name} must be a finite number > 0, got ${v}`);
  }
  return v;
}

export function checkFinite(name: string, v: unknown): number {
  if (typeof v !== 'number') throw new QbnnError('ERR_ARG', `${name} must be a number, got ${typeof v}`);
  if (!Number.isFinite(v)) throw new QbnnError('ERR_NAN', `${name} must be finite, got ${v}`);
  return v;
}

/**
 * Throws ERR_ARG unless `v` is an Array or a typed array: an object with a `length` is refused,
 * since its length is not backed by values and must not size an allocation.
 */
export function checkArrayLike(name: string, v: unknown): ArrayLike<number> {
  if (!Array.isArray(v) && !(ArrayBuffer.isView(v) && !(v instanceof DataView))) {
    throw new QbnnError('ERR_ARG', `${name} must be an array or typed array of numbers, got ${String(v)}`);
  }
  return v as ArrayLike<number>;
}

export function checkLength(name: string, arr: { length: number }, expected: number): void {
  if (arr.length !== expected) {
    throw new QbnnError('ERR_SHAPE', `${name} must have length ${expected}, got ${arr.length}`);
  }
}

/** Validates a shape and returns its element count. */
export function shapeSize(name: string, shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new QbnnError('ERR_ARG', `${name} must be an array of integers`);
  let size = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new QbnnError('ERR_SHAPE', `${name}[${i}] must be a non-negative integer, got ${d}`);
    }
    size *= d;
  }
  return size;
}

/**
 * Broadcasts a per-tensor (number or length-1) or per-channel (length n) list to a Float64Array
 * of length n, checking each entry with `check`.
 */
export function perChannelF64(
  name: string,
  v: number | ArrayLike<number>,
  n: number,
  check: (name: string, x: unknown) => number,
): Float64Array {
  const out = new Float64Array(n);
  if (typeof v === 'number') {
    out.fill(check(name, v));
    return out;
  }
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) {
    throw new QbnnError('ERR_ARG', `${name} must be a number or an array of numbers`);
  }
  if (v.length === 1) {
    out.fill(check(name, v[0]));
    return out;
  }
  if (v.length !== n) {
    throw new QbnnError(
      'ERR_SHAPE',
      `${name} must be a number or have length 1 or ${n}, got length ${v.length}`,
    );
  }
  for (let i = 0; i < n; i++) out[i] = check(`${name}[${i}]`, v[i]);
  return out;
}

/** As perChannelF64, for integer zero points in [lo, hi]. */
export function perChannelI32(
  name: string,
  v: number | ArrayLike<number>,
  n: number,
  lo: number,
  hi: number,
): Int32Array {
  const f = perChannelF64(name, v, n, (nm, x) => checkInt(nm, x, lo, hi));
  return Int32Array.from(f);
}
