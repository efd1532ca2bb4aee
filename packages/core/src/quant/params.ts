import { QbnnError } from '../errors.js';
import {
  checkArrayLike,
  checkFinite,
  checkInt,
  checkLength,
  checkPositiveScale,
  shapeSize,
} from './checks.js';
import { clampInt, roundHalfEven } from './round.js';

/** Smallest and largest supported bit widths (kernels take one value a byte; packInts packs below 8). */
export const MIN_BITS = 2;
export const MAX_BITS = 8;

/**
 * Per-tensor affine quantisation parameters: `f = scale * (q - zeroPoint)`, q an integer of
 * `bits` bits, signed ([-2^(bits-1), 2^(bits-1) - 1]) or unsigned ([0, 2^bits - 1]).
 */
export interface QuantParams {
  readonly scale: number;
  readonly zeroPoint: number;
  readonly bits: number;
  readonly signed: boolean;
}

/**
 * Per-channel parameters: channel c (the index along `axis` of the tensor's shape) uses
 * `scale[c]` and `zeroPoint[c]`.
 */
export interface PerChannelQuantParams {
  readonly scale: Float64Array;
  readonly zeroPoint: Int32Array;
  readonly axis: number;
  readonly bits: number;
  readonly signed: boolean;
}

/** How to derive parameters from an observed range. */
export interface QuantSpec {
  /** 2..8 */
  bits: number;
  /** Signed storage (Int8Array) or unsigned (Uint8Array). Default: false, or true when symmetric. */
  signed?: boolean;
  /** Zero point forced to 0; requires signed storage. Default false. */
  symmetric?: boolean;
}

/** Inclusive integer range of a `bits`-bit signed or unsigned value. */
export function qRange(bits: number, signed: boolean): { qmin: number; qmax: number } {
  checkInt('bits', bits, MIN_BITS, MAX_BITS);
  return signed ? { qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1 } : { qmin: 0, qmax: 2 ** bits - 1 };
}

/** Affine parameters as read from outside (a file, a caller): per tensor or per channel. */
export interface QuantParamsLike {
  readonly scale: number | ArrayLike<number>;
  readonly zeroPoint: number | ArrayLike<number>;
  readonly bits: number;
  readonly signed: boolean;
}

/**
 * Checks affine parameters before use (the one check of qbnn's loaders and quantisers): `bits`
 * an integer in [MIN_BITS, MAX_BITS], `signed` a boolean, every scale finite and > 0, every zero
 * point an integer inside the range of `bits` and `signed`; scale and zero point each a number,
 * or an array of length 1 (per tensor) or `channels` (per channel). Throws a QbnnError naming
 * `name` and the first bad entry; allocates nothing.
 */
export function checkQuantParams(name: string, p: QuantParamsLike, channels = 1): void {
  if (p == null || typeof p !== 'object')
    throw new QbnnError('ERR_ARG', `${name} must be quantisation parameters`);
  checkInt(`${name}.bits`, p.bits, MIN_BITS, MAX_BITS);
  if (typeof p.signed !== 'boolean')
    throw new QbnnError('ERR_ARG', `${name}.signed must be a boolean, got ${String(p.signed)}`);
  const { qmin, qmax } = qRange(p.bits, p.signed);
  eachChannel(`${name}.scale`, p.scale, channels, (at, v) => checkPositiveScale(at, v));
  eachChannel(`${name}.zeroPoint`, p.zeroPoint, channels, (at, v) => checkInt(at, v, qmin, qmax));
}

function eachChannel(
  name: string,
  v: number | ArrayLike<number>,
  channels: number,
  check: (name: string, x: unknown) => void,
): void {
  if (typeof v === 'number') {
    check(name, v);
    return;
  }
  if (!Array.isArray(v) && !ArrayBuffer.isView(v))
    throw new QbnnError('ERR_ARG', `${name} must be a number or an array of numbers`);
  if (v.length !== 1 && v.length !== channels) {
    throw new QbnnError('ERR_SHAPE', `${name} must have length 1 or ${channels}, got length ${v.length}`);
  }
  for (let i = 0; i < v.length; i++) check(`${name}[${i}]`, v[i]);
}

function resolveSigned(spec: QuantSpec): boolean {
  if (spec === null || typeof spec !== 'object') {
    throw new QbnnError(
      'ERR_ARG',
      `spec must be an object { bits, signed?, symmetric?, ... }, got ${String(spec)}`,
    );
  }
  if (spec.signed !== undefined && typeof spec.signed !== 'boolean') {
    throw new QbnnError('ERR_ARG', `spec.signed must be a boolean, got ${String(spec.signed)}`);
  }
  if (spec.symmetric && spec.signed === false) {
    throw new QbnnError(
      'ERR_ARG',
      'symmetric quantisation needs signed storage: pass signed: true or omit it',
    );
  }
  return spec.signed ?? spec.symmetric === true;
}

/**
 * Scale and zero point from one observed range [min, max] (DESIGN.md section 2).
 *
 * The range is first widened to include 0 (so 0 is exactly representable: padding and ReLU
 * zeros stay exact). Asymmetric: `scale = (b - a) / (qmax - qmin)`,
 * `zeroPoint = clamp(qmin - roundHalfEven(a / scale))`. Symmetric: `zeroPoint = 0`,
 * `scale = max(|a|, |b|) / qmax`, so [-m, m] maps onto [-qmax, qmax] (qmin is reached only by
 * saturation; the quantised normal's S = 3/127 follows the same convention).
 *
 * A degenerate range (all zeros) gives scale 1; a range too small for float64 division gives
 * scale `MIN_SCALE`. The scale is always finite and > 0.
 */
export function computeQuantParams(spec: QuantSpec & { min: number; max: number }): QuantParams {
  const signed = resolveSigned(spec);
  const { qmin, qmax } = qRange(spec.bits, signed);
  const lo = checkFinite('min', spec.min);
  const hi = checkFinite('max', spec.max);
  if (lo > hi) throw new QbnnError('ERR_ARG', `min must be <= max, got min ${lo} > max ${hi}`);
  return rangeToParams(lo, hi, qmin, qmax, spec.bits, signed, spec.symmetric === true);
}

/** Smallest scale computeQuantParams returns (float32's smallest normal, 2^-126). */
export const MIN_SCALE = 2 ** -126;

function rangeToParams(
  lo: number,
  hi: number,
  qmin: number,
  qmax: number,
  bits: number,
  signed: boolean,
  symmetric: boolean,
): QuantParams {
  const a = Math.min(lo, 0);
  const b = Math.max(hi, 0);
  if (symmetric) {
    const m = Math.max(-a, b);
    return { scale: scaleOf(m / qmax, m), zeroPoint: 0, bits, signed };
  }
  const scale = scaleOf((b - a) / (qmax - qmin), b - a);
  const zeroPoint = clampInt(qmin - roundHalfEven(a / scale), qmin, qmax);
  return { scale, zeroPoint, bits, signed };
}

function scaleOf(s: number, width: number): number {
  if (width === 0) return 1;
  if (!Number.isFinite(s)) {
    // Only reachable when b - a overflows float64 (|min|, |max| near 1.8e308).
    throw new QbnnError('ERR_NAN', `range [${-width}, ${width}] is too wide to quantise in float64`);
  }
  return Math.max(s, MIN_SCALE);
}

/**
 * Per-channel parameters from per-channel ranges (`min[c]`, `max[c]`), each channel treated as
 * `computeQuantParams` treats a tensor. `axis` is recorded for `quantize` and friends.
 */
export function computePerChannelQuantParams(
  spec: QuantSpec & { min: ArrayLike<number>; max: ArrayLike<number>; axis: number },
): PerChannelQuantParams {
  const signed = resolveSigned(spec);
  const { qmin, qmax } = qRange(spec.bits, signed);
  checkInt('axis', spec.axis, 0, 2 ** 31);
  const c = checkArrayLike('min', spec.min).length;
  checkArrayLike('max', spec.max);
  checkLength('max', spec.max, c);
  if (c === 0) throw new QbnnError('ERR_SHAPE', 'min and max must hold at least one channel');
  const scale = new Float64Array(c);
  const zeroPoint = new Int32Array(c);
  for (let i = 0; i < c; i++) {
    const lo = checkFinite(`min[${i}]`, spec.min[i]);
    const hi = checkFinite(`max[${i}]`, spec.max[i]);
    if (lo > hi) throw new QbnnError('ERR_ARG', `min[${i}] must be <= max[${i}], got ${lo} > ${hi}`);
    const p = rangeToParams(lo, hi, qmin, qmax, spec.bits, signed, spec.symmetric === true);
    scale[i] = p.scale;
    zeroPoint[i] = p.zeroPoint;
  }
  return { scale, zeroPoint, axis: spec.axis, bits: spec.bits, signed };
}

/** Minimum and maximum of `values`; NaN or infinity is ERR_NAN. Empty input gives {0, 0}. */
export function minMax(values: ArrayLike<number>): { min: number; max: number } {
  checkArrayLike('values', values);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v))
      throw new QbnnError('ERR_NAN', `values[${i}] is ${v}; quantisation needs finite values`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return values.length === 0 ? { min: 0, max: 0 } : { min: lo, max: hi };
}

/**
 * Splits a flat row-major index space of `shape` around `axis`: element i belongs to channel
 * `floor(i / inner) % channels`.
 */
export function axisLayout(
  shape: readonly number[],
  axis: number,
): { size: number; channels: number; inner: number } {
  const size = shapeSize('shape', shape);
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new QbnnError('ERR_ARG', `axis must be an integer in [0, ${shape.length - 1}], got ${axis}`);
  }
  let inner = 1;
  for (let d = axis + 1; d < shape.length; d++) inner *= shape[d];
  return { size, channels: shape[axis], inner };
}

/** Per-channel minimum and maximum along `axis` of a row-major tensor of `shape`. */
export function channelMinMax(
  values: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
): { min: Float64Array; max: Float64Array } {
  const { size, channels, inner } = axisLayout(shape, axis);
  checkLength('values', checkArrayLike('values', values), size);
  const min = new Float64Array(channels).fill(Number.POSITIVE_INFINITY);
  const max = new Float64Array(channels).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < size; i++) {
    const v = values[i];
    if (!Number.isFinite(v))
      throw new QbnnError('ERR_NAN', `values[${i}] is ${v}; quantisation needs finite values`);
    const c = Math.floor(i / inner) % channels;
    if (v < min[c]) min[c] = v;
    if (v > max[c]) max[c] = v;
  }
  for (let c = 0; c < channels; c++) {
    if (min[c] > max[c]) {
      min[c] = 0;
      max[c] = 0;
    }
  }
  return { min, max };
}
