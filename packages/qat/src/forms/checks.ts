import { checkQuantParams, QbnnError } from '@qbnn/core';
import type { QParams } from '../spec.js';

// The checks a quantised model's weights get when a QuantizedModel is built (converted,
// hand-made or loaded): shared by engine/check-model.ts and every form's `validate`, public so a
// plugin form checks its own tensors the same way.

/** Throws ERR_ARG `QuantizedModel: <path> <what>`. */
export function fail(path: string, what: string): never {
  throw new QbnnError('ERR_ARG', `QuantizedModel: ${path} ${what}`);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function int(path: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
    fail(path, `must be an integer in [${lo}, ${hi}], got ${show(v)}`);
  return v;
}

export function show(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** A weight tensor's params: per tensor or per channel (n), with the given signedness. */
export function checkParams(path: string, p: unknown, n: number, signed: boolean): QParams {
  if (!isObject(p)) fail(path, `must be quantisation params, got ${show(p)}`);
  if (p.signed !== signed) fail(`${path}.signed`, `must be ${signed}, got ${show(p.signed)}`);
  checkQuantParams(path, p as unknown as QParams, n);
  return p as unknown as QParams;
}

/** An integer tensor: its type, length, and every value within the params' bit range. */
export function checkInts(
  path: string,
  v: unknown,
  Ctor: Int8ArrayConstructor | Uint8ArrayConstructor,
  length: number,
  p: QParams,
): void {
  if (!(v instanceof Ctor)) fail(path, `must be an ${Ctor.name}`);
  if (v.length !== length) fail(path, `must have ${length} values, got ${v.length}`);
  const lo = p.signed ? -(2 ** (p.bits - 1)) : 0;
  const hi = p.signed ? 2 ** (p.bits - 1) - 1 : 2 ** p.bits - 1;
  if (lo === -128 && hi === 127) return;
  if (lo === 0 && hi === 255) return;
  for (let i = 0; i < v.length; i++) {
    if (v[i] < lo || v[i] > hi)
      fail(`${path}[${i}]`, `= ${v[i]} is outside the ${p.bits}-bit range [${lo}, ${hi}]`);
  }
}

/** A float tensor: Float32Array of n finite values (non-negative when asked). */
export function checkFloats(path: string, v: unknown, n: number, nonNegative: boolean): void {
  if (!(v instanceof Float32Array)) fail(path, 'must be a Float32Array');
  if (v.length !== n) fail(path, `must have ${n} values, got ${v.length}`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(v[i]) || (nonNegative && v[i] < 0))
      fail(`${path}[${i}]`, `must be finite${nonNegative ? ' and >= 0' : ''}, got ${v[i]}`);
  }
}
