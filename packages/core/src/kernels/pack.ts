import { QbnnError } from '../errors.js';
import { unpackInts } from '../quant/packing.js';
import type { ChannelZeroPoints, PackedInts, PackedWeights } from './types.js';
import { checkPackWeightsArgs } from './validate.js';

/** Name under which the JS reference provider registers. */
export const JS_PROVIDER = 'js';

/** Weights packed by the JS reference: the row-major [n, k] bytes themselves (a private copy). */
export interface JsPackedWeights extends PackedWeights {
  readonly provider: typeof JS_PROVIDER;
  /** s8 weights, row-major [n, k]. */
  readonly data: Int8Array;
}

/** Row sums of a row-major [n, k] int8 matrix. */
export function rowSums(w: Int8Array, n: number, k: number): Int32Array {
  const sums = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    const off = r * k;
    for (let i = 0; i < k; i++) s += w[off + i];
    sums[r] = s;
  }
  return sums;
}

/**
 * Packs s8 weights [n, k] for the JS reference (copies them, one value a byte; computes row
 * sums). Packed input (PackedInts) is decoded.
 */
export function packWeights(
  w: Int8Array | PackedInts,
  n: number,
  k: number,
  zeroPoint: ChannelZeroPoints,
): JsPackedWeights {
  const zp = checkPackWeightsArgs(w, n, k, zeroPoint);
  const bytes = w instanceof Int8Array ? Int8Array.from(w) : unpackInts(w.bytes, n * k, w.bits, true);
  return makePacked(bytes, n, k, zp);
}

/** Wraps owned weight bytes as a JS pack (no copy). */
export function makePacked(data: Int8Array, n: number, k: number, zeroPoint: Int32Array): JsPackedWeights {
  return { provider: JS_PROVIDER, n, k, zeroPoint, rowSums: rowSums(data, n, k), data };
}

/** Narrows a PackedWeights to the JS layout, or explains why it cannot be used here. */
export function asJsPacked(w: PackedWeights, name: string): JsPackedWeights {
  if (w == null || typeof w !== 'object') throw new QbnnError('ERR_ARG', `${name} must be PackedWeights`);
  if (w.provider !== JS_PROVIDER || !((w as Partial<JsPackedWeights>).data instanceof Int8Array)) {
    throw new QbnnError(
      'ERR_ARG',
      `${name} was packed by provider '${w.provider}'; the '${JS_PROVIDER}' provider needs weights from its own packWeights`,
    );
  }
  const p = w as JsPackedWeights;
  if (p.data.length !== p.n * p.k || p.zeroPoint.length !== p.n || p.rowSums.length !== p.n) {
    throw new QbnnError(
      'ERR_SHAPE',
      `${name} is inconsistent: n ${p.n}, k ${p.k}, data length ${p.data.length}`,
    );
  }
  return p;
}
