import {
  accumulatorScales,
  type ChannelZeroPoints,
  type CheckedPool2d,
  type CheckedQConv2d,
  checkGaussianSampleArgs,
  checkPackWeightsArgs,
  checkQConv2dArgs,
  checkQConv2dPoolArgs,
  checkQGemmArgs,
  checkQNormalArgs,
  checkQPool2dArgs,
  checkSampleInto,
  type GaussianSampleArgs,
  type GemmOut,
  type GemmOutputSpec,
  type KernelLimits,
  type KernelProvider,
  type PackedInts,
  type PackedWeights,
  type PlanDescription,
  QbnnError,
  type QConv2dArgs,
  type QConv2dPoolArgs,
  type QGemmArgs,
  QNORMAL_THRESHOLDS,
  type QNormalArgs,
  type QPool2dArgs,
  requantMultipliers,
} from '@qbnn/core';
import { addon, loadError, type NativeAddon, type RawConvArgs, type RawPacked } from './binding.js';
import { createNativePlan } from './plan.js';
import { rawInts } from './raw-ints.js';

/** Name of the native provider in @qbnn/core's kernel registry. */
export const NATIVE_PROVIDER = 'native';
/** Its priority: above the JS reference (0), so it is picked by default when it loaded. */
export const NATIVE_PRIORITY = 100;

const OUT_U8 = 0;
const OUT_F32 = 1;
const OUT_I32 = 2;

function need(): NativeAddon {
  if (addon === undefined) {
    throw new QbnnError('ERR_BACKEND', `@qbnn/native-amx: the native addon is not available: ${loadError}`);
  }
  return addon;
}

if (addon !== undefined) addon.setQnormalTable(QNORMAL_THRESHOLDS);

// ---------------------------------------------------------------- limits

/**
 * The native kernels index with int32 arithmetic and pack at most 2^24 channels; packs only feed
 * GEMMs, so K > MAX_GEMM_K is rejected when packing. Every check is core's (kernels/validate.ts).
 */
const NATIVE_LIMITS: KernelLimits = Object.freeze({
  maxM: 2 ** 30,
  maxN: 2 ** 24,
  maxConvDim: 2 ** 30,
  maxConvPair: 2 ** 20,
  packChecksK: true,
});

// ---------------------------------------------------------------- packed weights

const handles = new WeakMap<PackedWeights, unknown>();
const groupSlices = new WeakMap<PackedWeights, Map<number, NativePackedWeights[]>>();

/**
 * Weights packed by the native provider: blocks of 16 output channels, each a run of VNNI
 * groups (4 consecutive K values of 16 channels, 64 bytes); 16 groups form one AMX B tile.
 * The bytes live in native memory; `dispose()` frees them early (GC frees them otherwise).
 */
export class NativePackedWeights implements PackedWeights {
  readonly provider = NATIVE_PROVIDER;
  readonly n: number;
  readonly k: number;
  readonly zeroPoint: Int32Array;
  readonly rowSums: Int32Array;
  #disposed = false;

  /** @internal */
  constructor(raw: RawPacked, n: number, k: number) {
    this.n = n;
    this.k = k;
    this.zeroPoint = raw.zeroPoint;
    this.rowSums = raw.rowSums;
    handles.set(this, raw.handle);
  }

  /** Frees the native memory now; any later use throws. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const h = handles.get(this);
    if (h !== undefined && addon !== undefined) addon.dispose(h);
    for (const list of groupSlices.get(this)?.values() ?? []) for (const p of list) p.dispose();
    groupSlices.delete(this);
  }

  /** True once `dispose()` was called. */
  get disposed(): boolean {
    return this.#disposed;
  }
}

function handleOf(w: PackedWeights, name: string): unknown {
  if (w == null || typeof w !== 'object') throw new QbnnError('ERR_ARG', `${name} must be PackedWeights`);
  const h = handles.get(w);
  if (h === undefined) {
    throw new QbnnError(
      'ERR_ARG',
      `${name} was packed by provider '${String(w.provider)}'; the '${NATIVE_PROVIDER}' provider needs weights from its own packWeights`,
    );
  }
  if ((w as NativePackedWeights).disposed) throw new QbnnError('ERR_ARG', `${name} was disposed`);
  return h;
}

/** The packed weights as row-major s8 [n, k] (for tests and debugging). */
export function unpackWeights(w: PackedWeights): Int8Array {
  return need().unpack(handleOf(w, 'unpackWeights: w'));
}

// ---------------------------------------------------------------- output stage

// The float64 factors of recent calls, so that repeated GEMMs with the same scales (the usual
// case: every layer of every Monte Carlo sample) do not allocate them again. The values are
// exactly those of @qbnn/core's requantMultipliers / accumulatorScales (computed by them).
interface FactorEntry {
  kind: number;
  aScale: number;
  outScale: number;
  n: number;
  wNumber: number;
  wCopy: Float64Array | null;
  factor: Float64Array;
}
const factorCache: FactorEntry[] = [];
const FACTOR_CACHE_SIZE = 16;

function cachedFactor(
  kind: number,
  aScale: number,
  wScale: QGemmArgs['wScale'],
  outScale: number,
  n: number,
) {
  const isNum = typeof wScale === 'number';
  const w = wScale as ArrayLike<number>;
  for (let e = 0; e < factorCache.length; e++) {
    const c = factorCache[e];
    if (c.kind !== kind || c.aScale !== aScale || c.outScale !== outScale || c.n !== n) continue;
    if (isNum) {
      if (c.wCopy === null && c.wNumber === wScale) return c.factor;
      continue;
    }
    if (c.wCopy === null || c.wCopy.length !== w.length) continue;
    let same = true;
    for (let i = 0; i < w.length && same; i++) same = Object.is(c.wCopy[i], w[i]);
    if (same) return c.factor;
  }
  const factor =
    kind === OUT_U8 ? requantMultipliers(aScale, wScale, outScale, n) : accumulatorScales(aScale, wScale, n);
  if (factorCache.length >= FACTOR_CACHE_SIZE) factorCache.shift();
  factorCache.push({
    kind,
    aScale,
    outScale,
    n,
    wNumber: isNum ? (wScale as number) : Number.NaN,
    wCopy: isNum ? null : Float64Array.from(w),
    factor,
  });
  return factor;
}

const OUT_KIND = { u8: OUT_U8, f32: OUT_F32, i32: OUT_I32 } as const;

/** The cached float64 factors of a checked output stage (null for i32). */
function stageFactor(
  spec: GemmOutputSpec,
  output: QGemmArgs['output'],
  aScale: number,
  wScale: QGemmArgs['wScale'],
  n: number,
): Float64Array | null {
  if (spec.kind === 'u8') return cachedFactor(OUT_U8, aScale, wScale, (output as { scale: number }).scale, n);
  return spec.kind === 'f32' ? cachedFactor(OUT_F32, aScale, wScale, 0, n) : null;
}

// ---------------------------------------------------------------- kernels

function packWeights(
  w: Int8Array | PackedInts,
  n: number,
  k: number,
  zeroPoint: ChannelZeroPoints,
): NativePackedWeights {
  const a = need();
  const zp = checkPackWeightsArgs(w, n, k, zeroPoint, NATIVE_LIMITS);
  const [bytes, bits] = rawInts(w, true);
  return new NativePackedWeights(a.pack(bytes, n, k, zp, bits), n, k);
}

function qgemm(args: QGemmArgs): GemmOut {
  const a = need();
  const { w: h, m, n, k, aZeroPoint, bias, output, out } = checkQGemmArgs(args, handleOf, NATIVE_LIMITS);
  const factor = stageFactor(output, args.output, args.aScale, args.wScale, n);
  if (m === 0) return out;
  a.qgemm(
    args.a,
    m,
    k,
    aZeroPoint,
    h,
    bias ?? null,
    OUT_KIND[output.kind],
    factor,
    output.zeroPoint,
    output.relu,
    out,
  );
  return out;
}

/**
 * Native packs of each group's rows of a single pack of all rows, made once per pack and group
 * count and kept with it (disposed with it).
 */
function groupSlicesOf(p: PackedWeights, h: unknown, groups: number, og: number, kg: number): unknown[] {
  let byGroups = groupSlices.get(p);
  if (byGroups === undefined) {
    byGroups = new Map();
    groupSlices.set(p, byGroups);
  }
  let slices = byGroups.get(groups);
  if (slices === undefined) {
    const rows = need().unpack(h);
    slices = [];
    for (let g = 0; g < groups; g++) {
      slices.push(
        packWeights(
          rows.subarray(g * og * kg, (g + 1) * og * kg),
          og,
          kg,
          p.zeroPoint.subarray(g * og, (g + 1) * og),
        ),
      );
    }
    byGroups.set(groups, slices);
  }
  return slices.map((s) => handleOf(s, 'qconv2d: w'));
}

/** The addon's convolution arguments of a checked call (either kernel). */
function rawConvArgs(
  args: QConv2dArgs | QConv2dPoolArgs,
  geo: Omit<CheckedQConv2d<unknown>, 'out' | 'packs'> & { packs: unknown[] },
): RawConvArgs {
  const { batch, c, h, w, o, cg, kh, kw, groups, og, kg, packs, whole, output } = geo;
  const hs = whole !== undefined && groups > 1 ? groupSlicesOf(whole, packs[0], groups, og, kg) : packs;
  return [
    args.x,
    Int32Array.of(batch, c, h, w),
    geo.xZeroPoint,
    hs,
    Int32Array.of(o, cg, kh, kw),
    Int32Array.of(geo.strideH, geo.strideW, geo.padH, geo.padW, geo.dilationH, geo.dilationW, groups),
    geo.bias ?? null,
    OUT_KIND[output.kind],
    stageFactor(output, args.output, args.xScale, args.wScale, o),
    output.zeroPoint,
    output.relu,
  ];
}

function qconv2d(args: QConv2dArgs): GemmOut {
  const geo = checkQConv2dArgs(args, handleOf, NATIVE_LIMITS);
  need().qconv2d(...rawConvArgs(args, geo), geo.out);
  return geo.out;
}

/**
 * The direct AVX-512 convolution of `args` with its weights reordered once, for running the
 * same layer (same weights, epilogue and shapes) on new inputs: `run(x)` writes the output of x
 * (validated like qconv2d's) into a fresh array or `out`. Undefined when the direct kernel cannot
 * take the shape on this CPU. `dispose` frees it (a second call is a no-op). An input, `out` or
 * call after `dispose` that does not fit is a QbnnError `ERR_ARG` naming it. For benchmarks of the convolution itself
 * (`pnpm bench conv`): the arguments are validated once here, as execution plans do, not on
 * every call.
 */
export function prepareQConv2d(
  args: QConv2dArgs,
): { run(x: Uint8Array, out?: GemmOut): GemmOut; dispose(): void } | undefined {
  const geo = checkQConv2dArgs(args, handleOf, NATIVE_LIMITS);
  const a = need();
  const handle = a.qconv2dPrepare(...rawConvArgs(args, geo));
  if (handle === null || handle === undefined) return undefined;
  const size = geo.out.length;
  const inputs = args.x.length;
  const kind = args.output.kind;
  const Out = kind === 'u8' ? Uint8Array : kind === 'f32' ? Float32Array : Int32Array;
  let disposed = false;
  return {
    run(x, out) {
      if (disposed) throw new QbnnError('ERR_ARG', 'prepareQConv2d: the prepared convolution was disposed');
      if (!(x instanceof Uint8Array) || x.length !== inputs)
        throw new QbnnError(
          'ERR_ARG',
          `prepareQConv2d: x must be a Uint8Array of ${inputs} values (the prepared shape)`,
        );
      if (out !== undefined && (!(out instanceof Out) || out.length !== size))
        throw new QbnnError('ERR_ARG', `prepareQConv2d: out must be a ${Out.name} of ${size} values`);
      const o = out ?? new Out(size);
      a.qconv2dPrepared(handle, x, o);
      return o;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      a.qconv2dPreparedDispose(handle);
    },
  };
}

function poolGeometry(p: CheckedPool2d): Int32Array {
  return Int32Array.of(p.kind === 'max' ? 0 : 1, p.kh, p.kw, p.strideH, p.strideW, p.padH, p.padW);
}

function qpool2d(args: QPool2dArgs): Uint8Array {
  const a = need();
  const { batch, c, h, w, zeroPoint, pool, out } = checkQPool2dArgs(args, NATIVE_LIMITS);
  a.qpool2d(args.x, Int32Array.of(batch, c, h, w), zeroPoint, poolGeometry(pool), out);
  return out;
}

function qconv2dPool(args: QConv2dPoolArgs): Uint8Array {
  const geo = checkQConv2dPoolArgs(args, handleOf, NATIVE_LIMITS);
  need().qconv2dPool(...rawConvArgs(args, geo), poolGeometry(geo.pool), geo.out);
  return geo.out;
}

function qnormal(args: QNormalArgs): Int8Array {
  const a = need();
  checkQNormalArgs(args);
  a.qnormal(args.key[0], args.key[1], args.position, args.out);
  return args.out;
}

/** The raw sampler call of `args` (into `args.out` when given); with `dot`, batch 1's sample + dot. */
function sampleRaw(args: GaussianSampleArgs, dot?: { x: Uint8Array; dots: Int32Array }) {
  const a = need();
  const { n, k } = checkGaussianSampleArgs(args, NATIVE_LIMITS);
  const into = checkSampleInto(args.out, n, k, handleOf);
  const out = args.out as NativePackedWeights | undefined;
  if (out !== undefined) {
    // the pack's row sums (and, unless dot, bytes) change: per-group slices made from them are stale
    for (const list of groupSlices.get(out)?.values() ?? []) for (const p of list) p.dispose();
    groupSlices.delete(out);
  }
  const [mu, muBits] = rawInts(args.mu, true);
  const [sigma, sigmaBits] = rawInts(args.sigma, false);
  const raw = a.sampleGaussian(
    mu,
    args.muZeroPoint,
    sigma as Uint8Array,
    args.sigmaZeroPoint,
    args.noiseZeroPoint,
    args.weightZeroPoint,
    args.m1,
    args.m2,
    args.m3,
    n,
    k,
    args.bits,
    args.key[0],
    args.key[1],
    args.position,
    into ?? null,
    out?.rowSums ?? null,
    out?.zeroPoint ?? null,
    muBits,
    sigmaBits,
    dot?.x ?? null,
    dot?.dots ?? null,
  );
  return { raw, out, n, k };
}

function sampleGaussianPacked(args: GaussianSampleArgs): NativePackedWeights {
  const { raw, out, n, k } = sampleRaw(args);
  return out ?? new NativePackedWeights(raw as RawPacked, n, k);
}

/**
 * Batch 1's fused sample + dot, as execution plans run a Gaussian linear layer on one example:
 * each row of the weights `args` describes is drawn and at once dotted with `x` (k u8 values)
 * into `dots` (n int32 sums of x w), one thread; the pack `args.out` (required) gets the row sums
 * and zero points but not the weights' bytes. False (nothing computed) when the CPU lacks the
 * AVX-512 sampler, where plans pack instead. Internal: the benchmarks' limit at batch 1.
 */
export function sampleGaussianDot(args: GaussianSampleArgs, x: Uint8Array, dots: Int32Array): boolean {
  if (args.out === undefined)
    throw new QbnnError('ERR_ARG', 'sampleGaussianDot: args.out (a pack [n, k]) is required');
  if (!(x instanceof Uint8Array) || x.length !== args.k)
    throw new QbnnError('ERR_ARG', `sampleGaussianDot: x must be a Uint8Array of k = ${args.k} values`);
  if (!(dots instanceof Int32Array) || dots.length !== args.n)
    throw new QbnnError('ERR_ARG', `sampleGaussianDot: dots must be an Int32Array of n = ${args.n} values`);
  return sampleRaw(args, { x, dots }).raw === true;
}

/**
 * The native kernel provider: the @qbnn/core contract (kernels/types.ts) on the best ISA path
 * of this CPU, bit-identical to the JS reference. Registered as 'native' on import.
 */
export const nativeKernels: KernelProvider = Object.freeze({
  name: NATIVE_PROVIDER,
  priority: NATIVE_PRIORITY,
  isAvailable: () => addon !== undefined,
  packWeights,
  qgemm,
  qconv2d,
  qnormal,
  sampleGaussianPacked,
  qpool2d,
  qconv2dPool,
  createPlan: (desc: PlanDescription) => createNativePlan(need(), desc, handleOf, NATIVE_LIMITS),
});
