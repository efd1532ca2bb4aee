/**
 * The quantisation vocabulary of @qbnn/qat (DESIGN.md section 2: `f = scale * (q - zeroPoint)`):
 *
 * - {@link ObserverSpec}: HOW a tensor is quantised (bits, signedness, symmetry, channel axis);
 *   what a qconfig resolves to and an observer is built for.
 * - {@link QParams}: the parameters one tensor WAS given, per tensor (arrays of length 1) or per
 *   channel; weights and every weight-side point (mu, sigma, noise, ...) carry these.
 * - {@link QuantParams} (core's): per-tensor parameters as scalars; activations carry these (they
 *   are always per tensor and unsigned u8).
 */
import type { QuantParams } from '@qbnn/core';

export type { QuantParams };

/**
 * How one tensor is quantised: bit width, signedness, symmetry and granularity.
 * Weights are signed (s8 storage) and activations unsigned (u8 storage) by default.
 */
export interface ObserverSpec {
  /** 2..8 */
  bits: number;
  /** Signed range [-2^(b-1), 2^(b-1)-1] or unsigned [0, 2^b-1]. */
  signed: boolean;
  /** Force Z = 0 by widening the range to [-max|x|, max|x|] (signed tensors only; ignored for unsigned). */
  symmetric: boolean;
  /** Axis of per-channel parameters, or undefined for per-tensor. */
  axis?: number;
}

/** Affine parameters of one tensor: `f = scale * (q - zeroPoint)`, per tensor (length 1) or per channel. */
export interface QParams {
  scale: Float64Array;
  zeroPoint: Int32Array;
  bits: number;
  signed: boolean;
  /** Channel axis when per channel (scale.length > 1 or declared per-channel). */
  axis?: number;
}

/** Per-channel scales of length n from per-tensor or per-channel params. */
export function channelScales(p: QParams, n: number): Float64Array {
  if (p.scale.length === n) return p.scale;
  return new Float64Array(n).fill(p.scale[0]);
}

/** Per-channel zero points of length n from per-tensor or per-channel params. */
export function channelZeroPoints(p: QParams, n: number): Int32Array {
  if (p.zeroPoint.length === n) return p.zeroPoint;
  return new Int32Array(n).fill(p.zeroPoint[0]);
}
