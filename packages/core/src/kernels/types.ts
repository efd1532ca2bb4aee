import type { ExecutionPlan, PlanDescription } from './plan.js';

/**
 * The integer kernel contract. Every provider (the JS reference in this package, the native
 * addon of @qbnn/native-amx, any future backend) implements it and must return bit-identical
 * results. The arithmetic (DESIGN.md section 2):
 *
 * GEMM. Activations `a` are u8, row-major [M, K], with (aScale, aZeroPoint). Weights are s8,
 * row-major [N, K] (each output channel's K weights contiguous, like torch Linear [out, in]),
 * with per-tensor or per-output-channel (wScale[n], wZeroPoint[n]). For each (m, n):
 *
 *   acc = sum_k a[m,k] w[n,k] - Zw[n] sum_k a[m,k] - Za sum_k w[n,k] + K Za Zw[n] + bias[n]
 *
 * exactly, in int32 (= sum_k (a - Za)(w - Zw) + bias). Bias is int32 at scale aScale * wScale[n].
 * Valid while |acc| < 2^31: providers reject K > MAX_GEMM_K. (Only an extreme bias can push acc
 * out of int32 range; then acc wraps modulo 2^32 like int32 hardware arithmetic, in JS `| 0`.)
 *
 * Requantisation to u8 (output scale So, zero point Zo), with the multiplier computed once by
 * `requantMultipliers` in float64 as `(aScale * wScale[n]) / So`:
 *
 *   v = acc * multiplier[n]                         (float64 product)
 *   q = clamp(roundHalfEven(v) + Zo, lo, 255)       lo = relu ? Zo : 0
 *
 * Float output: `out = float32(acc * (aScale * wScale[n]))` (float64 product, one rounding to
 * float32). Native code must compile with -ffp-contract=off so no product is fused.
 *
 * Convolution: u8 input NCHW [B, C, H, W], s8 weights [O, C/groups, kh, kw] (flattened to
 * [O, (C/groups) kh kw] rows, which is the GEMM's [N, K]); padding reads the activation zero
 * point Za (so a padded tap contributes exactly 0). Output NCHW [B, O, Ho, Wo], same
 * requantisation as the GEMM.
 */

/** Largest K a GEMM accepts: K * 255 * 255 < 2^31 keeps the int32 accumulator exact. */
export const MAX_GEMM_K = 33025;

/** Per-tensor (a number, or a length-1 array) or per-output-channel (length N) parameters. */
export type ChannelScales = number | Float64Array | readonly number[];
export type ChannelZeroPoints = number | Int32Array | readonly number[];

/** Weights prepared once for repeated GEMMs: a provider-specific layout plus row sums. */
export interface PackedWeights {
  /** Name of the provider that packed them; only that provider can consume them. */
  readonly provider: string;
  readonly n: number;
  readonly k: number;
  /** Weight zero points, length N (per-tensor values repeated). */
  readonly zeroPoint: Int32Array;
  /** sum_k w[n, k], length N. */
  readonly rowSums: Int32Array;
  /** Frees native memory early (optional; garbage collection frees it otherwise). */
  dispose?(): void;
}

/** How GEMM results leave the kernel. */
export type GemmOutput =
  | { kind: 'u8'; scale: number; zeroPoint: number; relu?: boolean }
  | { kind: 'f32' }
  | { kind: 'i32' };

export interface QGemmArgs {
  /** u8 activations, row-major [m, k]. */
  a: Uint8Array;
  m: number;
  aScale: number;
  aZeroPoint: number;
  w: PackedWeights;
  wScale: ChannelScales;
  /** Optional int32 bias, length N, at scale aScale * wScale[n]. */
  bias?: Int32Array;
  output: GemmOutput;
  /** Destination, row-major [m, n]; allocated when omitted. */
  out?: Uint8Array | Float32Array | Int32Array;
}

export interface QConv2dArgs {
  /** u8 input NCHW. */
  x: Uint8Array;
  /** [batch, channels, height, width] */
  xShape: readonly [number, number, number, number];
  xScale: number;
  xZeroPoint: number;
  /**
   * Weights packed from [O, C/groups * kh * kw] rows: one pack of all O rows (group g uses rows
   * g * O/groups onwards), or for groups > 1 one pack of O/groups rows per group, in order.
   */
  w: PackedWeights | readonly PackedWeights[];
  /** [outChannels, inChannels / groups, kh, kw] */
  wShape: readonly [number, number, number, number];
  wScale: ChannelScales;
  bias?: Int32Array;
  stride?: readonly [number, number];
  padding?: readonly [number, number];
  dilation?: readonly [number, number];
  groups?: number;
  output: GemmOutput;
  out?: Uint8Array | Float32Array | Int32Array;
}

/**
 * Pooling of u8 NCHW activations of one (scale, zero point Z), the scale unchanged. Windows of
 * kernel [kh, kw] at stride [sh, sw] over the input padded by [ph, pw], output size
 * `floor((H + 2 ph - kh) / sh) + 1` (no dilation, no ceil mode):
 *
 *   max:  the largest element of the window inside the input (padding is never the maximum)
 *   avg:  clamp(roundHalfEven(sum(q - Z) / (kh kw)) + Z, 0, 255)   (float64 division)
 *
 * with the sum over the window's elements inside the input: a padded tap counts as Z, i.e. as
 * the value 0 (PyTorch's count_include_pad). Padding is at most half the kernel, so every window
 * holds an input element.
 */
export interface Pool2dSpec {
  kind: 'max' | 'avg';
  kernel: readonly [number, number];
  /** Defaults to the kernel. */
  stride?: readonly [number, number];
  /** Defaults to [0, 0]; at most half the kernel on each axis. */
  padding?: readonly [number, number];
}

export interface QPool2dArgs {
  /** u8 input NCHW. */
  x: Uint8Array;
  /** [batch, channels, height, width] */
  xShape: readonly [number, number, number, number];
  /** The input's (and output's) zero point; avg pooling averages `q - zeroPoint`. */
  zeroPoint: number;
  pool: Pool2dSpec;
  /** Destination NCHW [B, C, Ho, Wo]; allocated when omitted. */
  out?: Uint8Array;
}

/**
 * A convolution with u8 output followed by pooling of that output (zero point: the output's), as
 * one kernel: exactly `qpool2d(qconv2d(args))` without the convolution's full output leaving the
 * provider. `out` is the pooled [B, O, Ho', Wo'].
 */
export interface QConv2dPoolArgs extends Omit<QConv2dArgs, 'output' | 'out'> {
  output: { kind: 'u8'; scale: number; zeroPoint: number; relu?: boolean };
  pool: Pool2dSpec;
  out?: Uint8Array;
}

/**
 * The exact quantised standard normal (S = 3/127, Z = 0): one uint32 Philox word per sample,
 * `k = -128 + #{ j : u >= QNORMAL_THRESHOLDS[j] }` (see rng/qnormal.ts for the table).
 * Word j comes from the stream (key, position) as in `philoxFill`.
 */
export interface QNormalArgs {
  key: readonly [number, number];
  /** First Philox block. */
  position: number;
  out: Int8Array;
}

/**
 * Integers stored `bits` (2..8) to a value in core's `packInts` layout (quant/packing.ts): value
 * i at bits [i b, (i + 1) b) of a little-endian bit stream, b-bit two's complement when the
 * tensor it stands for is signed, exactly `packedByteLength(count, bits)` bytes with zero
 * padding bits. Kernels taking it decode it a row at a time, so callers can keep sub-8-bit
 * tensors packed; the result is exactly that of the unpacked values.
 */
export interface PackedInts {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/**
 * Fused Gaussian weight sample (DESIGN.md section 3), per output channel n and element i of
 * row n, at `bits` signed weight precision (qmin = -2^(bits-1), qmax = 2^(bits-1) - 1):
 *
 *   eps  = the quantised normal sample for flat index n*K + i (QNormalArgs stream)
 *   nq   = clamp(roundHalfEven(eps * (sigma - Zsig[n]) * m1[n]) + Zn[n], qmin, qmax)
 *   wq   = clamp(roundHalfEven((mu - Zmu[n]) * m2[n] + (nq - Zn[n]) * m3[n]) + Zw[n], qmin, qmax)
 *
 * with float64 multipliers m1 = (epsScale * Ssig) / Sn, m2 = Smu / Sw, m3 = Sn / Sw computed by
 * `gaussianSampleMultipliers`, every product and sum in float64 in exactly this order.
 */
export interface GaussianSampleArgs {
  /** s8 means [N, K], one a byte or packed (signed values). */
  mu: Int8Array | PackedInts;
  muZeroPoint: Int32Array;
  /** u8 standard deviations [N, K], one a byte or packed (unsigned values). */
  sigma: Uint8Array | PackedInts;
  sigmaZeroPoint: Int32Array;
  noiseZeroPoint: Int32Array;
  weightZeroPoint: Int32Array;
  m1: Float64Array;
  m2: Float64Array;
  m3: Float64Array;
  n: number;
  k: number;
  bits: number;
  key: readonly [number, number];
  position: number;
  /**
   * Optional pack of this provider, [n, k], to sample into: a provider that keeps packs in
   * native memory overwrites it and returns it, so a loop of Monte Carlo samples allocates
   * nothing; a provider may also ignore it and return a new pack. The caller owns (and
   * disposes) the result only when it is not `out`.
   */
  out?: PackedWeights;
}

/** An integer kernel provider, registered by name in the kernel registry. */
export interface KernelProvider {
  readonly name: string;
  /** Higher wins when no provider is named. The JS reference has priority 0. */
  readonly priority: number;
  /**
   * Capability check: false when this provider cannot run here (e.g. the CPU lacks its ISA or
   * the addon failed to load). Absent means always available. Unavailable providers are
   * listed but never chosen by default.
   */
  isAvailable?(): boolean;
  /** Pack s8 weights [n, k] (one a byte, or packed signed values) with their zero points. */
  packWeights(w: Int8Array | PackedInts, n: number, k: number, zeroPoint: ChannelZeroPoints): PackedWeights;
  qgemm(args: QGemmArgs): Uint8Array | Float32Array | Int32Array;
  qconv2d(args: QConv2dArgs): Uint8Array | Float32Array | Int32Array;
  qnormal(args: QNormalArgs): Int8Array;
  /** Samples Gaussian weights straight into this provider's packed layout. */
  sampleGaussianPacked(args: GaussianSampleArgs): PackedWeights;
  /** u8 max / average pooling (optional: the reference's `qpool2d` otherwise). */
  qpool2d?(args: QPool2dArgs): Uint8Array;
  /**
   * Convolution then pooling in one call (optional: `qconv2d` then `qpool2d` otherwise; the
   * reference's `qconv2dPool` does exactly that with any provider).
   */
  qconv2dPool?(args: QConv2dPoolArgs): Uint8Array;
  /**
   * Compiles a whole model's forward (kernels/plan.ts) to run in one call per forward
   * (optional: the integer engine then calls the kernels one by one, with identical results).
   */
  createPlan?(desc: PlanDescription): ExecutionPlan;
}
