import {
  computePerChannelQuantParams,
  computeQuantParams,
  QbnnError,
  qRange,
  roundHalfEven,
} from '@qbnn/core';
import type { ObserverSpec, QParams } from './spec.js';

/**
 * Affine parameters from observed per-channel ranges through core's `computeQuantParams`
 * (DESIGN.md section 2: range widened to include 0, S = (b - a) / (qmax - qmin), Z clamped;
 * symmetric gives Z = 0 and S = max|x| / qmax). Length-1 ranges give per-tensor params.
 */
export function paramsFromRange(min: Float64Array, max: Float64Array, spec: ObserverSpec): QParams {
  const symmetric = spec.symmetric && spec.signed;
  if (min.length === 1 && spec.axis === undefined) {
    const p = computeQuantParams({
      bits: spec.bits,
      signed: spec.signed,
      symmetric,
      min: min[0],
      max: max[0],
    });
    return {
      scale: Float64Array.of(p.scale),
      zeroPoint: Int32Array.of(p.zeroPoint),
      bits: spec.bits,
      signed: spec.signed,
    };
  }
  const p = computePerChannelQuantParams({
    bits: spec.bits,
    signed: spec.signed,
    symmetric,
    min,
    max,
    axis: spec.axis ?? 0,
  });
  return { scale: p.scale, zeroPoint: p.zeroPoint, bits: spec.bits, signed: spec.signed, axis: spec.axis };
}

/** Quantises one value to the integer grid (scale, zeroPoint) clamped to [qmin, qmax]. */
export function quantizeValue(
  x: number,
  scale: number,
  zeroPoint: number,
  qmin: number,
  qmax: number,
): number {
  if (Number.isNaN(x)) throw new QbnnError('ERR_NAN', 'quantize: NaN input');
  const q = roundHalfEven(x / scale) + zeroPoint;
  return Math.min(qmax, Math.max(qmin, q));
}

/** Float64 fake quantisation of one value: `S (Q(x) - Z)`. */
export function fakeQuantValue(
  x: number,
  scale: number,
  zeroPoint: number,
  qmin: number,
  qmax: number,
): number {
  return scale * (quantizeValue(x, scale, zeroPoint, qmin, qmax) - zeroPoint);
}

export { qRange, roundHalfEven };
