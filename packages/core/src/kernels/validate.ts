import { QbnnError } from '../errors.js';
import { checkInt, checkLength, checkPositiveScale, perChannelI32 } from '../quant/checks.js';
import { packedByteLength } from '../quant/packing.js';
import { MAX_BITS, MIN_BITS, qRange } from '../quant/params.js';
import {
  type ChannelScales,
  type ChannelZeroPoints,
  type GaussianSampleArgs,
  type GemmOutput,
  MAX_GEMM_K,
  type PackedInts,
  type PackedWeights,
  type Pool2dSpec,
  type QConv2dArgs,
  type QConv2dPoolArgs,
  type QGemmArgs,
  type QNormalArgs,
  type QPool2dArgs,
} from './types.js';

// Argument validation and normalisation of the kernel contract (types.ts), for kernel providers:
// the JS reference and @qbnn/native-amx both call these, so every provider rejects the same
// calls with the same QbnnError codes and messages. They check and resolve; they never compute
// the contract's float64 factors (requantMultipliers / accumulatorScales), so a provider may
// cache those.

/** A kernel's destination: u8, f32 or i32 by output kind. */
export type GemmOut = Uint8Array | Float32Array | Int32Array;

/**
 * Bounds a provider may tighten (for kernel providers): a native provider indexes with int32
 * arithmetic and packs at most 2^24 channels, the JS reference only needs int32 sizes.
 */
export interface KernelLimits {
  /** Largest GEMM row count m. */
  readonly maxM: number;
  /** Largest channel count n of packWeights and of the Gaussian sampler. */
  readonly maxN: number;
  /** Largest entry of xShape and wShape, and largest group count, of qconv2d. */
  readonly maxConvDim: number;
  /** Largest stride, padding and dilation entry of qconv2d. */
  readonly maxConvPair: number;
  /**
   * Whether packWeights and the Gaussian sampler reject K > MAX_GEMM_K up front (a provider
   * whose packs only serve GEMMs). Otherwise the GEMM and the convolution reject it.
   */
  readonly packChecksK: boolean;
}

/** The JS reference's limits: sizes up to int32. */
export const REFERENCE_KERNEL_LIMITS: KernelLimits = Object.freeze({
  maxM: 2 ** 31 - 1,
  maxN: 2 ** 31 - 1,
  maxConvDim: 2 ** 31 - 1,
  maxConvPair: 2 ** 31 - 1,
  packChecksK: false,
});

/**
 * Largest number of values one kernel call may produce or stage: a GEMM's m * n outputs, a
 * convolution's batch * o * ho * wo outputs and one image's im2col rows ho * wo * K (2^28 values
 * are 1 GiB as f32 or i32). A larger call is an ERR_ARG before anything is allocated.
 */
export const MAX_KERNEL_ELEMENTS = 2 ** 28;

function checkKernelSize(kernel: string, what: string, formula: string, size: number): void {
  if (size > MAX_KERNEL_ELEMENTS) {
    throw new QbnnError(
      'ERR_ARG',
      `${kernel}: ${what} of ${formula} = ${size} values exceeds MAX_KERNEL_ELEMENTS = ${MAX_KERNEL_ELEMENTS}; split the call`,
    );
  }
}

/** Throws when `view`'s buffer was detached (transferred): it reads as empty and would be skipped silently. */
function checkAttached(name: string, view: ArrayBufferView): void {
  if (view.byteLength !== 0) return;
  try {
    new Uint8Array(view.buffer);
  } catch {
    throw new QbnnError('ERR_ARG', `${name} is detached (its ArrayBuffer was transferred)`);
  }
}

/** Throws unless `args` is an object (for kernel providers). */
export function checkArgsObject(kernel: string, args: unknown): void {
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', `${kernel}: args must be an object`);
}

/** Rejects K > MAX_GEMM_K, where the int32 accumulator could overflow (for kernel providers). */
export function checkGemmK(k: number): void {
  if (k > MAX_GEMM_K) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `K = ${k} exceeds MAX_GEMM_K = ${MAX_GEMM_K}: the int32 accumulator could overflow; split the reduction`,
    );
  }
}

/**
 * Checks per-tensor (a number or a length-1 array) or per-channel (length n) weight scales
 * without allocating (for kernel providers).
 */
export function checkChannelScales(name: string, v: ChannelScales, n: number): void {
  if (typeof v === 'number') {
    checkPositiveScale(name, v);
    return;
  }
  if (v == null || typeof (v as ArrayLike<number>).length !== 'number') {
    throw new QbnnError('ERR_ARG', `${name} must be a number or an array of numbers`);
  }
  const a = v as ArrayLike<number>;
  if (a.length === 1) {
    checkPositiveScale(name, a[0]);
    return;
  }
  if (a.length !== n) {
    throw new QbnnError(
      'ERR_SHAPE',
      `${name} must be a number or have length 1 or ${n}, got length ${a.length}`,
    );
  }
  // the element's name is built only for a failing element (a string a channel cost ~0.1-0.2 us)
  for (let i = 0; i < n; i++) {
    const x = a[i];
    if (!(typeof x === 'number' && x > 0 && x < Infinity)) checkPositiveScale(`${name}[${i}]`, x);
  }
}

/** A checked output stage, without its float64 factors. */
export interface GemmOutputSpec {
  readonly kind: 'u8' | 'f32' | 'i32';
  /** u8: the output zero point; otherwise 0. */
  readonly zeroPoint: number;
  /** u8: the clamp floor (the zero point with relu, else 0); otherwise 0. */
  readonly lo: number;
  /** u8 with relu. */
  readonly relu: boolean;
}

// Checked u8 stages by zero point and relu, made on first use: checking allocates nothing after.
const U8_SPECS: (GemmOutputSpec | undefined)[] = new Array(512);
const F32_SPEC: GemmOutputSpec = Object.freeze({ kind: 'f32', zeroPoint: 0, lo: 0, relu: false });
const I32_SPEC: GemmOutputSpec = Object.freeze({ kind: 'i32', zeroPoint: 0, lo: 0, relu: false });

/**
 * Checks a GEMM or convolution output stage and the weight scales (whatever the output kind, so
 * a bad call fails the same way for every kind), for kernel providers. The u8 multipliers and
 * f32 scales are then `requantMultipliers(aScale, wScale, output.scale, n)` and
 * `accumulatorScales(aScale, wScale, n)`.
 */
export function checkGemmOutput(output: GemmOutput, wScale: ChannelScales, n: number): GemmOutputSpec {
  if (output == null || typeof output !== 'object') {
    throw new QbnnError(
      'ERR_ARG',
      "output must be { kind: 'u8', scale, zeroPoint, relu? }, { kind: 'f32' } or { kind: 'i32' }",
    );
  }
  checkChannelScales('wScale', wScale, n);
  switch (output.kind) {
    case 'u8': {
      checkPositiveScale('output.scale', output.scale);
      const zo = checkInt('output.zeroPoint', output.zeroPoint, 0, 255);
      if (output.relu !== undefined && typeof output.relu !== 'boolean') {
        throw new QbnnError('ERR_ARG', `output.relu must be a boolean, got ${String(output.relu)}`);
      }
      const relu = output.relu === true;
      const slot = zo * 2 + (relu ? 1 : 0);
      let spec = U8_SPECS[slot];
      if (spec === undefined) {
        spec = Object.freeze({ kind: 'u8', zeroPoint: zo, lo: relu ? zo : 0, relu });
        U8_SPECS[slot] = spec;
      }
      return spec;
    }
    case 'f32':
      return F32_SPEC;
    case 'i32':
      return I32_SPEC;
    default:
      throw new QbnnError(
        'ERR_ARG',
        `output.kind must be 'u8', 'f32' or 'i32', got ${String((output as { kind: unknown }).kind)}`,
      );
  }
}

/** Checks the destination of an output kind, or allocates it when omitted (for kernel providers). */
export function gemmOutputBuffer(
  kind: GemmOutputSpec['kind'],
  out: GemmOut | undefined,
  length: number,
): GemmOut {
  const Ctor = kind === 'u8' ? Uint8Array : kind === 'f32' ? Float32Array : Int32Array;
  if (out === undefined) return new Ctor(length);
  if (!(out instanceof Ctor)) {
    throw new QbnnError('ERR_ARG', `out must be a ${Ctor.name} for output kind '${kind}'`);
  }
  checkAttached('out', out);
  checkLength('out', out, length);
  return out;
}

/** Checks an optional int32 bias of length n (for kernel providers). */
export function checkGemmBias(bias: Int32Array | undefined, n: number): Int32Array | undefined {
  if (bias === undefined) return undefined;
  if (!(bias instanceof Int32Array)) throw new QbnnError('ERR_ARG', 'bias must be an Int32Array');
  checkLength('bias', bias, n);
  return bias;
}

/**
 * Checks the arguments of `packWeights` (s8 weights [n, k] and their zero points), for kernel
 * providers; returns the zero points broadcast to length n.
 */
export function checkPackWeightsArgs(
  w: Int8Array | PackedInts,
  n: number,
  k: number,
  zeroPoint: ChannelZeroPoints,
  limits: KernelLimits = REFERENCE_KERNEL_LIMITS,
): Int32Array {
  if (!(w instanceof Int8Array) && !isPackedInts(w))
    throw new QbnnError('ERR_ARG', 'packWeights: w must be an Int8Array (s8 weights) or PackedInts');
  checkInt('packWeights: n', n, 1, limits.maxN);
  checkInt('packWeights: k', k, 1, 2 ** 31 - 1);
  if (limits.packChecksK) checkGemmK(k);
  if (w instanceof Int8Array) {
    if (w.length !== n * k) {
      throw new QbnnError(
        'ERR_SHAPE',
        `packWeights: w has length ${w.length}, expected n * k = ${n} * ${k} = ${n * k}`,
      );
    }
  } else checkPackedInts('packWeights: w', w, n * k);
  return perChannelI32('packWeights: zeroPoint', zeroPoint as number | ArrayLike<number>, n, -128, 127);
}

/** A checked qgemm call: T is the provider's view of the packed weights. */
export interface CheckedQGemm<T> {
  /** The packed weights, as the provider's `resolve` returned them. */
  readonly w: T;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly aZeroPoint: number;
  readonly bias: Int32Array | undefined;
  readonly output: GemmOutputSpec;
  /** args.out, checked, or a new buffer of length m * n. */
  readonly out: GemmOut;
}

/**
 * Checks and normalises the arguments of `qgemm` (QGemmArgs in types.ts), for kernel providers.
 * `resolve(w, name)` narrows the packed weights to the provider's own (throwing otherwise).
 */
export function checkQGemmArgs<T>(
  args: QGemmArgs,
  resolve: (w: PackedWeights, name: string) => T,
  limits: KernelLimits = REFERENCE_KERNEL_LIMITS,
): CheckedQGemm<T> {
  checkArgsObject('qgemm', args);
  const w = resolve(args.w, 'qgemm: w');
  const { n, k } = args.w;
  checkGemmK(k);
  const m = checkInt('qgemm: m', args.m, 0, limits.maxM);
  checkKernelSize('qgemm', 'an output', `m * n = ${m} * ${n}`, m * n);
  if (!(args.a instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'qgemm: a must be a Uint8Array (u8 activations)');
  if (args.a.length !== m * k) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qgemm: a has length ${args.a.length}, expected m * k = ${m} * ${k} = ${m * k}`,
    );
  }
  checkPositiveScale('qgemm: aScale', args.aScale);
  const aZeroPoint = checkInt('qgemm: aZeroPoint', args.aZeroPoint, 0, 255);
  const bias = checkGemmBias(args.bias, n);
  const output = checkGemmOutput(args.output, args.wScale, n);
  const out = gemmOutputBuffer(output.kind, args.out, m * n);
  return { w, m, n, k, aZeroPoint, bias, output, out };
}

/** Output size of a convolution along one axis. */
export function convOutSize(
  size: number,
  kernel: number,
  stride: number,
  pad: number,
  dilation: number,
): number {
  return Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

function convPair(
  name: string,
  v: readonly [number, number] | undefined,
  dflt: number | readonly [number, number],
  min: number,
  max: number,
  kernel = 'qconv2d',
): [number, number] {
  if (v === undefined) return typeof dflt === 'number' ? [dflt, dflt] : [dflt[0], dflt[1]];
  if (!Array.isArray(v) || v.length !== 2)
    throw new QbnnError('ERR_ARG', `${kernel}: ${name} must be a pair [h, w]`);
  return [
    checkInt(`${kernel}: ${name}[0]`, v[0], min, max),
    checkInt(`${kernel}: ${name}[1]`, v[1], min, max),
  ];
}

function convDims(
  name: string,
  v: readonly number[],
  max: number,
  kernel = 'qconv2d',
): [number, number, number, number] {
  if (!Array.isArray(v) || v.length !== 4)
    throw new QbnnError('ERR_SHAPE', `${kernel}: ${name} must have 4 dimensions`);
  return [
    checkInt(`${kernel}: ${name}[0]`, v[0], 1, max),
    checkInt(`${kernel}: ${name}[1]`, v[1], 1, max),
    checkInt(`${kernel}: ${name}[2]`, v[2], 1, max),
    checkInt(`${kernel}: ${name}[3]`, v[3], 1, max),
  ];
}

/** A checked qconv2d call: the normalised geometry, T being the provider's view of a pack. */
export interface CheckedQConv2d<T> {
  readonly batch: number;
  /** Input channels, height, width. */
  readonly c: number;
  readonly h: number;
  readonly w: number;
  /** Output channels, input channels per group, kernel height and width. */
  readonly o: number;
  readonly cg: number;
  readonly kh: number;
  readonly kw: number;
  readonly groups: number;
  /** Output channels per group. */
  readonly og: number;
  /** The GEMM's K: cg * kh * kw. */
  readonly kg: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly dilationH: number;
  readonly dilationW: number;
  /** Output height and width. */
  readonly ho: number;
  readonly wo: number;
  readonly xZeroPoint: number;
  /**
   * The resolved packs: one per group ([og, kg] each), or, when `whole` is set, the single
   * resolved pack of all o rows (group g uses its rows g * og onwards).
   */
  readonly packs: T[];
  /** The single pack of all o rows when one was given; undefined for per-group packs. */
  readonly whole: PackedWeights | undefined;
  readonly bias: Int32Array | undefined;
  readonly output: GemmOutputSpec;
  /** args.out, checked, or a new buffer of length batch * o * ho * wo. */
  readonly out: GemmOut;
}

/** Resolves the packs of `list` (`whole`: its single pack of all o rows) and checks their shapes. */
function convPacks<T>(
  list: readonly PackedWeights[],
  whole: PackedWeights | undefined,
  groups: number,
  o: number,
  kg: number,
  resolve: (w: PackedWeights, name: string) => T,
): T[] {
  if (whole !== undefined) {
    const r = resolve(whole, 'qconv2d: w');
    if (whole.n !== o || whole.k !== kg) {
      throw new QbnnError(
        'ERR_SHAPE',
        `qconv2d: w is packed [${whole.n}, ${whole.k}], expected [${o}, ${kg}] from wShape`,
      );
    }
    return [r];
  }
  if (list.length !== groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: expected ${groups} weight packs (one per group) or one of ${o} rows, got ${list.length}`,
    );
  }
  const og = o / groups;
  const packs: T[] = [];
  for (let g = 0; g < groups; g++) {
    const p = list[g];
    const r = resolve(p, `qconv2d: w[${g}]`);
    if (p.n !== og || p.k !== kg) {
      throw new QbnnError(
        'ERR_SHAPE',
        `qconv2d: w[${g}] is packed [${p.n}, ${p.k}], expected [${og}, ${kg}]`,
      );
    }
    packs.push(r);
  }
  return packs;
}

/**
 * Checks and normalises the arguments of `qconv2d` (QConv2dArgs in types.ts), for kernel
 * providers: the geometry (defaults of stride, padding, dilation and groups applied, output size
 * by `convOutSize`), the weight packs narrowed by `resolve(w, name)` to the provider's own, the
 * bias, the output stage and the destination.
 */
export function checkQConv2dArgs<T>(
  args: QConv2dArgs,
  resolve: (w: PackedWeights, name: string) => T,
  limits: KernelLimits = REFERENCE_KERNEL_LIMITS,
): CheckedQConv2d<T> {
  const geo = checkConvGeometry(args, resolve, limits);
  const out = gemmOutputBuffer(geo.output.kind, args.out, geo.batch * geo.o * geo.ho * geo.wo);
  return { ...geo, out };
}

/** Everything checkQConv2dArgs checks but the destination. */
function checkConvGeometry<T>(
  args: Omit<QConv2dArgs, 'out'>,
  resolve: (w: PackedWeights, name: string) => T,
  limits: KernelLimits,
): Omit<CheckedQConv2d<T>, 'out'> {
  checkArgsObject('qconv2d', args);
  const [batch, c, h, w] = convDims('xShape', args.xShape, limits.maxConvDim);
  const [o, cg, kh, kw] = convDims('wShape', args.wShape, limits.maxConvDim);
  const groups = checkInt('qconv2d: groups', args.groups ?? 1, 1, limits.maxConvDim);
  if (c !== cg * groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: input has ${c} channels; wShape[1] * groups = ${cg} * ${groups} = ${cg * groups}`,
    );
  }
  if (o % groups !== 0)
    throw new QbnnError('ERR_SHAPE', `qconv2d: ${o} output channels are not divisible by groups ${groups}`);
  const [strideH, strideW] = convPair('stride', args.stride, 1, 1, limits.maxConvPair);
  const [padH, padW] = convPair('padding', args.padding, 0, 0, limits.maxConvPair);
  const [dilationH, dilationW] = convPair('dilation', args.dilation, 1, 1, limits.maxConvPair);
  if (!(args.x instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'qconv2d: x must be a Uint8Array (u8 input)');
  const xLen = batch * c * h * w;
  if (args.x.length !== xLen)
    throw new QbnnError('ERR_SHAPE', `qconv2d: x has length ${args.x.length}, xShape says ${xLen}`);
  checkPositiveScale('qconv2d: xScale', args.xScale);
  const xZeroPoint = checkInt('qconv2d: xZeroPoint', args.xZeroPoint, 0, 255);
  const ho = convOutSize(h, kh, strideH, padH, dilationH);
  const wo = convOutSize(w, kw, strideW, padW, dilationW);
  if (ho < 1 || wo < 1) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: output would be ${ho} x ${wo}; the dilated kernel exceeds the padded input`,
    );
  }
  const kg = cg * kh * kw;
  checkGemmK(kg);
  checkKernelSize(
    'qconv2d',
    'an output',
    `batch * o * ho * wo = ${batch} * ${o} * ${ho} * ${wo}`,
    batch * o * ho * wo,
  );
  checkKernelSize('qconv2d', "one image's im2col", `ho * wo * K = ${ho} * ${wo} * ${kg}`, ho * wo * kg);
  const list = Array.isArray(args.w) ? (args.w as readonly PackedWeights[]) : [args.w as PackedWeights];
  // One pack of all o rows (group g uses rows g * o/groups onwards), or one pack per group.
  const whole = list.length === 1 && (groups === 1 || list[0].n === o) ? list[0] : undefined;
  const packs = convPacks(list, whole, groups, o, kg, resolve);
  const bias = checkGemmBias(args.bias, o);
  const output = checkGemmOutput(args.output, args.wScale, o);
  return {
    batch,
    c,
    h,
    w,
    o,
    cg,
    kh,
    kw,
    groups,
    og: o / groups,
    kg,
    strideH,
    strideW,
    padH,
    padW,
    dilationH,
    dilationW,
    ho,
    wo,
    xZeroPoint,
    packs,
    whole,
    bias,
    output,
  };
}

/** A checked pooling: its geometry and the output size. */
export interface CheckedPool2d {
  readonly kind: 'max' | 'avg';
  readonly kh: number;
  readonly kw: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  /** Pooled height and width. */
  readonly ho: number;
  readonly wo: number;
}

/**
 * Checks a Pool2dSpec over an input of height h and width w (for kernel providers): the
 * defaults applied (stride = kernel, padding 0), padding at most half the kernel, a non-empty
 * output.
 */
export function checkPool2dSpec(kernel: string, pool: Pool2dSpec, h: number, w: number): CheckedPool2d {
  if (pool == null || typeof pool !== 'object')
    throw new QbnnError('ERR_ARG', `${kernel}: pool must be an object { kind, kernel, stride?, padding? }`);
  if (pool.kind !== 'max' && pool.kind !== 'avg')
    throw new QbnnError('ERR_ARG', `${kernel}: pool.kind must be 'max' or 'avg', got ${String(pool.kind)}`);
  const max = 2 ** 20;
  const [kh, kw] = convPair('pool.kernel', pool.kernel, Number.NaN, 1, max, kernel);
  if (pool.kernel === undefined) throw new QbnnError('ERR_ARG', `${kernel}: pool.kernel is required`);
  const [strideH, strideW] = convPair('pool.stride', pool.stride, [kh, kw], 1, max, kernel);
  const [padH, padW] = convPair('pool.padding', pool.padding, 0, 0, max, kernel);
  if (2 * padH > kh || 2 * padW > kw) {
    throw new QbnnError(
      'ERR_ARG',
      `${kernel}: pool.padding [${padH}, ${padW}] exceeds half the kernel [${kh}, ${kw}]`,
    );
  }
  const ho = convOutSize(h, kh, strideH, padH, 1);
  const wo = convOutSize(w, kw, strideW, padW, 1);
  if (ho < 1 || wo < 1)
    throw new QbnnError('ERR_SHAPE', `${kernel}: the pooling window exceeds the ${h} x ${w} input`);
  return { kind: pool.kind, kh, kw, strideH, strideW, padH, padW, ho, wo };
}

function pooledOut(kernel: string, out: Uint8Array | undefined, length: number): Uint8Array {
  if (out === undefined) return new Uint8Array(length);
  if (!(out instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', `${kernel}: out must be a Uint8Array (u8 output)`);
  if (out.length !== length)
    throw new QbnnError('ERR_SHAPE', `${kernel}: out has length ${out.length}, expected ${length}`);
  return out;
}

/** A checked qpool2d call. */
export interface CheckedQPool2d {
  readonly batch: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  readonly zeroPoint: number;
  readonly pool: CheckedPool2d;
  /** args.out, checked, or a new buffer of length batch * c * ho * wo. */
  readonly out: Uint8Array;
}

/** Checks the arguments of `qpool2d` (QPool2dArgs in types.ts), for kernel providers. */
export function checkQPool2dArgs(
  args: QPool2dArgs,
  limits: KernelLimits = REFERENCE_KERNEL_LIMITS,
): CheckedQPool2d {
  checkArgsObject('qpool2d', args);
  const [batch, c, h, w] = convDims('xShape', args.xShape, limits.maxConvDim, 'qpool2d');
  if (!(args.x instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'qpool2d: x must be a Uint8Array (u8 input)');
  if (args.x.length !== batch * c * h * w)
    throw new QbnnError(
      'ERR_SHAPE',
      `qpool2d: x has length ${args.x.length}, xShape says ${batch * c * h * w}`,
    );
  const zeroPoint = checkInt('qpool2d: zeroPoint', args.zeroPoint, 0, 255);
  const pool = checkPool2dSpec('qpool2d', args.pool, h, w);
  const out = pooledOut('qpool2d', args.out, batch * c * pool.ho * pool.wo);
  return { batch, c, h, w, zeroPoint, pool, out };
}

/** A checked qconv2dPool call: the convolution (without its destination) and the pooling. */
export interface CheckedQConv2dPool<T> extends Omit<CheckedQConv2d<T>, 'out'> {
  readonly pool: CheckedPool2d;
  /** args.out, checked, or a new buffer of length batch * o * pool.ho * pool.wo. */
  readonly out: Uint8Array;
}

/**
 * Checks the arguments of `qconv2dPool` (QConv2dPoolArgs in types.ts), for kernel providers: the
 * convolution as checkQConv2dArgs does, a u8 output stage, the pooling over its output.
 */
export function checkQConv2dPoolArgs<T>(
  args: QConv2dPoolArgs,
  resolve: (w: PackedWeights, name: string) => T,
  limits: KernelLimits = REFERENCE_KERNEL_LIMITS,
): CheckedQConv2dPool<T> {
  checkArgsObject('qconv2dPool', args);
  if (args.output == null || args.output.kind !== 'u8')
    throw new QbnnError('ERR_ARG', "qconv2dPool: output.kind must be 'u8' (pooling runs on u8)");
  const geo = checkConvGeometry(args, resolve, limits);
  const pool = checkPool2dSpec('qconv2dPool', args.pool, geo.ho, geo.wo);
  const out = pooledOut('qconv2dPool', args.out, geo.batch * geo.o * pool.ho * pool.wo);
  return { ...geo, pool, out };
}

/** Checks a Philox key (two uint32) and block position (for kernel providers). */
export function checkPhiloxKey(kernel: string, key: readonly [number, number], position: number): void {
  if (!Array.isArray(key) || key.length !== 2)
    throw new QbnnError('ERR_ARG', `${kernel}: key must be a pair of uint32`);
  checkInt(`${kernel}: key[0]`, key[0], 0, 0xffffffff);
  checkInt(`${kernel}: key[1]`, key[1], 0, 0xffffffff);
  checkInt(`${kernel}: position`, position, 0, Number.MAX_SAFE_INTEGER);
}

/** Checks the arguments of `qnormal` (QNormalArgs in types.ts), for kernel providers. */
export function checkQNormalArgs(args: QNormalArgs): void {
  checkArgsObject('qnormal', args);
  checkPhiloxKey('qnormal', args.key, args.position);
  if (!(args.out instanceof Int8Array)) throw new QbnnError('ERR_ARG', 'qnormal: out must be an Int8Array');
  checkAttached('qnormal: out', args.out);
}

function samplerZeroPoints(name: string, z: Int32Array, n: number, lo: number, hi: number): void {
  if (!(z instanceof Int32Array))
    throw new QbnnError('ERR_ARG', `sampleGaussian: ${name} must be an Int32Array`);
  checkLength(`sampleGaussian: ${name}`, z, n);
  // the element's name is built only for a failing element: the checks ran once a row of every
  // draw, and a string a row cost more than sampling a short row
  for (let i = 0; i < n; i++)
    if (z[i] < lo || z[i] > hi) checkInt(`sampleGaussian: ${name}[${i}]`, z[i], lo, hi);
}

function samplerMultipliers(name: string, m: Float64Array, n: number): void {
  if (!(m instanceof Float64Array))
    throw new QbnnError('ERR_ARG', `sampleGaussian: ${name} must be a Float64Array`);
  checkLength(`sampleGaussian: ${name}`, m, n);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(m[i]) || m[i] <= 0) {
      throw new QbnnError(
        Number.isNaN(m[i]) ? 'ERR_NAN' : 'ERR_ARG',
        `sampleGaussian: ${name}[${i}] must be finite and > 0, got ${m[i]}`,
      );
    }
  }
}

/** A checked Gaussian sampler call: its size and the signed weight range of `bits`. */
export interface CheckedGaussianSample {
  readonly n: number;
  readonly k: number;
  readonly qmin: number;
  readonly qmax: number;
}

/**
 * Checks the arguments of the fused Gaussian weight sampler (GaussianSampleArgs in types.ts),
 * for kernel providers.
 */
export function checkGaussianSampleArgs(
  args: GaussianSampleArgs,
  limits: KernelLimits = REFERENCE_KERNEL_LIMITS,
): CheckedGaussianSample {
  checkArgsObject('sampleGaussian', args);
  const n = checkInt('sampleGaussian: n', args.n, 1, limits.maxN);
  const k = checkInt('sampleGaussian: k', args.k, 1, 2 ** 31 - 1);
  if (limits.packChecksK) checkGemmK(k);
  const { qmin, qmax } = qRange(args.bits, true);
  checkPhiloxKey('sampleGaussian', args.key, args.position);
  if (isPackedInts(args.mu)) checkPackedInts('sampleGaussian: mu', args.mu, n * k);
  else if (!(args.mu instanceof Int8Array))
    throw new QbnnError('ERR_ARG', 'sampleGaussian: mu must be an Int8Array or PackedInts');
  else checkLength('sampleGaussian: mu', args.mu, n * k);
  if (isPackedInts(args.sigma)) checkPackedInts('sampleGaussian: sigma', args.sigma, n * k);
  else if (!(args.sigma instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'sampleGaussian: sigma must be a Uint8Array or PackedInts');
  else checkLength('sampleGaussian: sigma', args.sigma, n * k);
  samplerZeroPoints('muZeroPoint', args.muZeroPoint, n, -128, 127);
  samplerZeroPoints('sigmaZeroPoint', args.sigmaZeroPoint, n, 0, 255);
  samplerZeroPoints('noiseZeroPoint', args.noiseZeroPoint, n, qmin, qmax);
  samplerZeroPoints('weightZeroPoint', args.weightZeroPoint, n, qmin, qmax);
  samplerMultipliers('m1', args.m1, n);
  samplerMultipliers('m2', args.m2, n);
  samplerMultipliers('m3', args.m3, n);
  return { n, k, qmin, qmax };
}

/** Whether a tensor argument is {@link PackedInts} (not a typed array of one value a byte). */
export function isPackedInts(t: unknown): t is PackedInts {
  return t != null && typeof t === 'object' && !ArrayBuffer.isView(t) && 'bytes' in t && 'bits' in t;
}

/**
 * Checks {@link PackedInts} standing for `count` values: bits an integer in [2, 8], `bytes` a
 * Uint8Array of exactly packedByteLength(count, bits) bytes whose padding bits are zero.
 */
export function checkPackedInts(name: string, t: PackedInts, count: number): void {
  checkInt(`${name}.bits`, t.bits, MIN_BITS, MAX_BITS);
  if (!(t.bytes instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', `${name}.bytes must be a Uint8Array of packed values`);
  const need = packedByteLength(count, t.bits);
  if (t.bytes.length !== need)
    throw new QbnnError(
      'ERR_SHAPE',
      `${name}.bytes holds ${t.bytes.length} bytes, ${count} values of ${t.bits} bits take ${need}`,
    );
  const tail = (count * t.bits) % 8;
  if (tail !== 0 && t.bytes[need - 1] >> tail !== 0)
    throw new QbnnError('ERR_ARG', `${name}: the padding bits of the last byte must be zero`);
}

/**
 * Checks the optional destination pack of the Gaussian sampler (GaussianSampleArgs.out), for
 * providers that sample into it: `resolve(out, name)` narrows it to the provider's own pack,
 * whose shape must be [n, k]. Returns undefined when no destination was given.
 */
export function checkSampleInto<T>(
  out: PackedWeights | undefined,
  n: number,
  k: number,
  resolve: (w: PackedWeights, name: string) => T,
): T | undefined {
  if (out === undefined) return undefined;
  const r = resolve(out, 'sampleGaussian: out');
  if (out.n !== n || out.k !== k) {
    throw new QbnnError(
      'ERR_SHAPE',
      `sampleGaussian: out is packed [${out.n}, ${out.k}], expected [${n}, ${k}]`,
    );
  }
  return r;
}
