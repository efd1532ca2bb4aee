import { PackedIntReader } from '../quant/packing.js';
import { roundHalfEven } from '../quant/round.js';
import { qnormalFill } from '../rng/qnormal.js';
import { type JsPackedWeights, makePacked } from './pack.js';
import type { GaussianSampleArgs, PackedInts, QNormalArgs } from './types.js';
import { type CheckedGaussianSample, checkGaussianSampleArgs, checkQNormalArgs } from './validate.js';

/** The reference `qnormal` of the contract: fills args.out from the stream (key, position). */
export function qnormal(args: QNormalArgs): Int8Array {
  checkQNormalArgs(args);
  return qnormalFill(args.key, args.position, args.out);
}

/**
 * The reference fused Gaussian weight sampler (GaussianSampleArgs in types.ts), returning the
 * sampled s8 weights [n, k] row-major. Consumes ceil(n k / 4) blocks from args.position. Packed
 * mu or sigma (PackedInts) are decoded a row at a time as the sampler reaches them (memory O(k),
 * never the unpacked tensor).
 */
export function sampleGaussianWeights(args: GaussianSampleArgs): Int8Array {
  const checked = checkGaussianSampleArgs(args);
  const { n, k } = checked;
  const out = qnormalFill(args.key, args.position, new Int8Array(n * k)); // eps, overwritten in place
  const mu = rowsOf(args.mu, k, true) as RowSource<Int8Array>;
  const sigma = rowsOf(args.sigma, k, false) as RowSource<Uint8Array>;
  for (let r = 0; r < n; r++) sampleRow(args, checked, r, out, mu(r), sigma(r));
  return out;
}

type RowSource<T> = (r: number) => T;

/** Row r of an [n, k] tensor given one value a byte or packed (rows requested in order). */
function rowsOf(
  t: Int8Array | Uint8Array | PackedInts,
  k: number,
  signed: boolean,
): RowSource<Int8Array | Uint8Array> {
  if (ArrayBuffer.isView(t)) return (r) => t.subarray(r * k, r * k + k);
  const reader = new PackedIntReader(t.bytes, t.bits, signed);
  const row = signed ? new Int8Array(k) : new Uint8Array(k);
  return () => {
    reader.read(row, 0, k);
    return row;
  };
}

/** Row r of the sampler: `out[r k ..]` holds eps on entry and the sampled weights on return. */
function sampleRow(
  args: Omit<GaussianSampleArgs, 'mu' | 'sigma'>,
  { k, qmin, qmax }: CheckedGaussianSample,
  r: number,
  out: Int8Array,
  mu: Int8Array,
  sigma: Uint8Array,
): void {
  const zmu = args.muZeroPoint[r];
  const zs = args.sigmaZeroPoint[r];
  const zn = args.noiseZeroPoint[r];
  const zw = args.weightZeroPoint[r];
  const a = args.m1[r];
  const b = args.m2[r];
  const c = args.m3[r];
  for (let j = 0, i = r * k; j < k; j++, i++) {
    // Exactly the contract's order of float64 operations.
    const nq = Math.min(Math.max(roundHalfEven(out[i] * (sigma[j] - zs) * a) + zn, qmin), qmax);
    const wq = roundHalfEven((mu[j] - zmu) * b + (nq - zn) * c) + zw;
    out[i] = Math.min(Math.max(wq, qmin), qmax);
  }
}

/** The fused sampler returning the JS provider's packed weights (zero points = weightZeroPoint). */
export function sampleGaussianPacked(args: GaussianSampleArgs): JsPackedWeights {
  const w = sampleGaussianWeights(args);
  return makePacked(w, args.n, args.k, Int32Array.from(args.weightZeroPoint));
}
