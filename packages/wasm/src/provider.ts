import {
  accumulatorScales,
  type ChannelZeroPoints,
  checkGaussianSampleArgs,
  checkPackWeightsArgs,
  checkPhiloxKey,
  checkQConv2dArgs,
  checkQGemmArgs,
  checkQNormalArgs,
  checkSampleInto,
  type GaussianSampleArgs,
  type GemmOut,
  type GemmOutputSpec,
  type KernelLimits,
  type KernelProvider,
  type PackedInts,
  type PackedWeights,
  QbnnError,
  type QConv2dArgs,
  type QGemmArgs,
  type QNormalArgs,
  requantMultipliers,
  unpackInts,
} from '@qbnn/core';
import { type Resident, Scratch } from './memory.js';
import type { KernelModule, LoadResult, WasmVariant } from './module.js';

/** Name of the WebAssembly provider in @qbnn/core's kernel registry. */
export const WASM_PROVIDER = 'wasm';
/**
 * Its priority: above the JS reference (0), below the native addon (100), so it is the default
 * in browsers and wherever the addon is missing.
 */
export const WASM_PRIORITY = 50;

/** Output channels per panel of the packed layout (csrc/common.h PANEL). */
const PANEL = 8;
/** Bytes of activations and outputs a GEMM or convolution moves into wasm memory per step. */
const CHUNK_BYTES = 16 * 2 ** 20;
/** Words of quantised normals per step. */
const QNORMAL_CHUNK = 2 ** 20;

const OUT_KIND = { u8: 0, f32: 1, i32: 2 } as const;

/**
 * Sizes are int32 inside the module and every buffer of a call must fit its 2 GiB memory; packs
 * only feed GEMMs, so K > MAX_GEMM_K is rejected when packing. Every check is core's
 * (kernels/validate.ts), so bad calls fail exactly as in the JS reference.
 */
const WASM_LIMITS: KernelLimits = Object.freeze({
  maxM: 2 ** 30,
  maxN: 2 ** 24,
  maxConvDim: 2 ** 30,
  maxConvPair: 2 ** 20,
  packChecksK: true,
});

// ---------------------------------------------------------------- state

interface State {
  load: LoadResult;
  active: KernelModule | undefined;
  scratch: Map<WasmVariant, Scratch>;
}
const state: State = {
  load: { relaxedSupported: false, relaxedExact: false },
  active: undefined,
  scratch: new Map(),
};

/** Installs what loading found and picks the best build (called once by the index). */
export function installKernels(load: LoadResult): void {
  state.load = load;
  state.active = load.relaxed ?? load.simd128;
  if (state.active !== undefined && state.active.exports.qbnn_panel() !== PANEL) {
    state.load = { ...load, error: 'the built kernels disagree with this package on the packed layout' };
    state.active = undefined;
  }
}

/** Why the provider is unavailable, or undefined when it runs. */
export function loadError(): string | undefined {
  return state.active === undefined
    ? (state.load.error ?? 'the WebAssembly kernels are not loaded')
    : undefined;
}

/** The builds that can run here, best first. */
export function availableVariants(): WasmVariant[] {
  const list: WasmVariant[] = [];
  if (state.load.relaxed !== undefined) list.push('relaxed');
  if (state.load.simd128 !== undefined) list.push('simd128');
  return list;
}

/** The build in use, or undefined when unavailable. */
export function activeVariant(): WasmVariant | undefined {
  return state.active?.variant;
}

/** What loading found (for wasmInfo). */
export function loadResult(): LoadResult {
  return state.load;
}

/** Chooses a build ('best' restores the default). Throws if it cannot run here. */
export function setVariant(name: WasmVariant | 'best'): WasmVariant {
  const mod =
    name === 'best'
      ? (state.load.relaxed ?? state.load.simd128)
      : name === 'relaxed'
        ? state.load.relaxed
        : name === 'simd128'
          ? state.load.simd128
          : undefined;
  if (name !== 'best' && name !== 'relaxed' && name !== 'simd128') {
    throw new QbnnError(
      'ERR_ARG',
      `wasm variant must be 'relaxed', 'simd128' or 'best', got ${String(name)}`,
    );
  }
  if (mod === undefined) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `wasm variant '${name}' is not available here (${loadError() ?? 'relaxed SIMD missing or inexact'})`,
    );
  }
  state.active = mod;
  return mod.variant;
}

function need(): { mod: KernelModule; sc: Scratch } {
  const mod = state.active;
  if (mod === undefined) throw new QbnnError('ERR_BACKEND', `@qbnn/wasm: ${loadError()}`);
  let sc = state.scratch.get(mod.variant);
  if (sc === undefined) {
    sc = new Scratch(mod);
    state.scratch.set(mod.variant, sc);
  }
  return { mod, sc };
}

// ---------------------------------------------------------------- packed weights

/** Bytes of a pack of n channels of k weights: panels of PANEL channels, groups of 4 K. */
function packedBytes(n: number, k: number): number {
  return Math.ceil(n / PANEL) * PANEL * Math.ceil(k / 4) * 4;
}

const owned = new WeakSet<PackedWeights>();
const groupSlices = new WeakMap<PackedWeights, Map<number, WasmPackedWeights[]>>();

/**
 * Weights packed by the wasm provider: panels of 8 output channels, each a run of groups of 4
 * consecutive K values ([4 channels x 4 K] per 16-byte vector), N padded to 8 and K to 4 with
 * zeros. Packs of `packWeights` live in JavaScript memory and are copied into the module's memory
 * for each call; a pack of the Gaussian sampler stays in the module's memory where it was sampled
 * until it is disposed or the next sample needs the room (then it is copied out first), so the
 * GEMM that consumes it reads it in place. `dispose()` frees it early.
 */
export class WasmPackedWeights implements PackedWeights, Resident {
  readonly provider = WASM_PROVIDER;
  readonly n: number;
  readonly k: number;
  readonly zeroPoint: Int32Array;
  readonly rowSums: Int32Array;
  #data: Int8Array | undefined;
  #home: { sc: Scratch; offset: number } | undefined;
  #disposed = false;

  /** @internal */
  constructor(
    where: Int8Array | { sc: Scratch; offset: number },
    n: number,
    k: number,
    zeroPoint: Int32Array,
    rowSums: Int32Array,
  ) {
    if (where instanceof Int8Array) this.#data = where;
    else this.#home = where;
    this.n = n;
    this.k = k;
    this.zeroPoint = zeroPoint;
    this.rowSums = rowSums;
    owned.add(this);
  }

  /** Byte length of the packed layout. */
  get byteLength(): number {
    return packedBytes(this.n, this.k);
  }

  /** @internal The module memory offset of the bytes when they are resident in `sc`. */
  residentIn(sc: Scratch): number | undefined {
    return this.#home?.sc === sc ? this.#home.offset : undefined;
  }

  /** @internal The packed bytes: a fresh view when resident (valid until the next call), else the array. */
  bytes(): Int8Array {
    if (this.#home !== undefined) return this.#home.sc.i8(this.#home.offset, this.byteLength);
    return this.#data!;
  }

  /** @internal Copies resident bytes out to JavaScript memory (the region is about to be reused). */
  evict(): void {
    if (this.#home === undefined) return;
    this.#data = this.bytes().slice();
    this.#home.sc.release(this);
    this.#home = undefined;
  }

  /** Frees the bytes now; any later use throws. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#home?.sc.release(this);
    this.#home = undefined;
    this.#data = undefined;
    groupSlices.delete(this);
  }

  /** True once `dispose()` was called. */
  get disposed(): boolean {
    return this.#disposed;
  }
}

function asWasmPacked(w: PackedWeights, name: string): WasmPackedWeights {
  if (w == null || typeof w !== 'object') throw new QbnnError('ERR_ARG', `${name} must be PackedWeights`);
  if (!owned.has(w)) {
    throw new QbnnError(
      'ERR_ARG',
      `${name} was packed by provider '${String(w.provider)}'; the '${WASM_PROVIDER}' provider needs weights from its own packWeights`,
    );
  }
  if ((w as WasmPackedWeights).disposed) throw new QbnnError('ERR_ARG', `${name} was disposed`);
  return w as WasmPackedWeights;
}

/** The packed weights as row-major s8 [n, k] (for tests and debugging). */
export function unpackWeights(w: PackedWeights): Int8Array {
  const p = asWasmPacked(w, 'unpackWeights: w');
  const { n, k } = p;
  const data = p.bytes();
  const panelBytes = Math.ceil(k / 4) * PANEL * 4;
  const out = new Int8Array(n * k);
  for (let c = 0; c < n; c++) {
    const base = Math.floor(c / PANEL) * panelBytes + (c % PANEL) * 4;
    for (let i = 0; i < k; i++) out[c * k + i] = data[base + (i >> 2) * PANEL * 4 + (i & 3)];
  }
  return out;
}

/** Packs row-major s8 weights in wasm memory (checked arguments). */
function packChecked(w: Int8Array | PackedInts, n: number, k: number, zp: Int32Array): WasmPackedWeights {
  const { mod, sc } = need();
  const bytes = packedBytes(n, k);
  const [pw, pp, prs] = sc.layout([n * k, bytes, 4 * n]);
  putInts(sc, pw, w, n * k, true);
  mod.exports.qbnn_pack(pw, n, k, pp, prs);
  return new WasmPackedWeights(sc.i8(pp, bytes).slice(), n, k, zp, sc.i32(prs, n).slice());
}

/**
 * Writes an integer tensor into module memory one value a byte; packed input (PackedInts) is
 * decoded straight into it (the caller keeps only the packed bytes).
 */
function putInts(
  sc: Scratch,
  at: number,
  t: Int8Array | Uint8Array | PackedInts,
  count: number,
  signed: boolean,
) {
  if (t instanceof Int8Array || t instanceof Uint8Array) sc.put(at, t);
  else unpackInts(t.bytes, count, t.bits, signed, signed ? sc.i8(at, count) : sc.u8(at, count));
}

function packWeights(
  w: Int8Array | PackedInts,
  n: number,
  k: number,
  zeroPoint: ChannelZeroPoints,
): WasmPackedWeights {
  need();
  const zp = checkPackWeightsArgs(w, n, k, zeroPoint, WASM_LIMITS);
  return packChecked(w, n, k, zp);
}

/** Packs of each group's rows of a single pack of all rows, made once per pack and group count. */
function slicesOf(whole: WasmPackedWeights, groups: number, og: number, kg: number): WasmPackedWeights[] {
  let byGroups = groupSlices.get(whole);
  if (byGroups === undefined) {
    byGroups = new Map();
    groupSlices.set(whole, byGroups);
  }
  let slices = byGroups.get(groups);
  if (slices === undefined) {
    const rows = unpackWeights(whole);
    slices = [];
    for (let g = 0; g < groups; g++) {
      slices.push(
        packChecked(
          rows.subarray(g * og * kg, (g + 1) * og * kg),
          og,
          kg,
          whole.zeroPoint.slice(g * og, (g + 1) * og),
        ),
      );
    }
    byGroups.set(groups, slices);
  }
  return slices;
}

// ---------------------------------------------------------------- output stage

/** The contract's float64 factors of a checked output stage (none for i32). */
function stageFactor(
  spec: GemmOutputSpec,
  output: QGemmArgs['output'],
  aScale: number,
  wScale: QGemmArgs['wScale'],
  n: number,
): Float64Array | undefined {
  if (spec.kind === 'u8') return requantMultipliers(aScale, wScale, (output as { scale: number }).scale, n);
  return spec.kind === 'f32' ? accumulatorScales(aScale, wScale, n) : undefined;
}

const elementBytes = (spec: GemmOutputSpec) => (spec.kind === 'u8' ? 1 : 4);

// ---------------------------------------------------------------- kernels

function qgemm(args: QGemmArgs): GemmOut {
  const { mod, sc } = need();
  const { w, m, n, k, aZeroPoint, bias, output, out } = checkQGemmArgs(args, asWasmPacked, WASM_LIMITS);
  const factor = stageFactor(output, args.output, args.aScale, args.wScale, n);
  if (m === 0) return out;
  const esize = elementBytes(output);
  const rows = Math.max(1, Math.min(m, Math.floor(CHUNK_BYTES / (k + n * esize))));
  const maxRows = mod.exports.qbnn_gemm_max_rows();
  const resident = w.residentIn(sc);
  const [copied, prs, pzw, pb, pf, pa, po, pwork] = sc.layout([
    resident === undefined ? w.byteLength : 0,
    4 * n,
    4 * n,
    bias === undefined ? 0 : 4 * n,
    factor === undefined ? 0 : 8 * n,
    rows * k,
    rows * n * esize,
    4 * (rows + PANEL * maxRows),
  ]);
  const pw = resident ?? copied;
  if (resident === undefined) sc.put(pw, w.bytes());
  sc.put(prs, w.rowSums);
  sc.put(pzw, w.zeroPoint);
  if (bias !== undefined) sc.put(pb, bias);
  if (factor !== undefined) sc.put(pf, factor);
  for (let r0 = 0; r0 < m; r0 += rows) {
    const mr = Math.min(rows, m - r0);
    sc.put(pa, args.a.subarray(r0 * k, (r0 + mr) * k));
    mod.exports.qbnn_gemm(
      pa,
      mr,
      k,
      aZeroPoint,
      pw,
      n,
      prs,
      pzw,
      bias === undefined ? 0 : pb,
      OUT_KIND[output.kind],
      factor === undefined ? 0 : pf,
      output.zeroPoint,
      output.lo,
      po,
      pwork,
    );
    sc.get(po, out, r0 * n, mr * n);
  }
  return out;
}

function qconv2d(args: QConv2dArgs): GemmOut {
  const { mod, sc } = need();
  const geo = checkQConv2dArgs(args, asWasmPacked, WASM_LIMITS);
  const { batch, c, h, w, o, cg, kh, kw, groups, og, kg, ho, wo, whole, bias, output, out } = geo;
  const packs = whole !== undefined && groups > 1 ? slicesOf(geo.packs[0], groups, og, kg) : geo.packs;
  const factor = stageFactor(output, args.output, args.xScale, args.wScale, o);
  const esize = elementBytes(output);
  const hw = ho * wo;
  const inPer = c * h * w;
  const outPer = o * hw;
  const step = Math.max(1, Math.min(batch, Math.floor(CHUNK_BYTES / (inPer + outPer * esize))));
  const maxRows = mod.exports.qbnn_gemm_max_rows();
  const sizes = [
    18 * 4,
    8 * groups,
    4 * o,
    bias === undefined ? 0 : 4 * o,
    factor === undefined ? 0 : 8 * o,
    step * inPer,
    step * outPer * esize,
    hw * kg,
    4 * (hw + PANEL * maxRows),
  ];
  for (const p of packs) sizes.push(p.residentIn(sc) === undefined ? p.byteLength : 0, 4 * p.n);
  const [pgeo, ptable, pzw, pb, pf, px, po, pcols, pwork, ...ppacks] = sc.layout(sizes);
  const table = sc.i32(ptable, 2 * groups);
  const zw = sc.i32(pzw, o);
  packs.forEach((p, g) => {
    const resident = p.residentIn(sc);
    if (resident === undefined) sc.put(ppacks[2 * g], p.bytes());
    sc.put(ppacks[2 * g + 1], p.rowSums);
    table[2 * g] = resident ?? ppacks[2 * g];
    table[2 * g + 1] = ppacks[2 * g + 1];
    zw.set(p.zeroPoint, g * (o / packs.length));
  });
  if (bias !== undefined) sc.put(pb, bias);
  if (factor !== undefined) sc.put(pf, factor);
  for (let b0 = 0; b0 < batch; b0 += step) {
    const nb = Math.min(step, batch - b0);
    sc.i32(pgeo, 18).set([
      nb,
      c,
      h,
      w,
      o,
      cg,
      kh,
      kw,
      groups,
      geo.strideH,
      geo.strideW,
      geo.padH,
      geo.padW,
      geo.dilationH,
      geo.dilationW,
      ho,
      wo,
      geo.xZeroPoint,
    ]);
    sc.put(px, args.x.subarray(b0 * inPer, (b0 + nb) * inPer));
    mod.exports.qbnn_conv2d(
      px,
      pgeo,
      ptable,
      pzw,
      bias === undefined ? 0 : pb,
      OUT_KIND[output.kind],
      factor === undefined ? 0 : pf,
      output.zeroPoint,
      output.lo,
      po,
      pcols,
      pwork,
    );
    sc.get(po, out, b0 * outPer, nb * outPer);
  }
  return out;
}

function qnormal(args: QNormalArgs): Int8Array {
  const { mod, sc } = need();
  checkQNormalArgs(args);
  const out = args.out;
  const chunk = Math.min(QNORMAL_CHUNK, out.length);
  const [po] = sc.layout([chunk]);
  for (let start = 0; start < out.length; start += QNORMAL_CHUNK) {
    const len = Math.min(QNORMAL_CHUNK, out.length - start);
    mod.exports.qbnn_qnormal(args.key[0], args.key[1], args.position + start / 4, po, len);
    sc.get(po, out, start, len);
  }
  return out;
}

function sampleGaussianPacked(args: GaussianSampleArgs): WasmPackedWeights {
  const { mod, sc } = need();
  const { n, k, qmin, qmax } = checkGaussianSampleArgs(args, WASM_LIMITS);
  // A destination pack is checked but not written: the new pack is born resident where it is
  // sampled and read in place by its GEMM, which beats overwriting a pack kept in JS memory.
  checkSampleInto(args.out, n, k, asWasmPacked);
  const size = n * k;
  const zw = Int32Array.from(args.weightZeroPoint);
  const pack = sc.reserve(
    packedBytes(n, k),
    (offset) => new WasmPackedWeights({ sc, offset }, n, k, zw, new Int32Array(n)),
  );
  const pp = pack.residentIn(sc)!;
  const [pmu, psig, pzp, pm, ptmp, prs] = sc.layout([size, size, 16 * n, 24 * n, size, 4 * n]);
  putInts(sc, pmu, args.mu, size, true);
  putInts(sc, psig, args.sigma, size, false);
  const zp = sc.i32(pzp, 4 * n);
  zp.set(args.muZeroPoint, 0);
  zp.set(args.sigmaZeroPoint, n);
  zp.set(args.noiseZeroPoint, 2 * n);
  zp.set(args.weightZeroPoint, 3 * n);
  const m = sc.f64(pm, 3 * n);
  m.set(args.m1, 0);
  m.set(args.m2, n);
  m.set(args.m3, 2 * n);
  mod.exports.qbnn_sample_gaussian(
    pmu,
    psig,
    pzp,
    pm,
    n,
    k,
    qmin,
    qmax,
    args.key[0],
    args.key[1],
    args.position,
    ptmp,
    pp,
    prs,
  );
  sc.get(prs, pack.rowSums);
  return pack;
}

// ---------------------------------------------------------------- test hooks

/** The Philox4x32-10 words of the stream (key, position), computed in wasm (for tests). */
export function wasmPhilox(key: readonly [number, number], position: number, out: Uint32Array): Uint32Array {
  // the wasm call coerces: a key of -1 or a position of -1 / NaN / 1.5 gave some other stream's words
  checkPhiloxKey('wasmPhilox', key, position);
  if (!(out instanceof Uint32Array)) throw new QbnnError('ERR_ARG', 'wasmPhilox: out must be a Uint32Array');
  const { mod, sc } = need();
  const [po] = sc.layout([4 * out.length]);
  mod.exports.qbnn_philox(key[0], key[1], position, po, out.length);
  out.set(new Uint32Array(sc.buffer, po, out.length));
  return out;
}

/** Maps uniform uint32 words to quantised normals in wasm (for tests). */
export function wasmQnormalFromWords(words: Uint32Array): Int8Array {
  const { mod, sc } = need();
  const [pw, po] = sc.layout([4 * words.length, words.length]);
  sc.put(pw, words);
  mod.exports.qbnn_qnormal_map(pw, po, words.length);
  return sc.i8(po, words.length).slice();
}

/**
 * The WebAssembly kernel provider: the @qbnn/core contract (kernels/types.ts) in SIMD128 or
 * relaxed-SIMD WebAssembly, bit-identical to the JS reference. Registered as 'wasm' on import.
 */
export const wasmKernels: KernelProvider = Object.freeze({
  name: WASM_PROVIDER,
  priority: WASM_PRIORITY,
  isAvailable: () => state.active !== undefined,
  packWeights,
  qgemm,
  qconv2d,
  qnormal,
  sampleGaussianPacked,
});
