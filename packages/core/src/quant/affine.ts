import { QbnnError } from '../errors.js';
import { checkArrayLike, checkInt, checkLength, checkPositiveScale, shapeSize } from './checks.js';
import {
  axisLayout,
  checkQuantParams,
  type PerChannelQuantParams,
  type QuantParams,
  qRange,
} from './params.js';
import { clampInt, roundHalfEven } from './round.js';

/** Quantised storage: Int8Array for signed parameters, Uint8Array for unsigned. */
export type QuantizedArray = Int8Array | Uint8Array;

/** Options of quantize / dequantize / fakeQuantize. */
export interface AffineOptions<Out> {
  /** Row-major shape of the tensor; required with per-channel parameters. */
  shape?: readonly number[];
  /** Destination of the same length as the input; allocated when omitted. */
  out?: Out;
}

/** Validated parameters resolved to a per-element channel lookup. */
interface Resolved {
  qmin: number;
  qmax: number;
  signed: boolean;
  /** One entry per channel (length 1 when per-tensor). */
  scale: Float64Array;
  zeroPoint: Int32Array;
  inner: number;
  channels: number;
}

function isPerChannel(p: QuantParams | PerChannelQuantParams): p is PerChannelQuantParams {
  return typeof p.scale !== 'number';
}

function resolve(
  p: QuantParams | PerChannelQuantParams,
  length: number,
  shape: readonly number[] | undefined,
): Resolved {
  if (p == null || typeof p !== 'object')
    throw new QbnnError('ERR_ARG', 'params must be quantisation parameters');
  const { qmin, qmax } = qRange(p.bits, p.signed === true);
  const signed = p.signed === true;
  if (!isPerChannel(p)) {
    const scale = Float64Array.of(checkPositiveScale('params.scale', p.scale));
    const zeroPoint = Int32Array.of(checkInt('params.zeroPoint', p.zeroPoint, qmin, qmax));
    if (shape !== undefined) checkLength('values', { length }, shapeSize('opts.shape', shape));
    return { qmin, qmax, signed, scale, zeroPoint, inner: 1, channels: 1 };
  }
  if (shape === undefined) {
    throw new QbnnError(
      'ERR_ARG',
      'per-channel parameters need opts.shape (the tensor shape) to locate the axis',
    );
  }
  const { size, channels, inner } = axisLayout(shape, p.axis);
  checkLength('values', { length }, size);
  if (p.scale.length !== channels || p.zeroPoint.length !== channels) {
    throw new QbnnError(
      'ERR_SHAPE',
      `per-channel parameters have ${p.scale.length} scales and ${p.zeroPoint.length} zero points; shape[${p.axis}] is ${channels}`,
    );
  }
  checkQuantParams('params', { scale: p.scale, zeroPoint: p.zeroPoint, bits: p.bits, signed }, channels);
  return { qmin, qmax, signed, scale: p.scale, zeroPoint: p.zeroPoint, inner, channels };
}

function arrayLength(name: string, v: ArrayLike<number>): number {
  return checkArrayLike(name, v).length;
}

function checkOut<T extends { length: number }>(out: T | undefined, length: number, make: () => T): T {
  if (out === undefined) return make();
  checkLength('opts.out', out, length);
  return out;
}

/**
 * ONNX QuantizeLinear, element for element: `q = saturate(roundHalfEven(f / scale) + zeroPoint)`
 * with `f` and `scale` rounded to float32 and the division done in float32, as ONNX Runtime does
 * (dividing in float64 gives the other integer on some exact .5 ties). A finite value beyond
 * float32's range saturates; NaN or infinite input throws ERR_NAN (never a silent 0).
 */
export function quantize(
  values: ArrayLike<number>,
  params: QuantParams | PerChannelQuantParams,
  opts: AffineOptions<QuantizedArray> = {},
): QuantizedArray {
  const r = resolve(params, arrayLength('values', values), opts.shape);
  const n = values.length;
  const out = checkOut(opts.out, n, () => (r.signed ? new Int8Array(n) : new Uint8Array(n)));
  if (r.signed !== out instanceof Int8Array) {
    throw new QbnnError(
      'ERR_ARG',
      `opts.out must be ${r.signed ? 'an Int8Array' : 'a Uint8Array'} for these params`,
    );
  }
  const { qmin, qmax, scale, zeroPoint, inner, channels } = r;
  for (let i = 0; i < n; i++) {
    const f = values[i];
    if (!Number.isFinite(f))
      throw new QbnnError('ERR_NAN', `values[${i}] is ${f}; quantize needs finite values`);
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    // the float32 quotient: Math.fround of the float64 quotient of two float32 values is exact
    // IEEE float32 division (53 >= 2 * 24 + 2 bits); a scale below float32's range gives 0 / 0
    const d = Math.fround(Math.fround(f) / Math.fround(scale[c]));
    out[i] = Number.isNaN(d)
      ? clampInt(zeroPoint[c], qmin, qmax)
      : clampInt(roundHalfEven(d) + zeroPoint[c], qmin, qmax);
  }
  return out;
}

/** ONNX DequantizeLinear: `f = scale * (q - zeroPoint)` in float64, stored to `out` (float32 by default). */
export function dequantize(
  q: ArrayLike<number>,
  params: QuantParams | PerChannelQuantParams,
  opts: AffineOptions<Float32Array | Float64Array> = {},
): Float32Array | Float64Array {
  const r = resolve(params, arrayLength('q', q), opts.shape);
  const n = q.length;
  const out = checkOut(opts.out, n, () => new Float32Array(n));
  const { scale, zeroPoint, inner, channels } = r;
  // Integer typed arrays hold integers by construction; anything else is checked per element.
  const checked = !(
    q instanceof Int8Array ||
    q instanceof Uint8Array ||
    q instanceof Int16Array ||
    q instanceof Uint16Array ||
    q instanceof Int32Array
  );
  for (let i = 0; i < n; i++) {
    if (checked && !Number.isInteger(q[i])) {
      throw new QbnnError(
        Number.isNaN(q[i]) ? 'ERR_NAN' : 'ERR_ARG',
        `q[${i}] must be an integer, got ${q[i]}`,
      );
    }
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    out[i] = scale[c] * (q[i] - zeroPoint[c]);
  }
  return out;
}

/**
 * Quantise then dequantise in one pass, float in and float out, with exactly quantize's
 * rounding and saturation: `scale * (clamp(roundHalfEven(f / scale) + Z) - Z)`.
 */
export function fakeQuantize(
  values: ArrayLike<number>,
  params: QuantParams | PerChannelQuantParams,
  opts: AffineOptions<Float32Array | Float64Array> = {},
): Float32Array | Float64Array {
  const r = resolve(params, arrayLength('values', values), opts.shape);
  const n = values.length;
  const out = checkOut(opts.out, n, () => new Float32Array(n));
  const { qmin, qmax, scale, zeroPoint, inner, channels } = r;
  for (let i = 0; i < n; i++) {
    const f = values[i];
    if (!Number.isFinite(f))
      throw new QbnnError('ERR_NAN', `values[${i}] is ${f}; fakeQuantize needs finite values`);
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    const z = zeroPoint[c];
    let q = roundHalfEven(f / scale[c]) + z;
    q = clampInt(q, qmin, qmax);
    out[i] = scale[c] * (q - z);
  }
  return out;
}
