import {
  gaussianSampleMultipliers,
  type PackedInts,
  type PackedWeights,
  packedByteLength,
  QbnnError,
  QNORMAL_SCALE,
  qnormalFill,
} from '@qbnn/core';
import { LocScalePosterior, type Posterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { fq64, range64 } from '../reference/fake-quant.js';
import { channelScales, channelZeroPoints, type QParams } from '../spec.js';
import { checkFloats, checkInts, checkParams, fail, isObject } from './checks.js';
import { qparamsFromJson, qparamsToJson } from './json.js';
import type {
  ChannelFold,
  ConvertedLayer,
  FromFloatContext,
  IntegerForm,
  IntegerWeights,
  LayerStreams,
  LocalMoments,
  PlanContext,
  PlanSampler,
  ReferenceContext,
  SampleContext,
  TensorSink,
  TensorSource,
} from './types.js';

/**
 * A Gaussian (or Radial) posterior stored as integers (DESIGN.md section 3): means mu_q (signed,
 * weight bits), standard deviations sigma_q (unsigned, weight bits), and the observed params of
 * the noise n = Q(eps * sigma) and of the sampled weight w = Q(mu + n).
 */
export interface GaussianWeights extends IntegerWeights {
  kind: 'gaussian' | 'radial';
  mu: Int8Array;
  muQ: QParams;
  sigma: Uint8Array;
  sigmaQ: QParams;
  noiseQ: QParams;
  weightQ: QParams;
  /** Bias posterior in float (biases are int32 at run time): b = mu + sigma * eps. */
  bias?: { mu: Float32Array; sigma: Float32Array };
  /**
   * mu and sigma as kept packed (below 8 bits, in a QuantizedModel): the fused sampler reads
   * these, and `mu` / `sigma` are then unpacked only when first read (the float64 reference,
   * local mode and execution plans read them).
   */
  packed?: { mu: PackedInts; sigma: PackedInts };
}

/** Per-layer constants of the fused sampler (computed once per model). */
interface SamplerConstants {
  m1: Float64Array;
  m2: Float64Array;
  m3: Float64Array;
  muZ: Int32Array;
  sigZ: Int32Array;
  noiseZ: Int32Array;
  wZ: Int32Array;
  wScale: Float64Array;
}

function constants(w: GaussianWeights, ctx: Pick<SampleContext, 'n' | 'memo'>): SamplerConstants {
  const n = ctx.n;
  return ctx.memo(w, 'gaussian-sampler', () => ({
    ...gaussianSampleMultipliers({
      muScale: channelScales(w.muQ, n),
      sigmaScale: channelScales(w.sigmaQ, n),
      noiseScale: channelScales(w.noiseQ, n),
      weightScale: channelScales(w.weightQ, n),
      n,
    }),
    muZ: channelZeroPoints(w.muQ, n),
    sigZ: channelZeroPoints(w.sigmaQ, n),
    noiseZ: channelZeroPoints(w.noiseQ, n),
    wZ: channelZeroPoints(w.weightQ, n),
    wScale: channelScales(w.weightQ, n),
  }));
}

/**
 * The fused sampler's arguments of a layer, but for the stream; mu and sigma as kept packed
 * when `packed` and they are.
 */
function samplerArgs(w: GaussianWeights, c: SamplerConstants, packed: boolean) {
  return {
    mu: (packed && w.packed?.mu) || w.mu,
    muZeroPoint: c.muZ,
    sigma: (packed && w.packed?.sigma) || w.sigma,
    sigmaZeroPoint: c.sigZ,
    noiseZeroPoint: c.noiseZ,
    weightZeroPoint: c.wZ,
    m1: c.m1,
    m2: c.m2,
    m3: c.m3,
    bits: w.weightQ.bits,
  };
}

/**
 * Sample l through the provider's fused sampler: eps_q from the weight stream at position
 * l * ceil(N K / 4), n = Q(eps sigma), w = Q(mu + n), packed. `scale` multiplies m1 = S_eps S_sigma / S_n
 * per channel (the radial direction factor), or is 1.
 */
export function sampleLocScale(
  w: GaussianWeights,
  ctx: SampleContext,
  scale: (position: number) => number,
  biasNoise: (eps: Int8Array) => Float64Array,
) {
  const { n, k, l, provider, streams } = ctx;
  const c = constants(w, ctx);
  const position = l * Math.ceil((n * k) / 4);
  const f = scale(position);
  // Every draw after the first is written over the layer's destination pack (kernel contract:
  // GaussianSampleArgs.out), so a synchronous loop of predictions allocates no native memory per
  // sample and nothing waits for garbage collection (issue 17, D19). A provider that ignores
  // `out` returns a new pack: the caller owns it and disposes it after its GEMM.
  const slot = ctx.memo(w, `sample-out:${provider.name}`, () => ({
    pack: undefined as PackedWeights | undefined,
  }));
  const args = samplerArgs(w, c, true);
  const packed = provider.sampleGaussianPacked({
    ...args,
    m1: f === 1 ? c.m1 : c.m1.map((v) => v * f),
    n,
    k,
    key: streams.weight,
    position,
    out: slot.pack,
  });
  const owned = slot.pack !== undefined && packed !== slot.pack;
  slot.pack ??= packed;
  let bias: Float64Array | undefined;
  if (w.bias) {
    const e = biasNoise(qnormalFill(streams.bias, l * Math.ceil(n / 4), new Int8Array(n)));
    bias = new Float64Array(n);
    for (let i = 0; i < n; i++) bias[i] = w.bias.mu[i] + w.bias.sigma[i] * e[i];
  }
  return { packed, wScale: c.wScale, bias, owned };
}

/** The plan's sampler arguments of a location-scale layer (what {@link sampleLocScale} passes). */
export function planLocScale(
  w: GaussianWeights,
  ctx: PlanContext,
  direction: 'gaussian' | 'radial',
  scalars?: (streams: LayerStreams, l: number) => readonly [number, number],
): PlanSampler {
  const c = constants(w, ctx);
  return {
    kind: 'gaussian',
    // mu and sigma as kept: packed below 8 bits (the plan's sampler decodes rows itself)
    args: samplerArgs(w, c, true),
    wScale: c.wScale,
    direction,
    bias: w.bias,
    scalars,
  };
}

/**
 * The float64 reference of sample l: mu and sigma dequantised, xi = `direction(eps)` (the real
 * noise direction of each weight), n = fq(xi sigma) on the noise grid, w = fq(mu + n) on the
 * weight grid, bias b = mu_b + sigma_b xi_b.
 */
export function referenceLocScale(
  w: GaussianWeights,
  ctx: ReferenceContext,
  direction: (eps: Int8Array, which: 0 | 1) => Float64Array,
) {
  const { n, k, l, streams } = ctx;
  const ms = channelScales(w.muQ, n);
  const mz = channelZeroPoints(w.muQ, n);
  const ss = channelScales(w.sigmaQ, n);
  const sz = channelZeroPoints(w.sigmaQ, n);
  const ns = channelScales(w.noiseQ, n);
  const nz = channelZeroPoints(w.noiseQ, n);
  const ws = channelScales(w.weightQ, n);
  const wz = channelZeroPoints(w.weightQ, n);
  const nr = range64(w.noiseQ);
  const wr = range64(w.weightQ);
  const xi = direction(qnormalFill(streams.weight, l * Math.ceil((n * k) / 4), new Int8Array(n * k)), 0);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n * k; i++) {
    const c = Math.floor(i / k);
    const mu = ms[c] * (w.mu[i] - mz[c]);
    const sigma = ss[c] * (w.sigma[i] - sz[c]);
    const noise = fq64(xi[i] * sigma, ns[c], nz[c], nr.qmin, nr.qmax);
    out[i] = fq64(mu + noise, ws[c], wz[c], wr.qmin, wr.qmax);
  }
  let b: Float64Array | undefined;
  if (w.bias) {
    const xb = direction(qnormalFill(streams.bias, l * Math.ceil(n / 4), new Int8Array(n)), 1);
    const bias = w.bias;
    b = Float64Array.from(bias.mu, (m, i) => m + bias.sigma[i] * xb[i]);
  }
  return { w: out, b, wScale: ws };
}

/** Stores a location-scale posterior (Gaussian or Radial) of a prepared layer. */
export function locScaleFromFloat(
  kind: 'gaussian' | 'radial',
  ctx: FromFloatContext,
): ConvertedLayer<GaussianWeights> {
  const p = ctx.posterior;
  if (!(p instanceof LocScalePosterior)) {
    throw new QbnnError(
      'ERR_ARG',
      `convert: '${ctx.path}': the ${kind} form needs a location-scale posterior`,
    );
  }
  const [w, b] = p.params;
  const sigma = tf.softplus(w.rho);
  const muQ = ctx.point('mu', { values: w.mu });
  const sigmaQ = ctx.point('sigma', { values: sigma });
  const g: GaussianWeights = {
    kind,
    mu: ctx.quantize(w.mu, muQ) as Int8Array,
    muQ,
    sigma: ctx.quantize(sigma, sigmaQ) as Uint8Array,
    sigmaQ,
    noiseQ: ctx.point('noise'),
    weightQ: ctx.point('weight'),
  };
  if (b || ctx.foldedBias) {
    const bs = b ? (tf.softplus(b.rho).dataSync() as Float32Array).slice() : new Float32Array(ctx.n);
    g.bias = { mu: ctx.bias(b?.mu) as Float32Array, sigma: bs };
  }
  return { weights: g };
}

/** Checks stored location-scale weights: four params, mu (s8) and sigma (u8) in range, a finite bias. */
export function validateLocScale(w: GaussianWeights, { n, k }: { n: number; k: number }, path: string): void {
  const muQ = checkParams(`${path}.muQ`, w.muQ, n, true);
  const sigmaQ = checkParams(`${path}.sigmaQ`, w.sigmaQ, n, false);
  checkParams(`${path}.noiseQ`, w.noiseQ, n, true);
  checkParams(`${path}.weightQ`, w.weightQ, n, true);
  checkInts(`${path}.mu`, w.mu, Int8Array, n * k, muQ);
  checkInts(`${path}.sigma`, w.sigma, Uint8Array, n * k, sigmaQ);
  if (w.bias !== undefined) {
    if (!isObject(w.bias)) fail(`${path}.bias`, 'must be { mu, sigma }');
    checkFloats(`${path}.bias.mu`, w.bias.mu, n, false);
    checkFloats(`${path}.bias.sigma`, w.bias.sigma, n, true);
  }
}

/** BatchNorm folding of a location-scale posterior: mu by f, sigma by |f|, the bias likewise. */
export function foldLocScale(p: Posterior, fold: ChannelFold): boolean {
  if (!(p instanceof LocScalePosterior)) {
    throw new QbnnError('ERR_ARG', `foldBatchNorm: posterior '${p.kind}' is not a location-scale posterior`);
  }
  const [w, b] = p.params;
  fold.scaleRows(w.mu);
  fold.scaleSoftplus(w.rho);
  if (!b) return false;
  fold.foldBias(b.mu);
  fold.scaleSoftplus(b.rho);
  return true;
}

/** Bytes: mu and sigma integers (packed below 8 bits), f32 bias mean and sd, four sets of (scale, zero point). */
export function locScaleBytes(w: GaussianWeights): number {
  const qp = (p: QParams) => p.scale.length * 12;
  return (
    packedByteLength(w.mu.length, w.muQ.bits) +
    packedByteLength(w.sigma.length, w.sigmaQ.bits) +
    (w.bias ? w.bias.mu.length * 8 : 0) +
    qp(w.muQ) +
    qp(w.sigmaQ) +
    qp(w.noiseQ) +
    qp(w.weightQ)
  );
}

export function saveLocScale(w: GaussianWeights, put: TensorSink, { n, k }: { n: number; k: number }) {
  put('mu', { dtype: 'I8', shape: [n, k], data: w.mu, bits: w.muQ.bits });
  put('sigma', { dtype: 'U8', shape: [n, k], data: w.sigma, bits: w.sigmaQ.bits });
  if (w.bias) {
    put('bias_mu', { dtype: 'F32', shape: [n], data: w.bias.mu });
    put('bias_sigma', { dtype: 'F32', shape: [n], data: w.bias.sigma });
  }
  return {
    muQ: qparamsToJson(w.muQ),
    sigmaQ: qparamsToJson(w.sigmaQ),
    noiseQ: qparamsToJson(w.noiseQ),
    weightQ: qparamsToJson(w.weightQ),
    bias: w.bias !== undefined,
  };
}

export function loadLocScale(
  kind: 'gaussian' | 'radial',
  j: Record<string, unknown>,
  get: TensorSource,
  { n, k }: { n: number; k: number },
): GaussianWeights {
  const params = {
    kind,
    muQ: qparamsFromJson(j.muQ, `${kind} mu params`, n),
    sigmaQ: qparamsFromJson(j.sigmaQ, `${kind} sigma params`, n),
    noiseQ: qparamsFromJson(j.noiseQ, `${kind} noise params`, n),
    weightQ: qparamsFromJson(j.weightQ, `${kind} weight params`, n),
    bias: j.bias ? { mu: get('bias_mu', 'F32', n), sigma: get('bias_sigma', 'F32', n) } : undefined,
  };
  const mu = get.packed?.('mu');
  const sigma = get.packed?.('sigma');
  if (!mu || !sigma) return { ...params, mu: get('mu', 'I8', n * k), sigma: get('sigma', 'U8', n * k) };
  // Kept packed: the sampler reads the packed bytes; mu / sigma unpack on first read.
  const w = { ...params } as GaussianWeights;
  // not enumerable: the weights' fields stay what they were (mu and sigma as arrays)
  Object.defineProperty(w, 'packed', { value: { mu, sigma }, enumerable: false });
  const lazy = <K extends 'mu' | 'sigma'>(key: K, load: () => GaussianWeights[K]) => {
    let value: GaussianWeights[K] | undefined;
    Object.defineProperty(w, key, { enumerable: true, get: () => (value ??= load()) });
  };
  lazy('mu', () => get('mu', 'I8', n * k));
  lazy('sigma', () => get('sigma', 'U8', n * k));
  return w;
}

export const LOC_SCALE_POINTS = [
  { name: 'mu', signed: true },
  { name: 'sigma', signed: false },
  { name: 'noise', signed: true },
  { name: 'weight', signed: true },
] as const;

/** Bayes-by-Backprop Gaussian weights: w = Q(mu + Q(eps sigma)), eps the quantised standard normal. */
export const gaussianForm: IntegerForm<GaussianWeights> = {
  kind: 'gaussian',
  posteriors: ['gaussian'],
  points: LOC_SCALE_POINTS,
  fromFloat: (ctx) => locScaleFromFloat('gaussian', ctx),
  foldBatchNorm: foldLocScale,
  stochastic: () => true,
  sample: (w, ctx) =>
    sampleLocScale(
      w,
      ctx,
      () => 1,
      (eps) => Float64Array.from(eps, (e) => e * QNORMAL_SCALE),
    ),
  plan: (w, ctx) => planLocScale(w, ctx, 'gaussian'),
  local: (w, { n, k }): LocalMoments => {
    const ss = channelScales(w.sigmaQ, n);
    const sz = channelZeroPoints(w.sigmaQ, n);
    const sigma = new Float64Array(n * k);
    for (let c = 0; c < n; c++)
      for (let i = 0; i < k; i++) sigma[c * k + i] = ss[c] * (w.sigma[c * k + i] - sz[c]);
    return { mu: w.mu, muQ: w.muQ, sigma, bias: w.bias };
  },
  reference: (w, ctx) => referenceLocScale(w, ctx, (eps) => Float64Array.from(eps, (e) => e * QNORMAL_SCALE)),
  validate: validateLocScale,
  sizeBytes: locScaleBytes,
  weightBits: (w) => w.weightQ.bits,
  save: saveLocScale,
  load: (j, get, shape) => loadLocScale('gaussian', j, get, shape),
};
