import { QbnnError, roundHalfEven } from '@qbnn/core';
import type { QuantParams } from '../spec.js';

const INT32_MAX = 2147483647;

/** Largest value of an unsigned activation grid. */
export function qmaxOf(a: { bits: number }): number {
  return 2 ** a.bits - 1;
}

/** Int32 bias at scale aScale * wScale[n] (round half to even, saturated). */
export function quantizeBias(b: ArrayLike<number>, aScale: number, wScale: Float64Array): Int32Array {
  const out = new Int32Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const v = roundHalfEven(b[i] / (aScale * wScale[i]));
    out[i] = Math.max(-INT32_MAX, Math.min(INT32_MAX, v));
  }
  return out;
}

/** Quantises the float network input onto grid `q` (NaN is an error). */
export function quantizeInput(x: ArrayLike<number>, q: QuantParams): Uint8Array {
  const d = new Uint8Array(x.length);
  const qm = qmaxOf(q);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (Number.isNaN(v)) throw new QbnnError('ERR_NAN', `input[${i}] is NaN`);
    d[i] = Math.min(qm, Math.max(0, roundHalfEven(v / q.scale) + q.zeroPoint));
  }
  return d;
}
