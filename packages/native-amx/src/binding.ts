import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The raw functions of the compiled addon (native/src/addon.cc). Internal. */
/** The convolution arguments shared by qconv2d and qconv2dPool (validated again in C++). */
export type RawConvArgs = [
  x: Uint8Array,
  xShape: Int32Array,
  za: number,
  handles: unknown[],
  wShape: Int32Array,
  geometry: Int32Array,
  bias: Int32Array | null,
  kind: number,
  mult: Float64Array | null,
  zo: number,
  relu: boolean,
];

export interface NativeAddon {
  info(): RawInfo;
  setIsa(name: string): string;
  setThreads(n: number): number;
  setQnormalTable(t: Uint32Array): void;
  /** `bits` < 8: w is core's packInts bytes (a Uint8Array). */
  pack(w: Int8Array | Uint8Array, n: number, k: number, zp: Int32Array, bits?: number): RawPacked;
  unpack(handle: unknown): Int8Array;
  dispose(handle: unknown): void;
  qgemm(
    a: Uint8Array,
    m: number,
    k: number,
    za: number,
    handle: unknown,
    bias: Int32Array | null,
    kind: number,
    mult: Float64Array | null,
    zo: number,
    relu: boolean,
    out: Uint8Array | Float32Array | Int32Array,
  ): void;
  qconv2d(...args: [...RawConvArgs, out: Uint8Array | Float32Array | Int32Array]): void;
  /** The direct convolution with its weights reordered once; null when it cannot take the shape. */
  qconv2dPrepare(...args: RawConvArgs): unknown;
  qconv2dPrepared(prepared: unknown, x: Uint8Array, out: Uint8Array | Float32Array | Int32Array): void;
  qconv2dPreparedDispose(prepared: unknown): void;
  qpool2d(x: Uint8Array, xShape: Int32Array, zeroPoint: number, pool: Int32Array, out: Uint8Array): void;
  qconv2dPool(...args: [...RawConvArgs, pool: Int32Array, out: Uint8Array]): void;
  philox(k0: number, k1: number, position: number, out: Uint32Array): void;
  qnormal(k0: number, k1: number, position: number, out: Int8Array): void;
  mapWords(words: Uint32Array, out: Int8Array, mode: number): void;
  /** `muBits` / `sigmaBits` < 8: mu / sigma are core's packInts bytes (Uint8Arrays). */
  sampleGaussian(
    mu: Int8Array | Uint8Array,
    muZp: Int32Array,
    sigma: Uint8Array,
    sigmaZp: Int32Array,
    noiseZp: Int32Array,
    weightZp: Int32Array,
    m1: Float64Array,
    m2: Float64Array,
    m3: Float64Array,
    n: number,
    k: number,
    bits: number,
    k0: number,
    k1: number,
    position: number,
    into?: unknown,
    intoRowSums?: Int32Array | null,
    intoZeroPoint?: Int32Array | null,
    muBits?: number,
    sigmaBits?: number,
    /** With `into`: batch 1's sample + dot (rows dotted with x as drawn, bytes not written); false without AVX-512. */
    x?: Uint8Array | null,
    dots?: Int32Array | null,
  ): RawPacked | boolean | undefined;
  peak(iters: number, kind?: 'zmm' | 'ymm'): number | null;
  threadCpuTime(): number;
  fp32: Fp32Addon;
  /** Execution plans (native/src/plan.cc). */
  plan: {
    create(desc: unknown): unknown;
    run(
      plan: unknown,
      x: Float64Array | Float32Array,
      batch: number,
      samples: number,
      keys: Uint32Array,
      scalars: Float64Array,
      out: Float32Array,
      meanSoftmax: boolean,
    ): number;
    dispose(plan: unknown): void;
  };
}

/** y = conv(x, filter) (+ bias, activation); geometry as tfjs's Conv2DInfo (see kernels.ts). */
type Conv2dFn = (
  x: Float32Array,
  filter: Float32Array,
  y: Float32Array,
  geometry: Int32Array,
  bias: Float32Array | null,
  activation: number,
  alpha: number,
) => void;
/** An input gradient (dy, filter, dx) or a filter gradient (x, dy, dfilter). */
type ConvGradFn = (a: Float32Array, b: Float32Array, out: Float32Array, geometry: Int32Array) => void;

/** The fp32 kernels of the addon (native/src/fp32/binding.cc). Internal. */
export interface Fp32Addon {
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    dims: Int32Array,
    bias: Float32Array | null,
    activation: number,
    alpha: number,
  ): void;
  conv2d: Conv2dFn;
  conv2dBackpropInput: ConvGradFn;
  conv2dBackpropFilter: ConvGradFn;
  /** The same three on NCHW x, y and dy (the filter stays HWIO): no transposes around them. */
  conv2dNchw: Conv2dFn;
  conv2dNchwBackpropInput: ConvGradFn;
  conv2dNchwBackpropFilter: ConvGradFn;
  /**
   * relu(maxpool2x2(conv(x) + bias)) on NCHW x without the convolution's output in memory: y
   * [n, co, oh / 2, ow / 2] and each window's tap, one byte each packed four to an element of
   * `at` (0..3 row-major, 4 where the ReLU passes no gradient). The filter is HWIO (default) or
   * OIHW (`layout`), read in place.
   */
  conv2dNchwReluMaxPool(
    x: Float32Array,
    filter: Float32Array,
    y: Float32Array,
    at: Int32Array,
    geometry: Int32Array,
    bias: Float32Array | null,
    layout?: 'HWIO' | 'OIHW',
  ): void;
  /** The convolution's input gradient from the pooled dy and the taps, without the scattered dz. */
  conv2dNchwReluMaxPoolBackpropInput(
    dy: Float32Array,
    at: Int32Array,
    filter: Float32Array,
    dx: Float32Array,
    geometry: Int32Array,
    layout?: 'HWIO' | 'OIHW',
  ): void;
  /** The convolution's filter gradient (in `layout`) from x, the pooled dy and the taps. */
  conv2dNchwReluMaxPoolBackpropFilter(
    x: Float32Array,
    dy: Float32Array,
    at: Int32Array,
    dfilter: Float32Array,
    geometry: Int32Array,
    layout?: 'HWIO' | 'OIHW',
  ): void;
  /** The bias gradient (dz summed over n, h, w; Sum's values bit for bit), dims [n, c, h, w]. */
  reluMaxPoolBiasGrad(dy: Float32Array, at: Int32Array, out: Float32Array, dims: Int32Array): void;
  pool(kind: 'max' | 'avg', x: Float32Array, y: Float32Array, geometry: Int32Array): void;
  poolGrad(
    kind: 'max' | 'avg',
    x: Float32Array | null,
    dy: Float32Array,
    dx: Float32Array,
    geometry: Int32Array,
  ): void;
  transpose(
    x: Float32Array | Int32Array,
    y: Float32Array | Int32Array,
    shape: Int32Array,
    perm: Int32Array,
  ): void;
  unary(op: 'softplus' | 'sigmoid' | 'exp' | 'log' | 'sqrt', x: Float32Array, y: Float32Array): void;
  binary(
    op:
      | 'add'
      | 'sub'
      | 'mul'
      | 'div'
      | 'maximum'
      | 'minimum'
      | 'reluGrad'
      | 'less'
      | 'lessEqual'
      | 'greater'
      | 'greaterEqual',
    a: Float32Array,
    b: Float32Array,
    out: Float32Array | Uint8Array,
  ): void;
  select(cond: Uint8Array, t: Float32Array, e: Float32Array, out: Float32Array): void;
  /** out[i] = row indices[i] of x (rows of `row` values); false when an index is out of range. */
  gather(
    x: Float32Array | Int32Array,
    indices: Int32Array,
    out: Float32Array | Int32Array,
    row: number,
  ): boolean;
  /** w = mu + softplus(rho) * eps (@qbnn/core's 'QbnnLocScaleSample'). */
  locScaleSample(mu: Float32Array, rho: Float32Array, eps: Float32Array, w: Float32Array): void;
  /** drho = dw * eps * sigmoid(rho). */
  locScaleSampleGrad(dw: Float32Array, rho: Float32Array, eps: Float32Array, drho: Float32Array): void;
  /** out[k] = sum of x[o, k, i] over o < dims[0], i < dims[2] (float64 sums), k < dims[1]. */
  sum(x: Float32Array, out: Float32Array, dims: Int32Array): void;
  /** Standard normals of a Philox stream from a block, equal to @qbnn/core's normalsFromWords. */
  normal(k0: number, k1: number, firstBlock: number, out: Float32Array): void;
  /**
   * Tests: 0 the normals' checked short evaluation (default), 1 the reference operations only, 2
   * the short evaluation always declared uncertain (the reference recomputes every step).
   */
  setNormalFastMode(mode: 0 | 1 | 2): void;
  /** Tests: the AVX-512 normals of given words (length a multiple of 64); false where absent. */
  normalsFromWords(words: Uint32Array, out: Float32Array): boolean;
  /** w = mu + sigma * the normals `normal` writes (@qbnn/core's 'QbnnNormalLocScale'). */
  normalLocScale(
    k0: number,
    k1: number,
    firstBlock: number,
    w: Float32Array,
    mu: Float32Array,
    sigma: Float32Array,
  ): void;
  /** Rng.uniform's values of the blocks from firstBlock of key (k0, k1), bit for bit. */
  uniform(k0: number, k1: number, firstBlock: number, out: Float32Array): void;
  normalCoefficients(): { log: Float64Array; sin: Float64Array; cos: Float64Array };
  /** One Adam step; attrs = [lr, beta1, beta2, epsilon, 1 - beta1^t, 1 - beta2^t]. */
  adam(
    p: Float32Array,
    m: Float32Array,
    v: Float32Array,
    g: Float32Array,
    outP: Float32Array,
    outM: Float32Array,
    outV: Float32Array,
    attrs: Float64Array,
  ): void;
  /** adam of every tensor k: m[k], v[k] rewritten in place from g[k], the new parameter in outP[k]; one call. */
  adamMany(
    p: Float32Array[],
    m: Float32Array[],
    v: Float32Array[],
    g: Float32Array[],
    outP: Float32Array[],
    attrs: Float64Array,
  ): void;
  /** The summed closed-form KL of N(mu, softplus(rho)^2) to N(prior[0], prior[1]^2). */
  gaussianKl(mu: Float32Array, rho: Float32Array, prior: Float64Array): number;
  gaussianKlGrad(
    mu: Float32Array,
    rho: Float32Array,
    prior: Float64Array,
    dy: number,
    dMu: Float32Array,
    dRho: Float32Array,
  ): void;
  /** w = mu + softplus(rho) * eps and (returned) the summed KL of (mu, softplus(rho)) to the prior. */
  gaussianSampleKl(
    mu: Float32Array,
    rho: Float32Array,
    prior: Float64Array,
    eps: Float32Array,
    w: Float32Array,
  ): number;
  /** dMu = dw + dkl dKL/dmu, dRho = dw * eps * sigmoid(rho) + dkl dKL/drho. */
  gaussianSampleKlGrad(
    mu: Float32Array,
    rho: Float32Array,
    prior: Float64Array,
    eps: Float32Array,
    dw: Float32Array,
    dkl: number,
    dMu: Float32Array,
    dRho: Float32Array,
  ): void;
  /** out = x * the inverted-dropout mask of maskSize elements from the stream, as @qbnn/core's dropoutApply. */
  dropout(
    x: Float32Array,
    maskSize: number,
    key: Uint32Array,
    firstBlock: number,
    p: number,
    out: Float32Array,
  ): void;
  /** sum((x - center)^2) in float64 (thread-count independent). */
  squaredDistance(x: Float32Array, center: number): number;
  /** dx = k (x - center), computed in float64. */
  squaredDistanceGrad(x: Float32Array, center: number, k: number, dx: Float32Array): void;
  setPortable(portable: boolean): boolean;
  peak(iters?: number): number | null;
  info(): { avx512: boolean; mr: number; nr: number };
}

export interface RawInfo {
  isa: string;
  best: string;
  available: string[];
  amxHardware: boolean;
  amxNote: string;
  threads: number;
  sanitized: boolean;
  arch: string;
}

export interface RawPacked {
  handle: unknown;
  rowSums: Int32Array;
  zeroPoint: Int32Array;
}

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the addon is looked for: $QBNN_NATIVE_PATH, else build/Release of this package. */
export const addonPath: string =
  process.env.QBNN_NATIVE_PATH ?? join(pkgDir, 'build', 'Release', 'qbnn_native.node');

function buildStatus(): string {
  const f = join(pkgDir, 'build', 'native-status.json');
  if (!existsSync(f)) return 'the addon was never built (run `pnpm --filter @qbnn/native-amx build`)';
  try {
    const s = JSON.parse(readFileSync(f, 'utf8')) as { ok?: boolean; reason?: string; log?: string[] };
    if (s.ok) return 'the build reported success';
    return `the build failed: ${s.reason ?? 'unknown reason'}${s.log ? `\n${s.log.slice(-8).join('\n')}` : ''}`;
  } catch {
    return 'build/native-status.json is unreadable';
  }
}

function load(): { addon?: NativeAddon; error?: string } {
  if (process.env.QBNN_NATIVE_DISABLE === '1') return { error: 'disabled by QBNN_NATIVE_DISABLE=1' };
  if (!existsSync(addonPath)) return { error: `no native addon at ${addonPath}: ${buildStatus()}` };
  try {
    const require = createRequire(import.meta.url);
    return { addon: require(addonPath) as NativeAddon };
  } catch (e) {
    return { error: `loading ${addonPath} failed: ${(e as Error).message} (${buildStatus()})` };
  }
}

const loaded = load();

/** The addon, or undefined when it could not be loaded (see `loadError`). Internal. */
export const addon: NativeAddon | undefined = loaded.addon;
/** Why the addon is unavailable, or undefined when it loaded. */
export const loadError: string | undefined = loaded.error;
