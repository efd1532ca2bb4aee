import { QbnnError } from '../errors.js';
import { checkInt, checkPositiveScale, perChannelF64 } from '../quant/checks.js';
import { accumulatorScales, requantMultipliers } from '../quant/multipliers.js';
import { roundHalfEven } from '../quant/round.js';
import { asJsPacked } from './pack.js';
import { type ChannelScales, type GemmOutput, MAX_GEMM_K, type QGemmArgs } from './types.js';

export type GemmOut = Uint8Array | Float32Array | Int32Array;

/** A validated output stage: everything per channel resolved to arrays of length n. */
export interface OutputStage {
  kind: 'u8' | 'f32' | 'i32';
  /** u8: requantisation multipliers; f32: accumulator scales aScale * wScale[c]. */
  factor: Float64Array;
  zeroPoint: number;
  lo: number;
}

/** Validates `output` and resolves the per-channel factors of the contract. */
export function outputStage(
  output: GemmOutput,
  aScale: number,
  wScale: ChannelScales,
  n: number,
): OutputStage {
  if (output == null || typeof output !== 'object') {
    throw new QbnnError(
      'ERR_ARG',
      "output must be { kind: 'u8', scale, zeroPoint, relu? }, { kind: 'f32' } or { kind: 'i32' }",
    );
  }
  // Validate the weight scales even for i32 output, so a bad call fails whatever the output kind.
  perChannelF64('wScale', wScale as number | ArrayLike<number>, n, checkPositiveScale);
  switch (output.kind) {
    case 'u8': {
      checkPositiveScale('output.scale', output.scale);
      const zo = checkInt('output.zeroPoint', output.zeroPoint, 0, 255);
      if (output.relu !== undefined && typeof output.relu !== 'boolean') {
        throw new QbnnError('ERR_ARG', `output.relu must be a boolean, got ${String(output.relu)}`);
      }
      const factor = requantMultipliers(aScale, wScale, output.scale, n);
      return { kind: 'u8', factor, zeroPoint: zo, lo: output.relu ? zo : 0 };
    }
    case 'f32':
      return { kind: 'f32', factor: accumulatorScales(aScale, wScale, n), zeroPoint: 0, lo: 0 };
    case 'i32':
      return { kind: 'i32', factor: new Float64Array(0), zeroPoint: 0, lo: 0 };
    default:
      throw new QbnnError(
        'ERR_ARG',
        `output.kind must be 'u8', 'f32' or 'i32', got ${String((output as { kind: unknown }).kind)}`,
      );
  }
}

/** Checks or allocates the destination for an output stage. */
export function outputBuffer(stage: OutputStage, out: GemmOut | undefined, length: number): GemmOut {
  const Ctor = stage.kind === 'u8' ? Uint8Array : stage.kind === 'f32' ? Float32Array : Int32Array;
  if (out === undefined) return new Ctor(length);
  if (!(out instanceof Ctor)) {
    throw new QbnnError('ERR_ARG', `out must be a ${Ctor.name} for output kind '${stage.kind}'`);
  }
  if (out.length !== length)
    throw new QbnnError('ERR_SHAPE', `out must have length ${length}, got ${out.length}`);
  return out;
}

/** Checks an optional int32 bias of length n. */
export function checkBias(bias: Int32Array | undefined, n: number): void {
  if (bias === undefined) return;
  if (!(bias instanceof Int32Array)) throw new QbnnError('ERR_ARG', 'bias must be an Int32Array');
  if (bias.length !== n) throw new QbnnError('ERR_SHAPE', `bias must have length ${n}, got ${bias.length}`);
}

export function checkK(k: number): void {
  if (k > MAX_GEMM_K) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `K = ${k} exceeds MAX_GEMM_K = ${MAX_GEMM_K}: the int32 accumulator could overflow; split the reduction`,
    );
  }
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
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'qgemm: args must be an object');
  const w = asJsPacked(args.w, 'qgemm: w');
  const { n, k } = w;
  checkK(k);
  const m = checkInt('qgemm: m', args.m, 0, 2 ** 31 - 1);
  if (!(args.a instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'qgemm: a must be a Uint8Array (u8 activations)');
  if (args.a.length !== m * k) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qgemm: a has length ${args.a.length}, expected m * k = ${m} * ${k} = ${m * k}`,
    );
  }
  checkPositiveScale('qgemm: aScale', args.aScale);
  const aZero = checkInt('qgemm: aZeroPoint', args.aZeroPoint, 0, 255);
  checkBias(args.bias, n);
  const stage = outputStage(args.output, args.aScale, args.wScale, n);
  const out = outputBuffer(stage, args.out, m * n);
  gemmBlock({
    a: args.a,
    aOff: 0,
    m,
    k,
    aZero,
    w: w.data,
    wRow: 0,
    n,
    wRowSums: w.rowSums,
    wZero: w.zeroPoint,
    chan: 0,
    bias: args.bias,
    stage,
    out,
    outOff: 0,
    outRowStride: n,
    outColStride: 1,
  });
  return out;
}
