import { accumulatorScales, requantMultipliers } from '../quant/multipliers.js';
import { roundHalfEven } from '../quant/round.js';
import { asJsPacked } from './pack.js';
import type { ChannelScales, GemmOutput, QGemmArgs } from './types.js';
import { checkQGemmArgs, type GemmOut, type GemmOutputSpec } from './validate.js';

export type { GemmOut } from './validate.js';

/** A validated output stage: everything per channel resolved to arrays of length n. */
export interface OutputStage {
  kind: 'u8' | 'f32' | 'i32';
  /** u8: requantisation multipliers; f32: accumulator scales aScale * wScale[c]. */
  factor: Float64Array;
  zeroPoint: number;
  lo: number;
}

const NO_FACTOR = new Float64Array(0);

/** The per-channel factors of the contract for a checked output stage (see validate.ts). */
export function outputStage(
  spec: GemmOutputSpec,
  output: GemmOutput,
  aScale: number,
  wScale: ChannelScales,
  n: number,
): OutputStage {
  const factor =
    spec.kind === 'u8'
      ? requantMultipliers(aScale, wScale, (output as { scale: number }).scale, n)
      : spec.kind === 'f32'
        ? accumulatorScales(aScale, wScale, n)
        : NO_FACTOR;
  return { kind: spec.kind, factor, zeroPoint: spec.zeroPoint, lo: spec.lo };
}

/** One GEMM block and where its results go. */
export interface GemmBlock {
  a: Uint8Array;
  aOff: number;
  m: number;
  k: number;
  aZero: number;
  w: Int8Array;
  /** First weight row used. */
  wRow: number;
  n: number;
  wRowSums: Int32Array;
  wZero: Int32Array;
  /** Index into bias and stage.factor of this block's first output channel. */
  chan: number;
  bias: Int32Array | undefined;
  stage: OutputStage;
  out: GemmOut;
  outOff: number;
  outRowStride: number;
  outColStride: number;
}

/**
 * The contract's arithmetic for one block (see types.ts):
 * acc = sum a w - Zw sum a - Za sum w + K Za Zw + bias, wrapped to int32 (`| 0`, as int32
 * hardware would; only reachable with an extreme bias), then the output stage.
 */
export function gemmBlock(g: GemmBlock): void {
  const { a, aOff, m, k, w, wRow, n } = g;
  // |dot| <= K 255 128 < 2^31 for K <= MAX_GEMM_K, so Int32Arrays hold the dots exactly.
  const dots0 = new Int32Array(n);
  const dots1 = new Int32Array(n);
  const acc = new Int32Array(n);
  let r = 0;
  // Two activation rows by four weight rows per pass: each byte loaded feeds two or four MACs.
  for (; r + 1 < m; r += 2) {
    const a0 = aOff + r * k;
    const a1 = a0 + k;
    let c = 0;
    for (; c + 3 < n; c += 4) {
      const w0 = (wRow + c) * k;
      const w1 = w0 + k;
      const w2 = w1 + k;
      const w3 = w2 + k;
      let d00 = 0;
      let d01 = 0;
      let d02 = 0;
      let d03 = 0;
      let d10 = 0;
      let d11 = 0;
      let d12 = 0;
      let d13 = 0;
      for (let i = 0; i < k; i++) {
        const x0 = a[a0 + i];
        const x1 = a[a1 + i];
        const v0 = w[w0 + i];
        const v1 = w[w1 + i];
        const v2 = w[w2 + i];
        const v3 = w[w3 + i];
        d00 += x0 * v0;
        d01 += x0 * v1;
        d02 += x0 * v2;
        d03 += x0 * v3;
        d10 += x1 * v0;
        d11 += x1 * v1;
        d12 += x1 * v2;
        d13 += x1 * v3;
      }
      dots0[c] = d00;
      dots0[c + 1] = d01;
      dots0[c + 2] = d02;
      dots0[c + 3] = d03;
      dots1[c] = d10;
      dots1[c + 1] = d11;
      dots1[c + 2] = d12;
      dots1[c + 3] = d13;
    }
    for (; c < n; c++) {
      const wo = (wRow + c) * k;
      let d0 = 0;
      let d1 = 0;
      for (let i = 0; i < k; i++) {
        const v = w[wo + i];
        d0 += a[a0 + i] * v;
        d1 += a[a1 + i] * v;
      }
      dots0[c] = d0;
      dots1[c] = d1;
    }
    finishRow(g, r, dots0, acc);
    finishRow(g, r + 1, dots1, acc);
  }
  if (r < m) {
    const a0 = aOff + r * k;
    for (let c = 0; c < n; c++) {
      const wo = (wRow + c) * k;
      let d = 0;
      for (let i = 0; i < k; i++) d += a[a0 + i] * w[wo + i];
      dots0[c] = d;
    }
    finishRow(g, r, dots0, acc);
  }
}

/** Zero-point corrections, bias, int32 wrap and the output stage for activation row r. */
function finishRow(g: GemmBlock, r: number, dots: Int32Array, acc: Int32Array): void {
  const { a, aOff, k, aZero, wRow, n, wRowSums, wZero, chan, bias, stage, out } = g;
  const ao = aOff + r * k;
  let sumA = 0;
  for (let i = 0; i < k; i++) sumA += a[ao + i];
  const kZa = k * aZero;
  for (let c = 0; c < n; c++) {
    const zw = wZero[wRow + c];
    const b = bias === undefined ? 0 : bias[chan + c];
    // Exact in float64 (every term < 2^53), then wrapped like int32 arithmetic.
    acc[c] = (dots[c] - zw * sumA - aZero * wRowSums[wRow + c] + kZa * zw + b) | 0;
  }
  const base = g.outOff + r * g.outRowStride;
  const cs = g.outColStride;
  const factor = stage.factor;
  if (stage.kind === 'i32') {
    for (let c = 0; c < n; c++) out[base + c * cs] = acc[c];
  } else if (stage.kind === 'f32') {
    // float64 product, one rounding to float32 on store.
    for (let c = 0; c < n; c++) out[base + c * cs] = acc[c] * factor[chan + c];
  } else {
    const zo = stage.zeroPoint;
    const lo = stage.lo;
    for (let c = 0; c < n; c++) {
      const q = roundHalfEven(acc[c] * factor[chan + c]) + zo;
      out[base + c * cs] = Math.min(Math.max(q, lo), 255);
    }
  }
}

/** The reference quantised GEMM of the contract (QGemmArgs in types.ts). */
export function qgemm(args: QGemmArgs): GemmOut {
  const { w, m, n, k, aZeroPoint, bias, output, out } = checkQGemmArgs(args, asJsPacked);
  const stage = outputStage(output, args.output, args.aScale, args.wScale, n);
  gemmBlock({
    a: args.a,
    aOff: 0,
    m,
    k,
    aZero: aZeroPoint,
    w: w.data,
    wRow: 0,
    n,
    wRowSums: w.rowSums,
    wZero: w.zeroPoint,
    chan: 0,
    bias,
    stage,
    out,
    outOff: 0,
    outRowStride: n,
    outColStride: 1,
  });
  return out;
}
