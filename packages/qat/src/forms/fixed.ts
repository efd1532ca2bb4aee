import { packedByteLength, QbnnError } from '@qbnn/core';
import type { Posterior } from '@qbnn/posteriors';
import type * as tf from '@tensorflow/tfjs-core';
import { channelScales, channelZeroPoints, type QParams } from '../spec.js';
import { checkFloats, checkInts, checkParams, fail, isObject, show } from './checks.js';
import { qparamsFromJson, qparamsToJson } from './json.js';
import type {
  ChannelFold,
  IntegerForm,
  IntegerSample,
  IntegerWeights,
  SampleContext,
  TensorSink,
  TensorSource,
} from './types.js';

/** A deterministic weight tensor stored as integers, with a real bias: the `fixed` form. */
export interface FixedWeights extends IntegerWeights {
  kind: 'fixed';
  /** s8 weights [N, K] (conv: [O, C/g * kh * kw]). */
  w: Int8Array;
  wq: QParams;
  /** Real bias [N], quantised to int32 at S_in * S_w[n] when run. */
  bias?: Float32Array;
}

/** Checks a stored weight: s8 values within the signed params' range, a finite f32 bias. */
export function validateFixed(fw: unknown, n: number, k: number, path: string): void {
  if (!isObject(fw)) fail(path, `must be weights, got ${show(fw)}`);
  const f = fw as unknown as { w: unknown; wq: unknown; bias?: unknown };
  const wq = checkParams(`${path}.wq`, f.wq, n, true);
  checkInts(`${path}.w`, f.w, Int8Array, n * k, wq);
  if (f.bias !== undefined) checkFloats(`${path}.bias`, f.bias, n, false);
}

/**
 * BatchNorm folding of a point posterior (parameters `weight` and optional `bias`: MC Dropout,
 * SGHMC's chain position) and of the extra weight sets `others` (SGHMC's members).
 */
export function foldPointPosterior(
  p: Posterior,
  fold: ChannelFold,
  others: { weight: tf.Variable; bias?: tf.Variable }[] = [],
): boolean {
  const params = p.parameters();
  const weight = params.get('weight');
  if (!weight)
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `foldBatchNorm: posterior '${p.kind}' has no 'weight' to fold into`,
    );
  const bias = params.get('bias');
  for (const set of [{ weight, bias }, ...others]) {
    fold.scaleRows(set.weight);
    if (set.bias) fold.foldBias(set.bias);
  }
  return bias !== undefined;
}

/** The integer sample of a stored weight: packed once per provider and kept (not owned). */
export function fixedSample(
  fw: { w: Int8Array; wq: QParams; bias?: Float32Array },
  ctx: Pick<SampleContext, 'n' | 'k' | 'provider' | 'memo'>,
): IntegerSample {
  const { n, k, provider } = ctx;
  const packed = ctx.memo(fw, `pack:${provider.name}`, () =>
    provider.packWeights(fw.w, n, k, channelZeroPoints(fw.wq, n)),
  );
  return { packed, wScale: channelScales(fw.wq, n), bias: fw.bias, owned: false };
}

/** The float64 value of a stored weight (the reference's own dequantisation). */
export function fixedReference(fw: { w: Int8Array; wq: QParams; bias?: Float32Array }, n: number, k: number) {
  const s = channelScales(fw.wq, n);
  const z = channelZeroPoints(fw.wq, n);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n * k; i++) {
    const c = Math.floor(i / k);
    out[i] = s[c] * (fw.w[i] - z[c]);
  }
  return { w: out, b: fw.bias ? Float64Array.from(fw.bias) : undefined, wScale: s };
}

/** Bytes of a stored weight: integers (packed below 8 bits), f32 bias, 12 bytes a (scale, zero point). */
export function fixedBytes(fw: { w: Int8Array; wq: QParams; bias?: Float32Array }): number {
  return packedByteLength(fw.w.length, fw.wq.bits) + (fw.bias?.length ?? 0) * 4 + fw.wq.scale.length * 12;
}

/** Saves a stored weight under `prefix` (`.weight`, `.bias`). */
export function saveFixed(
  fw: { w: Int8Array; wq: QParams; bias?: Float32Array },
  put: TensorSink,
  prefix: string,
  shape: { n: number; k: number },
): Record<string, unknown> {
  put(`${prefix}weight`, { dtype: 'I8', shape: [shape.n, shape.k], data: fw.w, bits: fw.wq.bits });
  if (fw.bias) put(`${prefix}bias`, { dtype: 'F32', shape: [shape.n], data: fw.bias });
  return { wq: qparamsToJson(fw.wq), bias: fw.bias !== undefined };
}

/** Loads what {@link saveFixed} wrote. */
export function loadFixed(
  json: Record<string, unknown>,
  get: TensorSource,
  prefix: string,
  shape: { n: number; k: number },
  what: string,
): { w: Int8Array; wq: QParams; bias?: Float32Array } {
  return {
    w: get(`${prefix}weight`, 'I8', shape.n * shape.k),
    wq: qparamsFromJson(json.wq, `${what} weight params`, shape.n),
    bias: json.bias ? get(`${prefix}bias`, 'F32', shape.n) : undefined,
  };
}

/** A stored weight (w, wq, bias) under form `kind`: what `fixed` and `mcdropout` share. */
export interface StoredWeight extends IntegerWeights {
  w: Int8Array;
  wq: QParams;
  bias?: Float32Array;
}

/** The run, size and serialisation methods of a form whose weights are one stored tensor. */
export function storedWeightForm<K extends string>(
  kind: K,
): Omit<IntegerForm<StoredWeight & { kind: K }>, 'kind' | 'fromFloat' | 'posteriors' | 'points'> {
  return {
    // one weight serves every sample
    stochastic: () => false,
    sample: fixedSample,
    plan: (w, ctx) => ({ kind: 'sets', sets: [fixedSample(w, ctx)], cycle: false }),
    reference: (w, ctx) => fixedReference(w, ctx.n, ctx.k),
    sizeBytes: fixedBytes,
    weightBits: (w) => w.wq.bits,
    save: (w, put, shape) => saveFixed(w, put, '', shape),
    load: (json, get, shape) => ({ kind, ...loadFixed(json, get, '', shape, kind) }),
  };
}

/** Deterministic Linear and Conv2d layers: one integer weight, the same for every sample. */
export const fixedForm: IntegerForm<FixedWeights> = {
  kind: 'fixed',
  points: [{ name: 'weight', signed: true }],
  fromFloat(ctx) {
    const d = ctx.deterministic;
    if (!d) throw new QbnnError('ERR_ARG', `convert: '${ctx.path}' has no deterministic weight`);
    const wq = ctx.point('weight', { values: d.weight });
    return {
      weights: { kind: 'fixed', w: ctx.quantize(d.weight, wq) as Int8Array, wq, bias: ctx.bias(d.bias) },
    };
  },
  ...storedWeightForm('fixed'),
};
