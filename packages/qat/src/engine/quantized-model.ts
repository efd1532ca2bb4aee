import {
  bernoulliFill,
  gaussianSampleMultipliers,
  type KernelProvider,
  type PackedWeights,
  QbnnError,
  QNORMAL_SCALE,
  qnormalFill,
  Rng,
  roundHalfEven,
} from '@qbnn/core';
import type { QParams } from '../spec.js';
import { checkQuantizedModel } from './check-model.js';
import { conv2dF64, linearF64 } from './float-ops.js';
import { getKernelProvider } from './provider.js';
import type { ActQ, EngineMode, FixedWeights, GaussianWeights, QLayerSpec, QOp } from './types.js';
import { globalAvgPoolU8, poolF64, poolU8 } from './u8-ops.js';
import { checkForward } from './validate-input.js';

/** Options of {@link QuantizedModel.forward}. */
export interface QuantizedForwardOptions {
  /** Monte Carlo samples L (default 1). */
  samples?: number;
  /** Seed of every random draw of this call (default: a counter advanced per call). */
  seed?: number;
  /** `weights` (sample a weight tensor per MC sample, default) or `local` (local reparameterisation of Gaussian layers). */
  mode?: EngineMode;
  /** Kernel provider name (default: the registry's highest priority). */
  provider?: string;
}

/** A float input batch: a flat row-major array, or anything with `dataSync()` (a tfjs tensor). */
export type EngineInput = ArrayLike<number> | { dataSync(): ArrayLike<number> };

/** Logits of L samples for a batch of B: `logits[(l * B + b) * classes + c]`. */
export interface QuantizedOutput {
  logits: Float32Array;
  samples: number;
  batch: number;
  classes: number;
}

interface IntState {
  data: Uint8Array;
  /** Same activations for every MC sample (nothing stochastic ran yet). */
  shared: boolean;
  /** Per-sample shape [B, ...]. */
  shape: number[];
}

interface FloatState {
  data: Float64Array;
  shared: boolean;
  shape: number[];
}

interface IntCtx {
  x: ArrayLike<number>;
  B: number;
  L: number;
  mode: EngineMode;
  provider: KernelProvider;
  root: Rng;
  /** Index of the next layer (its random streams), in execution order. */
  li: number;
  states?: IntState[];
  out?: QuantizedOutput;
}

interface FloatCtx {
  x: ArrayLike<number>;
  B: number;
  L: number;
  mode: EngineMode;
  root: Rng;
  li: number;
  states?: FloatState[];
  out?: QuantizedOutput;
}

type ResidualOp = Extract<QOp, { op: 'residual' }>;

/** Integer residual add: both branches dequantised exactly, summed and requantised (ReLU as the clamp). */
function addU8(a: IntState, b: IntState, op: ResidualOp, L: number): IntState {
  const per = a.shared ? a.data.length : a.data.length / L;
  const shared = a.shared && b.shared;
  const count = shared ? 1 : L;
  const out = new Uint8Array(count * per);
  const { bodyQ: qa, shortcutQ: qb, q } = op;
  const ma = qa.scale / q.scale;
  const mb = qb.scale / q.scale;
  const lo = op.relu ? q.zeroPoint : 0;
  const hi = qmaxOf(q);
  for (let l = 0; l < count; l++) {
    const oa = a.shared ? 0 : l * per;
    const ob = b.shared ? 0 : l * per;
    for (let i = 0; i < per; i++) {
      const v = (a.data[oa + i] - qa.zeroPoint) * ma + (b.data[ob + i] - qb.zeroPoint) * mb;
      out[l * per + i] = Math.min(hi, Math.max(lo, roundHalfEven(v) + q.zeroPoint));
    }
  }
  return { data: out, shared, shape: a.shape };
}

function addF64(a: FloatState, b: FloatState, op: ResidualOp, L: number): FloatState {
  const per = a.shared ? a.data.length : a.data.length / L;
  const shared = a.shared && b.shared;
  const count = shared ? 1 : L;
  const out = new Float64Array(count * per);
  const q = op.q;
  for (let l = 0; l < count; l++) {
    const oa = a.shared ? 0 : l * per;
    const ob = b.shared ? 0 : l * per;
    for (let i = 0; i < per; i++) {
      let v = a.data[oa + i] + b.data[ob + i];
      if (op.relu && v < 0) v = 0;
      out[l * per + i] = fq(v, q.scale, q.zeroPoint, 0, qmaxOf(q));
    }
  }
  return { data: out, shared, shape: a.shape };
}

const INT32_MAX = 2147483647;

function prod(s: readonly number[]): number {
  let p = 1;
  for (const d of s) p *= d;
  return p;
}

function qmaxOf(a: ActQ): number {
  return 2 ** a.bits - 1;
}

/** Per-channel array of length n from per-tensor or per-channel params. */
function expandScale(p: QParams, n: number): Float64Array {
  if (p.scale.length === n) return p.scale;
  return new Float64Array(n).fill(p.scale[0]);
}
function expandZp(p: QParams, n: number): Int32Array {
  if (p.zeroPoint.length === n) return p.zeroPoint;
  return new Int32Array(n).fill(p.zeroPoint[0]);
}

function signedRange(p: QParams): { qmin: number; qmax: number } {
  return p.signed
    ? { qmin: -(2 ** (p.bits - 1)), qmax: 2 ** (p.bits - 1) - 1 }
    : { qmin: 0, qmax: 2 ** p.bits - 1 };
}

function fq(x: number, s: number, z: number, qmin: number, qmax: number): number {
  const q = Math.min(qmax, Math.max(qmin, roundHalfEven(x / s) + z));
  return s * (q - z);
}

/** Int32 bias at scale aScale * wScale[n] (round half to even, saturated). */
export function quantizeBias(b: ArrayLike<number>, aScale: number, wScale: Float64Array): Int32Array {
  const out = new Int32Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const v = roundHalfEven(b[i] / (aScale * wScale[i]));
    out[i] = Math.max(-INT32_MAX, Math.min(INT32_MAX, v));
  }
  return out;
}

/** The streams of one layer for one call: weight noise, bias noise, dropout masks, radial radii, LRT noise. */
interface LayerStreams {
  weight: readonly [number, number];
  bias: readonly [number, number];
  mask: readonly [number, number];
  radius: Rng;
  local: readonly [number, number];
}

function layerStreams(root: Rng, index: number): LayerStreams {
  const r = root.fork(index);
  return {
    weight: r.fork(0).key,
    bias: r.fork(1).key,
    mask: r.fork(2).key,
    radius: r.fork(3),
    local: r.fork(4).key,
  };
}

/** Noise of a Bayesian bias for sample l (float): gaussian eps * S, radial eps / ||eps|| * r. */
function biasNoise(w: GaussianWeights, st: LayerStreams, l: number, n: number): Float64Array {
  const eps = qnormalFill(st.bias, l * Math.ceil(n / 4), new Int8Array(n));
  const out = new Float64Array(n);
  if (w.kind === 'radial') {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += eps[i] * eps[i];
    const r = radialRadius(st, l, 1);
    const c = ss > 0 ? r / Math.sqrt(ss) : 0;
    for (let i = 0; i < n; i++) out[i] = eps[i] * c;
  } else {
    for (let i = 0; i < n; i++) out[i] = eps[i] * QNORMAL_SCALE;
  }
  return out;
}

/**
 * The radial radius |r|, r ~ N(0, 1), of sample l, tensor `which` (0 weight, 1 bias). The sign
 * of r is dropped: eps / ||eps|| is uniform on the sphere and symmetric, so u |r| and u r have
 * the same distribution, and the fused sampler needs a positive multiplier.
 */
function radialRadius(st: LayerStreams, l: number, which: number): number {
  const rng = Rng.fromKey(st.radius.key[0], st.radius.key[1], 2 * l + which);
  return Math.max(Math.abs(rng.normal(1)[0]), 1e-12);
}

/** Sampled float bias of a Bayesian layer. */
function sampledBias(w: GaussianWeights, st: LayerStreams, l: number, n: number): Float64Array | undefined {
  if (!w.bias) return undefined;
  const e = biasNoise(w, st, l, n);
  const b = new Float64Array(n);
  for (let i = 0; i < n; i++) b[i] = w.bias.mu[i] + w.bias.sigma[i] * e[i];
  return b;
}

/** The radial direction factor r / ||eps|| (eps integers) of sample l of a weight tensor. */
function radialFactor(eps: Int8Array, st: LayerStreams, l: number): number {
  let ss = 0;
  for (let i = 0; i < eps.length; i++) ss += eps[i] * eps[i];
  const r = radialRadius(st, l, 0);
  // eps_real = S eps; xi = eps_real r / ||eps_real|| = eps (r / sqrt(ss)); relative to eps_real: / S
  return ss > 0 ? r / (Math.sqrt(ss) * QNORMAL_SCALE) : 1e-12;
}

interface GaussCache {
  m1: Float64Array;
  m2: Float64Array;
  m3: Float64Array;
  muZ: Int32Array;
  sigZ: Int32Array;
  noiseZ: Int32Array;
  wZ: Int32Array;
  wScale: Float64Array;
}

/** Input-independent parts of a layer's local reparameterisation (see {@link localParams}). */
interface LocalCache {
  x2Scale: number;
  x2Div: number;
  s2: Int8Array;
  s2Scale: Float64Array;
  muScale: Float64Array;
  muZ: Int32Array;
  bMu?: Int32Array;
  bVar?: Int32Array;
  /** Per output channel: S_x S_mu[c] and S_x2 S_s2[c]. */
  meanMult: Float64Array;
  varMult: Float64Array;
  /** u8 input value -> its square on the x^2 grid: round((q - Z)^2 / x2Div). */
  square: Uint8Array;
}

/**
 * A quantised (Bayesian) network that computes in integers (DESIGN.md sections 2 and 3).
 *
 * Stored: integer weights (mu_q and sigma_q of Gaussian and Radial layers, the members of
 * ensembles, fixed weights), float biases, and the quantisation parameters of every tensor.
 * Per MC sample, Gaussian layers draw eps_q from the exact quantised normal (S = 3/127, Z = 0)
 * and form n = Q(eps sigma), w = Q(mu + n) through the kernel provider's fused sampler; every
 * linear and convolution runs through the kernel registry of @qbnn/core (the JS reference, or
 * a native provider once registered). Activations stay u8 between layers; the last layer
 * returns float logits (the f32 output of its GEMM).
 *
 * {@link QuantizedModel.simulate} is the float twin: the same model computed in float64 with
 * fake quantisation at every point, the same random draws, brute-force linear algebra. The
 * two agree within one quantisation step per layer.
 */
export class QuantizedModel {
  readonly ops: QOp[];
  /** Per-example input shape, e.g. [1, 28, 28]. */
  readonly inputShape: number[];
  private calls = 0;
  /** Largest per-example activation (elements): bounds a forward call's memory. */
  private readonly maxActivation: number;
  private readonly packCache = new WeakMap<object, Map<string, PackedWeights>>();
  private readonly gaussCache = new WeakMap<GaussianWeights, GaussCache>();
  private readonly localCache = new WeakMap<QLayerSpec, LocalCache>();
  private readonly dropoutCache = new WeakMap<QLayerSpec, Uint8Array>();

  constructor(ops: QOp[], inputShape: readonly number[]) {
    this.maxActivation = checkQuantizedModel(ops, inputShape).maxActivation;
    if (ops.length === 0 || ops[0].op !== 'quantize') {
      throw new QbnnError('ERR_ARG', 'QuantizedModel: the first op must quantize the input');
    }
    const layers = ops.filter((o) => o.op === 'layer' || o.op === 'residual');
    if (layers.length === 0) throw new QbnnError('ERR_ARG', 'QuantizedModel: no linear or conv layer');
    const last = ops[ops.length - 1];
    if (last.op !== 'layer' || last.layer.output !== null) {
      throw new QbnnError('ERR_ARG', 'QuantizedModel: the last op must be a layer with float output');
    }
    this.ops = ops;
    this.inputShape = [...inputShape];
  }

  /** The layers, in order. */
  get layers(): QLayerSpec[] {
    const walk = (ops: QOp[]): QLayerSpec[] =>
      ops.flatMap((o) =>
        o.op === 'layer' ? [o.layer] : o.op === 'residual' ? [...walk(o.body), ...walk(o.shortcut)] : [],
      );
    return walk(this.ops);
  }

  private nextSeed(opts: QuantizedForwardOptions): number {
    return opts.seed ?? 0x51ab0000 + this.calls++;
  }

  // ---------------------------------------------------------------- integer engine

  /**
   * Runs L Monte Carlo samples in integer arithmetic. `x` is a float batch [B, ...inputShape],
   * row-major. Returns the float logits of every sample.
   */
  forward(x: EngineInput, opts: QuantizedForwardOptions = {}): QuantizedOutput {
    const trace = this.run(x, opts, false);
    return trace.output;
  }

  /** The integer activations after every op (for tests and debugging) and the output. */
  trace(x: EngineInput, opts: QuantizedForwardOptions = {}): { states: IntState[]; output: QuantizedOutput } {
    return this.run(x, opts, true);
  }

  /** Mean predictive probabilities over L samples, [B, classes] (softmax of each sample's logits). */
  predictProba(x: EngineInput, opts: QuantizedForwardOptions = {}): Float32Array {
    return meanSoftmax(this.forward(x, opts));
  }

  private run(
    input: EngineInput,
    opts: QuantizedForwardOptions,
    keep: boolean,
  ): { states: IntState[]; output: QuantizedOutput } {
    const c = checkForward(input, opts, prod(this.inputShape), this.inputShape, this.maxActivation);
    const ctx: IntCtx = {
      x: c.values,
      B: c.batch,
      L: c.samples,
      mode: c.mode,
      provider: getKernelProvider(c.provider),
      root: new Rng(this.nextSeed(opts)),
      li: 0,
      states: keep ? [] : undefined,
    };
    this.runOps(this.ops, undefined, ctx);
    return { states: ctx.states ?? [], output: ctx.out! };
  }

  private runOps(ops: QOp[], st: IntState | undefined, ctx: IntCtx): IntState | undefined {
    const { x, B, L } = ctx;
    const top = ops === this.ops;
    for (const op of ops) {
      switch (op.op) {
        case 'quantize': {
          const q = op.q;
          const d = new Uint8Array(x.length);
          const qm = qmaxOf(q);
          for (let i = 0; i < x.length; i++) {
            const v = x[i];
            if (Number.isNaN(v)) throw new QbnnError('ERR_NAN', `input[${i}] is NaN`);
            d[i] = Math.min(qm, Math.max(0, roundHalfEven(v / q.scale) + q.zeroPoint));
          }
          st = { data: d, shared: true, shape: [B, ...this.inputShape] };
          break;
        }
        case 'layer': {
          const r = this.runLayerInt(
            op.layer,
            st!,
            L,
            ctx.provider,
            layerStreams(ctx.root, ctx.li++),
            ctx.mode,
          );
          if (r.kind === 'float') {
            ctx.out = r.output;
          } else st = r.state;
          break;
        }
        case 'residual': {
          const input = st!;
          const a = this.runOps(op.body, input, ctx)!;
          const b = op.shortcut.length > 0 ? this.runOps(op.shortcut, input, ctx)! : input;
          st = addU8(a, b, op, L);
          break;
        }
        case 'relu': {
          const z = op.q.zeroPoint;
          const d = st!.data.slice();
          for (let i = 0; i < d.length; i++) if (d[i] < z) d[i] = z;
          st = { ...st!, data: d };
          break;
        }
        case 'maxpool2d':
        case 'avgpool2d': {
          const s = st!;
          const count = s.shared ? 1 : L;
          const [b, c, h, w] = s.shape;
          const r = poolU8(
            s.data,
            [count * b, c, h, w],
            op.op === 'maxpool2d' ? 'max' : 'avg',
            op.kernel,
            op.stride,
            op.padding,
            op.q.zeroPoint,
          );
          st = { data: r.out, shared: s.shared, shape: [b, ...r.shape.slice(1)] };
          break;
        }
        case 'globalavgpool2d': {
          const s = st!;
          const count = s.shared ? 1 : L;
          const [b, c, h, w] = s.shape;
          st = {
            data: globalAvgPoolU8(s.data, [count * b, c, h, w], op.q.zeroPoint),
            shared: s.shared,
            shape: [b, c],
          };
          break;
        }
        case 'flatten': {
          const s = st!;
          st = { ...s, shape: [s.shape[0], prod(s.shape.slice(1))] };
          break;
        }
      }
      if (top && ctx.states && st && !ctx.out) ctx.states.push(st);
    }
    return st;
  }

  private packed(key: object, provider: KernelProvider, make: () => PackedWeights): PackedWeights {
    let m = this.packCache.get(key);
    if (!m) {
      m = new Map();
      this.packCache.set(key, m);
    }
    let p = m.get(provider.name);
    if (!p) {
      p = make();
      m.set(provider.name, p);
    }
    return p;
  }

  private gauss(w: GaussianWeights, n: number): GaussCache {
    let c = this.gaussCache.get(w);
    if (!c) {
      const { m1, m2, m3 } = gaussianSampleMultipliers({
        muScale: expandScale(w.muQ, n),
        sigmaScale: expandScale(w.sigmaQ, n),
        noiseScale: expandScale(w.noiseQ, n),
        weightScale: expandScale(w.weightQ, n),
        n,
      });
      c = {
        m1,
        m2,
        m3,
        muZ: expandZp(w.muQ, n),
        sigZ: expandZp(w.sigmaQ, n),
        noiseZ: expandZp(w.noiseQ, n),
        wZ: expandZp(w.weightQ, n),
        wScale: expandScale(w.weightQ, n),
      };
      this.gaussCache.set(w, c);
    }
    return c;
  }

  /** Packed weights, scales and int32 bias of sample l. */
  private weightsForSample(
    layer: QLayerSpec,
    l: number,
    provider: KernelProvider,
    streams: LayerStreams,
    aScale: number,
  ): { packed: PackedWeights; wScale: Float64Array; bias?: Int32Array; owned: boolean } {
    const { n, k } = layer;
    const w = layer.weights;
    const fixed = (fw: FixedWeights) => {
      const packed = this.packed(fw, provider, () => provider.packWeights(fw.w, n, k, expandZp(fw.wq, n)));
      const wScale = expandScale(fw.wq, n);
      return {
        packed,
        wScale,
        bias: fw.bias ? quantizeBias(fw.bias, aScale, wScale) : undefined,
        owned: false,
      };
    };
    if (w.kind === 'fixed') return fixed(w);
    if (w.kind === 'ensemble') return fixed(w.members[l % w.members.length]);
    const c = this.gauss(w, n);
    const position = l * Math.ceil((n * k) / 4);
    let m1 = c.m1;
    if (w.kind === 'radial') {
      const eps = provider.qnormal({ key: streams.weight, position, out: new Int8Array(n * k) });
      const f = radialFactor(eps, streams, l);
      m1 = c.m1.map((v) => v * f);
    }
    const packed = provider.sampleGaussianPacked({
      mu: w.mu,
      muZeroPoint: c.muZ,
      sigma: w.sigma,
      sigmaZeroPoint: c.sigZ,
      noiseZeroPoint: c.noiseZ,
      weightZeroPoint: c.wZ,
      m1,
      m2: c.m2,
      m3: c.m3,
      n,
      k,
      bits: w.weightQ.bits,
      key: streams.weight,
      position,
    });
    const b = sampledBias(w, streams, l, n);
    return {
      packed,
      wScale: c.wScale,
      bias: b ? quantizeBias(b, aScale, c.wScale) : undefined,
      owned: true,
    };
  }

  private runKernel(
    layer: QLayerSpec,
    provider: KernelProvider,
    a: Uint8Array,
    aScale: number,
    aZero: number,
    rows: number,
    shape: number[],
    packed: PackedWeights,
    wScale: Float64Array,
    bias: Int32Array | undefined,
    output:
      | { kind: 'u8'; scale: number; zeroPoint: number; relu?: boolean }
      | { kind: 'f32' }
      | { kind: 'i32' },
  ): { data: Uint8Array | Float32Array | Int32Array; shape: number[] } {
    if (layer.op === 'linear') {
      const data = provider.qgemm({ a, m: rows, aScale, aZeroPoint: aZero, w: packed, wScale, bias, output });
      return { data, shape: [shape[0], layer.n] };
    }
    const [, c, h, w] = shape;
    const xShape: [number, number, number, number] = [rows, c, h, w];
    const data = provider.qconv2d({
      x: a,
      xShape,
      xScale: aScale,
      xZeroPoint: aZero,
      w: packed,
      wShape: layer.wShape!,
      wScale,
      bias,
      stride: layer.stride,
      padding: layer.padding,
      dilation: layer.dilation,
      groups: layer.groups ?? 1,
      output,
    });
    const [, , kh, kw] = layer.wShape!;
    const [sh, sw] = layer.stride ?? [1, 1];
    const [ph, pw] = layer.padding ?? [0, 0];
    const [dh, dw] = layer.dilation ?? [1, 1];
    const Ho = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
    const Wo = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
    return { data, shape: [shape[0], layer.n, Ho, Wo] };
  }

  private runLayerInt(
    layer: QLayerSpec,
    s: IntState,
    L: number,
    provider: KernelProvider,
    streams: LayerStreams,
    mode: EngineMode,
  ): { kind: 'int'; state: IntState } | { kind: 'float'; output: QuantizedOutput } {
    const B = s.shape[0];
    const inPer = prod(s.shape);
    const isLast = layer.output === null;
    const outQ = layer.output;
    const output = isLast
      ? ({ kind: 'f32' } as const)
      : ({ kind: 'u8', scale: outQ!.scale, zeroPoint: outQ!.zeroPoint, relu: layer.relu } as const);
    const clampBits = (d: Uint8Array) => {
      if (!outQ || outQ.bits === 8) return;
      const qm = qmaxOf(outQ);
      for (let i = 0; i < d.length; i++) if (d[i] > qm) d[i] = qm;
    };
    const stochastic = layer.weights.kind !== 'fixed' || layer.dropout !== undefined;
    const local = mode === 'local' && (layer.weights.kind === 'gaussian' || layer.weights.kind === 'radial');
    if (local && layer.weights.kind === 'radial') {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `layer '${layer.path}': radial weights have no local reparameterisation`,
      );
    }
    if (layer.weights.kind === 'fixed' && layer.dropout) {
      // MC Dropout: one weight for every sample, so the L masked inputs run as one GEMM of L*B rows
      const d = layer.dropout;
      const masked = new Uint8Array(L * inPer);
      for (let l = 0; l < L; l++) {
        const a = s.shared ? s.data : s.data.subarray(l * inPer, (l + 1) * inPer);
        this.dropout(layer, a, streams.mask, l, masked.subarray(l * inPer, (l + 1) * inPer));
      }
      const { packed, wScale, bias } = this.weightsForSample(layer, 0, provider, streams, d.masked.scale);
      const r = this.runKernel(
        layer,
        provider,
        masked,
        d.masked.scale,
        d.masked.zeroPoint,
        L * B,
        s.shape,
        packed,
        wScale,
        bias,
        output,
      );
      if (isLast)
        return {
          kind: 'float',
          output: { logits: r.data as Float32Array, samples: L, batch: B, classes: layer.n },
        };
      clampBits(r.data as Uint8Array);
      return { kind: 'int', state: { data: r.data as Uint8Array, shared: false, shape: r.shape } };
    }
    if (!stochastic) {
      const count = s.shared ? 1 : L;
      const { packed, wScale, bias } = this.weightsForSample(layer, 0, provider, streams, layer.input.scale);
      const r = this.runKernel(
        layer,
        provider,
        s.data,
        layer.input.scale,
        layer.input.zeroPoint,
        count * B,
        s.shape,
        packed,
        wScale,
        bias,
        output,
      );
      if (isLast)
        return { kind: 'float', output: replicate(r.data as Float32Array, s.shared, L, B, layer.n) };
      clampBits(r.data as Uint8Array);
      return { kind: 'int', state: { data: r.data as Uint8Array, shared: s.shared, shape: r.shape } };
    }
    if (local) {
      // every sample shares the mean and variance weights: one GEMM pair over the stacked L*B
      // rows (or over B rows once, when the input is still the same for every sample)
      let a: Uint8Array = s.data;
      let count = s.shared ? 1 : L;
      if (layer.dropout) {
        const m = new Uint8Array(L * inPer);
        for (let l = 0; l < L; l++) {
          const src = s.shared ? s.data : s.data.subarray(l * inPer, (l + 1) * inPer);
          this.dropout(layer, src, streams.mask, l, m.subarray(l * inPer, (l + 1) * inPer));
        }
        a = m;
        count = L;
      }
      const r = this.runLocal(layer, provider, a, B, count, L, s.shape, streams, output);
      if (isLast) {
        return {
          kind: 'float',
          output: { logits: r.data as Float32Array, samples: L, batch: B, classes: layer.n },
        };
      }
      clampBits(r.data as Uint8Array);
      return { kind: 'int', state: { data: r.data as Uint8Array, shared: false, shape: r.shape } };
    }
    let outData: Uint8Array | Float32Array | undefined;
    let outShape: number[] = [];
    for (let l = 0; l < L; l++) {
      let a = s.shared ? s.data : s.data.subarray(l * inPer, (l + 1) * inPer);
      let aScale = layer.input.scale;
      let aZero = layer.input.zeroPoint;
      if (layer.dropout) {
        a = this.dropout(layer, a, streams.mask, l);
        aScale = layer.dropout.masked.scale;
        aZero = layer.dropout.masked.zeroPoint;
      }
      const { packed, wScale, bias, owned } = this.weightsForSample(layer, l, provider, streams, aScale);
      let r: { data: Uint8Array | Float32Array | Int32Array; shape: number[] };
      try {
        r = this.runKernel(layer, provider, a, aScale, aZero, B, s.shape, packed, wScale, bias, output);
      } finally {
        // a sampled weight is used by this one GEMM: free its (native) memory now, not at GC
        if (owned) packed.dispose?.();
      }
      if (!outData) {
        outData = isLast ? new Float32Array(L * r.data.length) : new Uint8Array(L * r.data.length);
        outShape = r.shape;
      }
      outData.set(r.data as ArrayLike<number>, l * r.data.length);
    }
    if (isLast) {
      return {
        kind: 'float',
        output: { logits: outData as Float32Array, samples: L, batch: B, classes: layer.n },
      };
    }
    clampBits(outData as Uint8Array);
    return { kind: 'int', state: { data: outData as Uint8Array, shared: false, shape: outShape } };
  }

  /** What local reparameterisation of a layer needs beyond its input (computed once per layer). */
  private localOf(layer: QLayerSpec): LocalCache {
    let c = this.localCache.get(layer);
    if (!c) {
      const w = layer.weights as GaussianWeights;
      const n = layer.n;
      const lp = localParams(layer, w);
      const muScale = expandScale(w.muQ, n);
      const meanMult = new Float64Array(n);
      const varMult = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        meanMult[i] = layer.input.scale * muScale[i];
        varMult[i] = lp.x2Scale * lp.s2Scale[i];
      }
      const z = layer.input.zeroPoint;
      const square = new Uint8Array(256);
      for (let q = 0; q < 256; q++) {
        const d = q - z;
        square[q] = Math.min(255, roundHalfEven((d * d) / lp.x2Div));
      }
      c = {
        ...lp,
        muScale,
        muZ: expandZp(w.muQ, n),
        bMu: w.bias ? quantizeBias(w.bias.mu, layer.input.scale, muScale) : undefined,
        bVar: w.bias
          ? quantizeBias(
              Array.from(w.bias.sigma, (v) => v * v),
              lp.x2Scale,
              lp.s2Scale,
            )
          : undefined,
        meanMult,
        varMult,
        square,
      };
      this.localCache.set(layer, c);
    }
    return c;
  }

  /** MC Dropout of sample l on u8 activations, through the layer's 256-entry requantisation table. */
  private dropout(
    layer: QLayerSpec,
    a: Uint8Array,
    key: readonly [number, number],
    l: number,
    out = new Uint8Array(a.length),
  ): Uint8Array {
    const d = layer.dropout!;
    let lut = this.dropoutCache.get(layer);
    if (!lut) {
      lut = dropoutTable(layer.input, d);
      this.dropoutCache.set(layer, lut);
    }
    return dropoutU8(a, lut, d, key, l, out);
  }

  /**
   * Local reparameterisation in integers: acc_mu = GEMM(x_q, mu_q), acc_var = GEMM(x2_q, s2_q)
   * with x^2 and sigma^2 quantised to 8 bits (see {@link localParams}), then
   * y = S_x S_mu acc_mu + sqrt(S_x2 S_s2 acc_var) eps (eps the quantised normal, one per output),
   * ReLU, and requantisation to the output params (float logits for the last layer).
   *
   * `a` holds `count` stacked inputs of B rows each (count = L, or 1 when every sample has the
   * same input): both GEMMs run once over count * B rows, and the L samples differ only by
   * their eps (sample l's from position l * ceil(outputs / 4) of the layer's local stream).
   */
  private runLocal(
    layer: QLayerSpec,
    provider: KernelProvider,
    a: Uint8Array,
    B: number,
    count: number,
    L: number,
    shape: number[],
    streams: LayerStreams,
    output: { kind: 'u8'; scale: number; zeroPoint: number; relu?: boolean } | { kind: 'f32' },
  ): { data: Uint8Array | Float32Array; shape: number[] } {
    const w = layer.weights as GaussianWeights;
    const lc = this.localOf(layer);
    const n = layer.n;
    const muPacked = this.packed(w.mu, provider, () => provider.packWeights(w.mu, n, layer.k, lc.muZ));
    const s2Packed = this.packed(w.sigma, provider, () => provider.packWeights(lc.s2, n, layer.k, 0));
    const x2 = new Uint8Array(a.length);
    const sq = lc.square;
    for (let i = 0; i < a.length; i++) x2[i] = sq[a[i]];
    const rows = count * B;
    const accMu = this.runKernel(
      layer,
      provider,
      a,
      layer.input.scale,
      layer.input.zeroPoint,
      rows,
      shape,
      muPacked,
      lc.muScale,
      lc.bMu,
      { kind: 'i32' },
    );
    const accVar = this.runKernel(
      layer,
      provider,
      x2,
      lc.x2Scale,
      0,
      rows,
      shape,
      s2Packed,
      lc.s2Scale,
      lc.bVar,
      {
        kind: 'i32',
      },
    );
    const mu = accMu.data as Int32Array;
    const va = accVar.data as Int32Array;
    const per = mu.length / count;
    const inner = per / (B * n);
    const eps = new Int8Array(per);
    const mean = new Float64Array(per);
    const sd = new Float64Array(per);
    const res = output.kind === 'f32' ? new Float32Array(L * per) : new Uint8Array(L * per);
    for (let l = 0; l < L; l++) {
      // with one shared input (count 1) the mean and standard deviation are those of every sample
      if (l < count) localMoments(mu, va, l * per, B, n, inner, lc.meanMult, lc.varMult, mean, sd);
      provider.qnormal({ key: streams.local, position: l * Math.ceil(per / 4), out: eps });
      if (output.kind === 'f32') localF32(mean, sd, eps, res as Float32Array, l * per);
      else {
        localU8(
          mean,
          sd,
          eps,
          res as Uint8Array,
          l * per,
          output.scale,
          output.zeroPoint,
          layer.relu,
          qmaxOf(layer.output!),
        );
      }
    }
    return { data: res, shape: accMu.shape };
  }

  // ---------------------------------------------------------------- float twin

  /**
   * The simulated twin: the same network in float64 with fake quantisation at every point
   * the integer engine quantises, the same random draws (seed for seed), and brute-force
   * float64 linear algebra. Predictions agree with {@link forward} within one quantisation step
   * per layer.
   */
  simulate(x: EngineInput, opts: QuantizedForwardOptions = {}): QuantizedOutput {
    return this.simulateRun(x, opts, false).output;
  }

  /** The twin's float activations after every op (real values), and the output. */
  simulateTrace(
    x: EngineInput,
    opts: QuantizedForwardOptions = {},
  ): { states: { data: Float64Array; shared: boolean; shape: number[] }[]; output: QuantizedOutput } {
    return this.simulateRun(x, opts, true);
  }

  private simulateRun(
    input: EngineInput,
    opts: QuantizedForwardOptions,
    keep: boolean,
  ): { states: FloatState[]; output: QuantizedOutput } {
    const c = checkForward(input, opts, prod(this.inputShape), this.inputShape, this.maxActivation);
    const ctx: FloatCtx = {
      x: c.values,
      B: c.batch,
      L: c.samples,
      mode: c.mode,
      root: new Rng(this.nextSeed(opts)),
      li: 0,
      states: keep ? [] : undefined,
    };
    this.simulateOps(this.ops, undefined, ctx);
    if (!ctx.out) throw new QbnnError('ERR_ARG', 'QuantizedModel: no output layer');
    return { states: ctx.states ?? [], output: ctx.out };
  }

  private simulateOps(ops: QOp[], st: FloatState | undefined, ctx: FloatCtx): FloatState | undefined {
    const { x, B, L } = ctx;
    const top = ops === this.ops;
    for (const op of ops) {
      switch (op.op) {
        case 'quantize': {
          const q = op.q;
          const d = new Float64Array(x.length);
          for (let i = 0; i < x.length; i++) d[i] = fq(x[i], q.scale, q.zeroPoint, 0, qmaxOf(q));
          st = { data: d, shared: true, shape: [B, ...this.inputShape] };
          break;
        }
        case 'layer': {
          const r = this.layerFloat(op.layer, st!, L, layerStreams(ctx.root, ctx.li++), ctx.mode);
          if (op.layer.output === null) {
            ctx.out = { logits: Float32Array.from(r.data), samples: L, batch: B, classes: op.layer.n };
            return st;
          }
          st = r;
          break;
        }
        case 'residual': {
          const input = st!;
          const a = this.simulateOps(op.body, input, ctx)!;
          const b = op.shortcut.length > 0 ? this.simulateOps(op.shortcut, input, ctx)! : input;
          st = addF64(a, b, op, L);
          break;
        }
        case 'relu': {
          st = { ...st!, data: st!.data.map((v) => Math.max(v, 0)) };
          break;
        }
        case 'maxpool2d':
        case 'avgpool2d': {
          const s = st!;
          const count = s.shared ? 1 : L;
          const [b, c, h, w] = s.shape;
          const r = poolF64(
            s.data,
            [count * b, c, h, w],
            op.op === 'maxpool2d' ? 'max' : 'avg',
            op.kernel,
            op.stride,
            op.padding,
          );
          // average pooling re-rounds to the same grid
          const data =
            op.op === 'avgpool2d' ? r.out.map((v) => fq(v, op.q.scale, op.q.zeroPoint, 0, 255)) : r.out;
          st = { data, shared: s.shared, shape: [b, ...r.shape.slice(1)] };
          break;
        }
        case 'globalavgpool2d': {
          const s = st!;
          const count = s.shared ? 1 : L;
          const [b, c, h, w] = s.shape;
          const hw = h * w;
          const d = new Float64Array(count * b * c);
          for (let i = 0; i < d.length; i++) {
            let acc = 0;
            for (let j = 0; j < hw; j++) acc += s.data[i * hw + j];
            d[i] = fq(acc / hw, op.q.scale, op.q.zeroPoint, 0, 255);
          }
          st = { data: d, shared: s.shared, shape: [b, c] };
          break;
        }
        case 'flatten': {
          const s = st!;
          st = { ...s, shape: [s.shape[0], prod(s.shape.slice(1))] };
          break;
        }
      }
      if (top && ctx.states && st) ctx.states.push(st);
    }
    return st;
  }

  /** Float64 dequantised weights and bias of sample l (the twin's own computation). */
  floatWeights(
    layer: QLayerSpec,
    l: number,
    streams: LayerStreams,
  ): { w: Float64Array; b?: Float64Array; wScale: Float64Array } {
    const { n, k } = layer;
    const w = layer.weights;
    const deq = (fw: FixedWeights) => {
      const s = expandScale(fw.wq, n);
      const z = expandZp(fw.wq, n);
      const out = new Float64Array(n * k);
      for (let i = 0; i < n * k; i++) {
        const c = Math.floor(i / k);
        out[i] = s[c] * (fw.w[i] - z[c]);
      }
      return { w: out, b: fw.bias ? Float64Array.from(fw.bias) : undefined, wScale: s };
    };
    if (w.kind === 'fixed') return deq(w);
    if (w.kind === 'ensemble') return deq(w.members[l % w.members.length]);
    const ms = expandScale(w.muQ, n);
    const mz = expandZp(w.muQ, n);
    const ss = expandScale(w.sigmaQ, n);
    const sz = expandZp(w.sigmaQ, n);
    const ns = expandScale(w.noiseQ, n);
    const nz = expandZp(w.noiseQ, n);
    const ws = expandScale(w.weightQ, n);
    const wz = expandZp(w.weightQ, n);
    const nr = signedRange(w.noiseQ);
    const wr = signedRange(w.weightQ);
    const eps = qnormalFill(streams.weight, l * Math.ceil((n * k) / 4), new Int8Array(n * k));
    const f = w.kind === 'radial' ? radialFactor(eps, streams, l) : 1;
    const out = new Float64Array(n * k);
    for (let i = 0; i < n * k; i++) {
      const c = Math.floor(i / k);
      const mu = ms[c] * (w.mu[i] - mz[c]);
      const sigma = ss[c] * (w.sigma[i] - sz[c]);
      const e = eps[i] * QNORMAL_SCALE * f;
      const noise = fq(e * sigma, ns[c], nz[c], nr.qmin, nr.qmax);
      out[i] = fq(mu + noise, ws[c], wz[c], wr.qmin, wr.qmax);
    }
    return { w: out, b: sampledBias(w, streams, l, n), wScale: ws };
  }

  private layerFloat(
    layer: QLayerSpec,
    s: FloatState,
    L: number,
    streams: LayerStreams,
    mode: EngineMode,
  ): FloatState {
    const B = s.shape[0];
    const inPer = prod(s.shape);
    const stochastic = layer.weights.kind !== 'fixed' || layer.dropout !== undefined;
    const local = mode === 'local' && layer.weights.kind === 'gaussian';
    const count = stochastic ? L : s.shared ? 1 : L;
    const pieces: Float64Array[] = [];
    let outShape: number[] = [];
    for (let l = 0; l < count; l++) {
      let a = s.shared ? s.data : s.data.subarray(l * inPer, (l + 1) * inPer);
      let aScale = layer.input.scale;
      if (layer.dropout) {
        a = dropoutF64(a, layer.input, layer.dropout, streams.mask, l);
        aScale = layer.dropout.masked.scale;
      }
      let y: { out: Float64Array; shape: number[] };
      if (local) {
        y = this.localFloat(layer, a, B, s.shape, streams, l);
      } else {
        const fw = this.floatWeights(layer, stochastic ? l : 0, streams);
        let b = fw.b;
        if (b) {
          const bq = quantizeBias(b, aScale, fw.wScale);
          b = Float64Array.from(bq, (v, i) => v * aScale * fw.wScale[i]);
        }
        y = this.applyOpF64(layer, a, B, s.shape, fw.w, b);
      }
      pieces.push(this.finishF64(layer, y.out));
      outShape = y.shape;
    }
    let data: Float64Array;
    if (pieces.length === 1) data = pieces[0];
    else {
      data = new Float64Array(pieces.length * pieces[0].length);
      pieces.forEach((p, i) => {
        data.set(p, i * p.length);
      });
    }
    if (layer.output === null && count === 1 && L > 1) {
      const rep = new Float64Array(L * data.length);
      for (let l = 0; l < L; l++) rep.set(data, l * data.length);
      data = rep;
    }
    return { data, shared: !stochastic && s.shared, shape: outShape };
  }

  private applyOpF64(
    layer: QLayerSpec,
    a: Float64Array,
    B: number,
    shape: number[],
    w: Float64Array,
    b: Float64Array | undefined,
  ): { out: Float64Array; shape: number[] } {
    if (layer.op === 'linear') return { out: linearF64(a, B, w, layer.n, layer.k, b), shape: [B, layer.n] };
    const [, c, h, wd] = shape;
    return conv2dF64(
      a,
      [B, c, h, wd],
      w,
      layer.wShape!,
      layer.stride ?? [1, 1],
      layer.padding ?? [0, 0],
      layer.dilation ?? [1, 1],
      layer.groups ?? 1,
      b,
    );
  }

  private finishF64(layer: QLayerSpec, y: Float64Array): Float64Array {
    const o = layer.output;
    if (!o) return y;
    const qm = qmaxOf(o);
    return y.map((v) => fq(layer.relu && v < 0 ? 0 : v, o.scale, o.zeroPoint, 0, qm));
  }

  private localFloat(
    layer: QLayerSpec,
    a: Float64Array,
    B: number,
    shape: number[],
    streams: LayerStreams,
    l: number,
  ): { out: Float64Array; shape: number[] } {
    const w = layer.weights as GaussianWeights;
    const n = layer.n;
    const k = layer.k;
    const lp = localParams(layer, w);
    const ms = expandScale(w.muQ, n);
    const mz = expandZp(w.muQ, n);
    const muF = new Float64Array(n * k);
    const s2F = new Float64Array(n * k);
    for (let i = 0; i < n * k; i++) {
      const c = Math.floor(i / k);
      muF[i] = ms[c] * (w.mu[i] - mz[c]);
      s2F[i] = lp.s2Scale[c] * lp.s2[i];
    }
    // x^2 on its 8-bit grid
    const x2 = a.map((v) => fq(v * v, lp.x2Scale, 0, 0, 255));
    const bMu = w.bias
      ? Float64Array.from(
          quantizeBias(w.bias.mu, layer.input.scale, ms),
          (v, i) => v * layer.input.scale * ms[i],
        )
      : undefined;
    const bVar = w.bias
      ? Float64Array.from(
          quantizeBias(
            Array.from(w.bias.sigma, (v) => v * v),
            lp.x2Scale,
            lp.s2Scale,
          ),
          (v, i) => v * lp.x2Scale * lp.s2Scale[i],
        )
      : undefined;
    const mean = this.applyOpF64(layer, a, B, shape, muF, bMu);
    const vari = this.applyOpF64(layer, x2, B, shape, s2F, bVar);
    const total = mean.out.length;
    const eps = qnormalFill(streams.local, l * Math.ceil(total / 4), new Int8Array(total));
    const out = new Float64Array(total);
    for (let i = 0; i < total; i++) {
      const v = vari.out[i];
      out[i] = mean.out[i] + Math.sqrt(Math.max(v, 0)) * (eps[i] * QNORMAL_SCALE);
    }
    return { out, shape: mean.shape };
  }

  /** Bytes of the integer model: integer tensors, float biases, and 12 bytes per (scale, zero point). */
  sizeBytes(): number {
    let bytes = 0;
    const qp = (p: QParams) => p.scale.length * 12;
    for (const layer of this.layers) {
      const w = layer.weights;
      if (w.kind === 'fixed') bytes += w.w.length + (w.bias?.length ?? 0) * 4 + qp(w.wq);
      else if (w.kind === 'ensemble') {
        for (const m of w.members) bytes += m.w.length + (m.bias?.length ?? 0) * 4 + qp(m.wq);
      } else {
        bytes += w.mu.length + w.sigma.length + (w.bias ? w.bias.mu.length * 8 : 0);
        bytes += qp(w.muQ) + qp(w.sigmaQ) + qp(w.noiseQ) + qp(w.weightQ);
      }
      bytes += 24;
    }
    return bytes;
  }
}

/** Derived 8-bit grids of local reparameterisation: x^2 from the input grid, sigma^2 per channel. */
function localParams(
  layer: QLayerSpec,
  w: GaussianWeights,
): { x2Scale: number; x2Div: number; s2: Int8Array; s2Scale: Float64Array } {
  const z = layer.input.zeroPoint;
  const qm = qmaxOf(layer.input);
  const maxDev = Math.max(z, qm - z);
  const maxSq = Math.max(1, maxDev * maxDev);
  const x2Div = maxSq / 255;
  const x2Scale = layer.input.scale * layer.input.scale * x2Div;
  const n = layer.n;
  const k = layer.k;
  const ss = expandScale(w.sigmaQ, n);
  const sz = expandZp(w.sigmaQ, n);
  const s2Scale = new Float64Array(n);
  const s2 = new Int8Array(n * k);
  for (let c = 0; c < n; c++) {
    let m = 0;
    for (let i = 0; i < k; i++) {
      const s = ss[c] * (w.sigma[c * k + i] - sz[c]);
      if (s * s > m) m = s * s;
    }
    s2Scale[c] = m > 0 ? m / 127 : 1;
    for (let i = 0; i < k; i++) {
      const s = ss[c] * (w.sigma[c * k + i] - sz[c]);
      s2[c * k + i] = Math.min(127, roundHalfEven((s * s) / s2Scale[c]));
    }
  }
  return { x2Scale, x2Div, s2, s2Scale };
}

/** Per output of one sample: mean = acc_mu S_x S_mu[c] and sd = sqrt(max(acc_var S_x2 S_s2[c], 0)). */
function localMoments(
  mu: Int32Array,
  va: Int32Array,
  src: number,
  B: number,
  n: number,
  inner: number,
  meanMult: Float64Array,
  varMult: Float64Array,
  mean: Float64Array,
  sd: Float64Array,
): void {
  let i = 0;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < n; c++) {
      const mm = meanMult[c];
      const vm = varMult[c];
      for (let j = 0; j < inner; j++, i++) {
        mean[i] = mu[src + i] * mm;
        sd[i] = Math.sqrt(Math.max(va[src + i] * vm, 0));
      }
    }
  }
}

/** Float outputs of one local-reparameterisation sample: mean + sd eps S_eps. */
function localF32(
  mean: Float64Array,
  sd: Float64Array,
  eps: Int8Array,
  out: Float32Array,
  dst: number,
): void {
  const es = QNORMAL_SCALE; // a local: an imported binding is re-read (and hole-checked) per use
  for (let i = 0; i < mean.length; i++) out[dst + i] = mean[i] + sd[i] * (eps[i] * es);
}

/** 1.5 * 2^52: `(x + ROUND_MAGIC) - ROUND_MAGIC` rounds |x| < 2^51 to the nearest integer, ties to even. */
const ROUND_MAGIC = 6755399441055744;

/**
 * u8 outputs of one local-reparameterisation sample: (ReLU and) requantisation of
 * y = mean + sd eps S_eps, `clamp(roundHalfEven(y / scale) + zero, lo, qmax)` with
 * lo = relu ? zero : 0 (ReLU as the clamp: y < 0 rounds to at most zero). The rounding is core's
 * roundHalfEven done by the float64 adder; |y / scale| is first limited to 1024, which changes no
 * clamped result; the clamp is branch-free integer arithmetic (outputs are about half negative,
 * so compares mispredict). y is always finite here (int32 accumulators times finite factors).
 */
function localU8(
  mean: Float64Array,
  sd: Float64Array,
  eps: Int8Array,
  out: Uint8Array,
  dst: number,
  scale: number,
  zero: number,
  relu: boolean,
  qmax: number,
): void {
  const lo = relu ? zero : 0;
  const es = QNORMAL_SCALE; // a local: an imported binding is re-read (and hole-checked) per use
  const magic = ROUND_MAGIC;
  for (let i = 0; i < mean.length; i++) {
    const v = (mean[i] + sd[i] * (eps[i] * es)) / scale;
    let q = v > 1024 ? 1024 : v < -1024 ? -1024 : (v + magic - magic) | 0;
    q += zero;
    let t = q - lo;
    q = lo + (t & ~(t >> 31));
    t = q - qmax;
    out[dst + i] = qmax + (t & (t >> 31));
  }
}

/**
 * The requantisation table of MC Dropout, indexed by `mask << 8 | q`: a dropped value (mask 0)
 * becomes the masked grid's zero point (real 0); a kept value q of the input grid is multiplied
 * by 1 / (1 - p) and requantised onto the masked input's own grid. The per-element work is one
 * lookup, without a branch on the random mask.
 */
function dropoutTable(inQ: ActQ, d: { p: number; masked: ActQ }): Uint8Array {
  const mult = inQ.scale / ((1 - d.p) * d.masked.scale);
  const zm = d.masked.zeroPoint;
  const qm = qmaxOf(d.masked);
  const lut = new Uint8Array(512).fill(zm);
  for (let q = 0; q < 256; q++)
    lut[256 + q] = Math.min(qm, Math.max(0, roundHalfEven((q - inQ.zeroPoint) * mult) + zm));
  return lut;
}

/**
 * MC Dropout on u8 activations: the Bernoulli keep-mask of sample l (core's bernoulliFill, 1 =
 * keep) through the layer's {@link dropoutTable}, written to `out`.
 */
function dropoutU8(
  a: Uint8Array,
  lut: Uint8Array,
  d: { p: number; masked: ActQ },
  key: readonly [number, number],
  l: number,
  out: Uint8Array,
): Uint8Array {
  const mask = bernoulliFill(key, l * Math.ceil(a.length / 4), d.p, new Uint8Array(a.length));
  for (let i = 0; i < a.length; i++) out[i] = lut[(mask[i] << 8) | a[i]];
  return out;
}

function dropoutF64(
  a: Float64Array,
  _inQ: ActQ,
  d: { p: number; masked: ActQ },
  key: readonly [number, number],
  l: number,
): Float64Array {
  const mask = bernoulliFill(key, l * Math.ceil(a.length / 4), d.p, new Uint8Array(a.length));
  const qm = qmaxOf(d.masked);
  return a.map((v, i) => (mask[i] ? fq(v / (1 - d.p), d.masked.scale, d.masked.zeroPoint, 0, qm) : 0));
}

function replicate(d: Float32Array, shared: boolean, L: number, B: number, n: number): QuantizedOutput {
  if (!shared || L === 1) return { logits: d, samples: L, batch: B, classes: n };
  const out = new Float32Array(L * d.length);
  for (let l = 0; l < L; l++) out.set(d, l * d.length);
  return { logits: out, samples: L, batch: B, classes: n };
}

/** Mean over samples of the softmax of each sample's logits: [B, classes]. */
export function meanSoftmax(o: QuantizedOutput): Float32Array {
  const { logits, samples: L, batch: B, classes: C } = o;
  const p = new Float64Array(B * C);
  for (let l = 0; l < L; l++) {
    for (let b = 0; b < B; b++) {
      const off = (l * B + b) * C;
      let m = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < C; c++) m = Math.max(m, logits[off + c]);
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(logits[off + c] - m);
      for (let c = 0; c < C; c++) p[b * C + c] += Math.exp(logits[off + c] - m) / s / L;
    }
  }
  return Float32Array.from(p);
}
