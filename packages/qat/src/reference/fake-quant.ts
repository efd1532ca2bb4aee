import { roundHalfEven } from '@qbnn/core';

/**
 * Float64 fake quantisation `s (clamp(round(x / s) + z, qmin, qmax) - z)`, the one quantisation
 * step of the float64 reference (its own, shared with nothing on the integer path).
 */
export function fq64(x: number, s: number, z: number, qmin: number, qmax: number): number {
  const q = Math.min(qmax, Math.max(qmin, roundHalfEven(x / s) + z));
  return s * (q - z);
}

/** The integer range of params. */
export function range64(p: { bits: number; signed: boolean }): { qmin: number; qmax: number } {
  return p.signed
    ? { qmin: -(2 ** (p.bits - 1)), qmax: 2 ** (p.bits - 1) - 1 }
    : { qmin: 0, qmax: 2 ** p.bits - 1 };
}
