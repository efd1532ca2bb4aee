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

/** Parameter of channel `c` (per-tensor params broadcast). */
export function scaleAt(p: QParams, c: number): number {
  return p.scale.length === 1 ? p.scale[0] : p.scale[c];
}

/** Zero point of channel `c` (per-tensor params broadcast). */
export function zeroPointAt(p: QParams, c: number): number {
  return p.zeroPoint.length === 1 ? p.zeroPoint[0] : p.zeroPoint[c];
}
