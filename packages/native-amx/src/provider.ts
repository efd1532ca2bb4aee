import {
  accumulatorScales,
  type ChannelZeroPoints,
  type GaussianSampleArgs,
  type GemmOutput,
  type KernelProvider,
  MAX_GEMM_K,
  type PackedWeights,
  QbnnError,
  type QConv2dArgs,
  type QGemmArgs,
  QNORMAL_THRESHOLDS,
  type QNormalArgs,
  qRange,
  requantMultipliers,
} from '@qbnn/core';
import { addon, loadError, type NativeAddon, type RawPacked } from './binding.js';

/** Name of the native provider in @qbnn/core's kernel registry. */
export const NATIVE_PROVIDER = 'native';
/** Its priority: above the JS reference (0), so it is picked by default when it loaded. */
export const NATIVE_PRIORITY = 100;

type GemmOut = Uint8Array | Float32Array | Int32Array;

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

// ---------------------------------------------------------------- validation helpers

function checkInt(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new QbnnError('ERR_ARG', `${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  }
  return v;
}

function checkScale(name: string, v: unknown): number {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new QbnnError(
      typeof v === 'number' ? 'ERR_NAN' : 'ERR_ARG',
      `${name} must be a number, got ${String(v)}`,
    );
  }
  if (!Number.isFinite(v) || v <= 0)
    throw new QbnnError('ERR_ARG', `${name} must be a finite number > 0, got ${v}`);
  return v;
}

function checkLength(name: string, arr: { length: number }, n: number): void {
  if (arr.length !== n) throw new QbnnError('ERR_SHAPE', `${name} must have length ${n}, got ${arr.length}`);
}

function checkKey(name: string, key: readonly [number, number], position: number): void {
  if (!Array.isArray(key) || key.length !== 2)
    throw new QbnnError('ERR_ARG', `${name}: key must be a pair of uint32`);
  checkInt(`${name}: key[0]`, key[0], 0, 0xffffffff);
  checkInt(`${name}: key[1]`, key[1], 0, 0xffffffff);
  checkInt(`${name}: position`, position, 0, Number.MAX_SAFE_INTEGER);
}

function zeroPointsI32(name: string, v: ChannelZeroPoints, n: number, lo: number, hi: number): Int32Array {
  const out = new Int32Array(n);
  if (typeof v === 'number') {
    out.fill(checkInt(name, v, lo, hi));
    return out;
  }
  if (v == null || typeof (v as ArrayLike<number>).length !== 'number') {
    throw new QbnnError('ERR_ARG', `${name} must be a number or an array of numbers`);
  }
  const a = v as ArrayLike<number>;
  if (a.length === 1) {
    out.fill(checkInt(name, a[0], lo, hi));
    return out;
  }
  if (a.length !== n) {
    throw new QbnnError(
      'ERR_SHAPE',
      `${name} must be a number or have length 1 or ${n}, got length ${a.length}`,
    );
  }
  for (let i = 0; i < n; i++) out[i] = checkInt(`${name}[${i}]`, a[i], lo, hi);
  return out;
}

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

interface Stage {
  kind: number;
  factor: Float64Array | null;
  zo: number;
  relu: boolean;
}

/** Validates per-tensor or per-channel weight scales without allocating. */
function checkScales(wScale: QGemmArgs['wScale'], n: number): void {
  if (typeof wScale === 'number') {
    checkScale('wScale', wScale);
    return;
  }
  if (wScale == null || typeof (wScale as ArrayLike<number>).length !== 'number') {
    throw new QbnnError('ERR_ARG', 'wScale must be a number or an array of numbers');
  }
  const v = wScale as ArrayLike<number>;
  if (v.length !== 1 && v.length !== n) {
    throw new QbnnError(
      'ERR_SHAPE',
      `wScale must be a number or have length 1 or ${n}, got length ${v.length}`,
    );
  }
  for (let i = 0; i < v.length; i++) checkScale(`wScale[${i}]`, v[i]);
}

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

function outputStage(output: GemmOutput, aScale: number, wScale: QGemmArgs['wScale'], n: number): Stage {
  if (output == null || typeof output !== 'object') {
    throw new QbnnError(
      'ERR_ARG',
      "output must be { kind: 'u8', scale, zeroPoint, relu? }, { kind: 'f32' } or { kind: 'i32' }",
    );
  }
  switch (output.kind) {
    case 'u8': {
      checkScale('output.scale', output.scale);
      const zo = checkInt('output.zeroPoint', output.zeroPoint, 0, 255);
      if (output.relu !== undefined && typeof output.relu !== 'boolean') {
        throw new QbnnError('ERR_ARG', `output.relu must be a boolean, got ${String(output.relu)}`);
      }
      checkScales(wScale, n);
      return {
        kind: OUT_U8,
        factor: cachedFactor(OUT_U8, aScale, wScale, output.scale, n),
        zo,
        relu: output.relu === true,
      };
    }
    case 'f32':
      checkScales(wScale, n);
      return { kind: OUT_F32, factor: cachedFactor(OUT_F32, aScale, wScale, 0, n), zo: 0, relu: false };
    case 'i32':
      checkScales(wScale, n); // validated whatever the output kind
      return { kind: OUT_I32, factor: null, zo: 0, relu: false };
    default:
      throw new QbnnError(
        'ERR_ARG',
        `output.kind must be 'u8', 'f32' or 'i32', got ${String((output as { kind: unknown }).kind)}`,
      );
  }
}

function outputBuffer(kind: number, out: GemmOut | undefined, length: number): GemmOut {
  const Ctor = kind === OUT_U8 ? Uint8Array : kind === OUT_F32 ? Float32Array : Int32Array;
  if (out === undefined) return new Ctor(length);
  if (!(out instanceof Ctor)) {
    throw new QbnnError(
      'ERR_ARG',
      `out must be a ${Ctor.name} for output kind '${['u8', 'f32', 'i32'][kind]}'`,
    );
  }
  checkLength('out', out, length);
  return out;
}

function checkBias(bias: Int32Array | undefined, n: number): Int32Array | null {
  if (bias === undefined) return null;
  if (!(bias instanceof Int32Array)) throw new QbnnError('ERR_ARG', 'bias must be an Int32Array');
  checkLength('bias', bias, n);
  return bias;
}

function checkK(k: number): void {
  if (k > MAX_GEMM_K) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `K = ${k} exceeds MAX_GEMM_K = ${MAX_GEMM_K}: split the reduction`,
    );
  }
}

// ---------------------------------------------------------------- kernels

function packWeights(w: Int8Array, n: number, k: number, zeroPoint: ChannelZeroPoints): NativePackedWeights {
  const a = need();
  if (!(w instanceof Int8Array))
    throw new QbnnError('ERR_ARG', 'packWeights: w must be an Int8Array (s8 weights)');
  checkInt('packWeights: n', n, 1, 2 ** 24);
  checkInt('packWeights: k', k, 1, 2 ** 31 - 1);
  checkK(k);
  if (w.length !== n * k) {
    throw new QbnnError(
      'ERR_SHAPE',
      `packWeights: w has length ${w.length}, expected n * k = ${n} * ${k} = ${n * k}`,
    );
  }
  const zp = zeroPointsI32('packWeights: zeroPoint', zeroPoint, n, -128, 127);
  return new NativePackedWeights(a.pack(w, n, k, zp), n, k);
}

function qgemm(args: QGemmArgs): GemmOut {
  const a = need();
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'qgemm: args must be an object');
  const h = handleOf(args.w, 'qgemm: w');
  const { n, k } = args.w;
  const m = checkInt('qgemm: m', args.m, 0, 2 ** 30);
  if (!(args.a instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'qgemm: a must be a Uint8Array (u8 activations)');
  if (args.a.length !== m * k) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qgemm: a has length ${args.a.length}, expected m * k = ${m} * ${k} = ${m * k}`,
    );
  }
  checkScale('qgemm: aScale', args.aScale);
  const za = checkInt('qgemm: aZeroPoint', args.aZeroPoint, 0, 255);
  const bias = checkBias(args.bias, n);
  const st = outputStage(args.output, args.aScale, args.wScale, n);
  const out = outputBuffer(st.kind, args.out, m * n);
  if (m === 0) return out;
  a.qgemm(args.a, m, k, za, h, bias, st.kind, st.factor, st.zo, st.relu, out);
  return out;
}

function pair(
  name: string,
  v: readonly [number, number] | undefined,
  dflt: number,
  min: number,
): [number, number] {
  if (v === undefined) return [dflt, dflt];
  if (!Array.isArray(v) || v.length !== 2)
    throw new QbnnError('ERR_ARG', `qconv2d: ${name} must be a pair [h, w]`);
  return [
    checkInt(`qconv2d: ${name}[0]`, v[0], min, 2 ** 20),
    checkInt(`qconv2d: ${name}[1]`, v[1], min, 2 ** 20),
  ];
}

function dims(name: string, v: readonly number[]): [number, number, number, number] {
  if (!Array.isArray(v) || v.length !== 4)
    throw new QbnnError('ERR_SHAPE', `qconv2d: ${name} must have 4 dimensions`);
  return v.map((d, i) => checkInt(`qconv2d: ${name}[${i}]`, d, 1, 2 ** 30)) as [
    number,
    number,
    number,
    number,
  ];
}

/** One native pack per group: the given per-group packs, or slices of a single pack of all rows. */
function groupHandles(w: QConv2dArgs['w'], groups: number, o: number, kg: number): unknown[] {
  const og = o / groups;
  const list = Array.isArray(w) ? (w as readonly PackedWeights[]) : [w as PackedWeights];
  if (list.length === 1 && (groups === 1 || list[0].n === o)) {
    const p = list[0];
    const h = handleOf(p, 'qconv2d: w');
    if (p.n !== o || p.k !== kg) {
      throw new QbnnError(
        'ERR_SHAPE',
        `qconv2d: w is packed [${p.n}, ${p.k}], expected [${o}, ${kg}] from wShape`,
      );
    }
    if (groups === 1) return [h];
    // Slice the rows of each group into packs of their own, once per pack and group count.
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
  if (list.length !== groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: expected ${groups} weight packs (one per group) or one of ${o} rows, got ${list.length}`,
    );
  }
  return list.map((p, g) => {
    const h = handleOf(p, `qconv2d: w[${g}]`);
    if (p.n !== og || p.k !== kg) {
      throw new QbnnError(
        'ERR_SHAPE',
        `qconv2d: w[${g}] is packed [${p.n}, ${p.k}], expected [${og}, ${kg}]`,
      );
    }
    return h;
  });
}

function qconv2d(args: QConv2dArgs): GemmOut {
  const a = need();
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'qconv2d: args must be an object');
  const [batch, c, h, wd] = dims('xShape', args.xShape);
  const [o, cg, kh, kw] = dims('wShape', args.wShape);
  const groups = checkInt('qconv2d: groups', args.groups ?? 1, 1, 2 ** 30);
  if (c !== cg * groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: input has ${c} channels; wShape[1] * groups = ${cg} * ${groups} = ${cg * groups}`,
    );
  }
  if (o % groups !== 0)
    throw new QbnnError('ERR_SHAPE', `qconv2d: ${o} output channels are not divisible by groups ${groups}`);
  const [sh, sw] = pair('stride', args.stride, 1, 1);
  const [ph, pw] = pair('padding', args.padding, 0, 0);
  const [dh, dw] = pair('dilation', args.dilation, 1, 1);
  if (!(args.x instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'qconv2d: x must be a Uint8Array (u8 input)');
  const xLen = batch * c * h * wd;
  if (args.x.length !== xLen)
    throw new QbnnError('ERR_SHAPE', `qconv2d: x has length ${args.x.length}, xShape says ${xLen}`);
  checkScale('qconv2d: xScale', args.xScale);
  const za = checkInt('qconv2d: xZeroPoint', args.xZeroPoint, 0, 255);
  const ho = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const wo = Math.floor((wd + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (ho < 1 || wo < 1) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: output would be ${ho} x ${wo}; the dilated kernel exceeds the padded input`,
    );
  }
  const kg = cg * kh * kw;
  checkK(kg);
  const hs = groupHandles(args.w, groups, o, kg);
  const bias = checkBias(args.bias, o);
  const st = outputStage(args.output, args.xScale, args.wScale, o);
  const out = outputBuffer(st.kind, args.out, batch * o * ho * wo);
  a.qconv2d(
    args.x,
    Int32Array.of(batch, c, h, wd),
    za,
    hs,
    Int32Array.of(o, cg, kh, kw),
    Int32Array.of(sh, sw, ph, pw, dh, dw, groups),
    bias,
    st.kind,
    st.factor,
    st.zo,
    st.relu,
    out,
  );
  return out;
}

function qnormal(args: QNormalArgs): Int8Array {
  const a = need();
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'qnormal: args must be an object');
  checkKey('qnormal', args.key, args.position);
  if (!(args.out instanceof Int8Array)) throw new QbnnError('ERR_ARG', 'qnormal: out must be an Int8Array');
  a.qnormal(args.key[0], args.key[1], args.position, args.out);
  return args.out;
}

function zeroPointArray(name: string, z: Int32Array, n: number, lo: number, hi: number): void {
  if (!(z instanceof Int32Array))
    throw new QbnnError('ERR_ARG', `sampleGaussian: ${name} must be an Int32Array`);
  checkLength(`sampleGaussian: ${name}`, z, n);
  for (let i = 0; i < n; i++) checkInt(`sampleGaussian: ${name}[${i}]`, z[i], lo, hi);
}

function multiplierArray(name: string, m: Float64Array, n: number): void {
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

function sampleGaussianPacked(args: GaussianSampleArgs): NativePackedWeights {
  const a = need();
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'sampleGaussian: args must be an object');
  const n = checkInt('sampleGaussian: n', args.n, 1, 2 ** 24);
  const k = checkInt('sampleGaussian: k', args.k, 1, 2 ** 31 - 1);
  checkK(k);
  const { qmin, qmax } = qRange(args.bits, true);
  checkKey('sampleGaussian', args.key, args.position);
  if (!(args.mu instanceof Int8Array))
    throw new QbnnError('ERR_ARG', 'sampleGaussian: mu must be an Int8Array');
  if (!(args.sigma instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'sampleGaussian: sigma must be a Uint8Array');
  checkLength('sampleGaussian: mu', args.mu, n * k);
  checkLength('sampleGaussian: sigma', args.sigma, n * k);
  zeroPointArray('muZeroPoint', args.muZeroPoint, n, -128, 127);
  zeroPointArray('sigmaZeroPoint', args.sigmaZeroPoint, n, 0, 255);
  zeroPointArray('noiseZeroPoint', args.noiseZeroPoint, n, qmin, qmax);
  zeroPointArray('weightZeroPoint', args.weightZeroPoint, n, qmin, qmax);
  multiplierArray('m1', args.m1, n);
  multiplierArray('m2', args.m2, n);
  multiplierArray('m3', args.m3, n);
  const raw = a.sampleGaussian(
    args.mu,
    args.muZeroPoint,
    args.sigma,
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
  );
  return new NativePackedWeights(raw, n, k);
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
});
