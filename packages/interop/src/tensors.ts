import { QbnnError } from '@qbnn/core';
import type { SafeData, SafeDtype, SafeTensor } from '@qbnn/nn';

/** A tensor read from a file: dtype, row-major shape and contiguous elements. */
export class LoadedTensor implements SafeTensor {
  constructor(
    readonly dtype: SafeDtype,
    readonly shape: number[],
    readonly data: SafeData,
  ) {}
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * The elements of a floating-point tensor as float32 (F32 copied, F64 rounded, F16 and BF16
 * widened exactly). Integer tensors are refused: a weight stored as integers is a mistake.
 */
export function floatValues(name: string, t: SafeTensor): Float32Array {
  const d = t.data;
  switch (t.dtype) {
    case 'F32':
      return Float32Array.from(d as Float32Array);
    case 'F64':
      return Float32Array.from(d as Float64Array);
    case 'F16': {
      const out = new Float32Array(d.length);
      for (let i = 0; i < d.length; i++) out[i] = halfToFloat((d as Uint16Array)[i]);
      return out;
    }
    case 'BF16': {
      const bits = new Uint32Array(d.length);
      for (let i = 0; i < d.length; i++) bits[i] = (d as Uint16Array)[i] << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw new QbnnError('ERR_FORMAT', `tensor '${name}': expected a floating-point tensor, got ${t.dtype}`);
  }
}

/** The elements of an integer tensor as int32 (I64 values must fit). */
export function intValues(name: string, t: SafeTensor): Int32Array {
  if (t.dtype === 'I64' || t.dtype === 'U64') {
    const d = t.data as BigInt64Array;
    const out = new Int32Array(d.length);
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v > 2147483647n || v < -2147483648n) {
        throw new QbnnError('ERR_FORMAT', `tensor '${name}': value ${v} does not fit in int32`);
      }
      out[i] = Number(v);
    }
    return out;
  }
  if (['I32', 'I16', 'U16', 'I8', 'U8', 'BOOL'].includes(t.dtype))
    return Int32Array.from(t.data as Int32Array);
  throw new QbnnError('ERR_FORMAT', `tensor '${name}': expected an integer tensor, got ${t.dtype}`);
}
