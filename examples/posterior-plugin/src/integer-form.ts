/**
 * The low-rank posterior's integer form for @qbnn/qat, registered from outside qbnn: how its
 * layers become integers (convert), how one Monte Carlo weight sample is drawn in integers in
 * the integer engine, its float64 reference, its size and its safetensors serialisation.
 *
 * Stored per layer: mu_q (s8), sigma_q (u8), v_q (s8), each with its own per-channel params,
 * and the observed params of the noise n = Q(sigma eps + v z) and of the weight w = Q(mu + n),
 * the points the posterior reports to QAT's hook. Sample l draws eps from the quantised standard
 * normal at position l * ceil(N K / 4) of the layer's weight stream and z from its scalar stream,
 * so every sample is a fresh draw of the posterior (L = 100 gives 100 different weights).
 */
import { type PackedWeights, QbnnError, QNORMAL_SCALE, qnormalFill, roundHalfEven } from '@qbnn/core';
import {
  type FromFloatContext,
  type IntegerForm,
  type IntegerWeights,
  type QParams,
  qparamsFromJson,
  qparamsToJson,
  registerIntegerForm,
  scalarNormal,
} from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { LowRankGaussianPosterior } from './posterior.js';

/** A low-rank Gaussian layer stored as integers. */
export interface LowRankWeights extends IntegerWeights {
  kind: 'lowrank';
  mu: Int8Array;
  muQ: QParams;
  sigma: Uint8Array;
  sigmaQ: QParams;
  v: Int8Array;
  vQ: QParams;
  noiseQ: QParams;
  weightQ: QParams;
  /** The bias posterior in float (biases are int32 at run time): b = mu + sigma eps + v z. */
  bias?: { mu: Float32Array; sigma: Float32Array; v: Float32Array };
}

/** Per-channel (scale, zero point) of params, broadcast to n channels. */
function perChannel(p: QParams, n: number): { s: Float64Array; z: Int32Array } {
  const one = p.scale.length === 1;
  return {
    s: Float64Array.from({ length: n }, (_, c) => p.scale[one ? 0 : c]),
    z: Int32Array.from({ length: n }, (_, c) => p.zeroPoint[one ? 0 : c]),
  };
}

function intRange(p: QParams): [number, number] {
  return p.signed ? [-(2 ** (p.bits - 1)), 2 ** (p.bits - 1) - 1] : [0, 2 ** p.bits - 1];
}

function fromFloat(ctx: FromFloatContext) {
  const p = ctx.posterior;
  if (!(p instanceof LowRankGaussianPosterior)) {
    throw new QbnnError(
      'ERR_ARG',
      `convert: '${ctx.path}': the lowrank form needs a LowRankGaussianPosterior`,
    );
  }
  const [w, b] = p.parts;
  const sigma = tf.softplus(w.rho);
  const muQ = ctx.point('mu', { values: w.mu });
  const sigmaQ = ctx.point('sigma', { values: sigma });
  // v is not a sampling point (the hook never sees it): its params are observed from the tensor
  const vQ = ctx.point('v', { values: w.v });
  const weights: LowRankWeights = {
    kind: 'lowrank',
    mu: ctx.quantize(w.mu, muQ) as Int8Array,
    muQ,
    sigma: ctx.quantize(sigma, sigmaQ) as Uint8Array,
    sigmaQ,
    v: ctx.quantize(w.v, vQ) as Int8Array,
    vQ,
    noiseQ: ctx.point('noise'),
    weightQ: ctx.point('weight'),
  };
  if (b) {
    weights.bias = {
      mu: ctx.bias(b.mu) as Float32Array,
      sigma: Float32Array.from(tf.softplus(b.rho).dataSync()),
      v: Float32Array.from(b.v.dataSync()),
    };
  }
  return { weights };
}

/** The real bias of sample l: mu + sigma eps S + v z (eps from the bias stream, z its scalar draw). */
function biasOf(w: LowRankWeights, eps: Int8Array, z: number): Float64Array | undefined {
  const b = w.bias;
  if (!b) return undefined;
  return Float64Array.from(b.mu, (m, i) => m + b.sigma[i] * eps[i] * QNORMAL_SCALE + b.v[i] * z);
}

/** The integer form of the `lowrank` posterior. */
export const lowRankForm: IntegerForm<LowRankWeights> = {
  kind: 'lowrank',
  posteriors: ['lowrank'],
  points: [
    { name: 'mu', signed: true },
    { name: 'sigma', signed: false },
    { name: 'v', signed: true },
    { name: 'noise', signed: true },
    { name: 'weight', signed: true },
  ],
  fromFloat,
  // a BatchNorm after the layer: f w = f mu + |f| sigma eps + f v z (eps is symmetric)
  foldBatchNorm(p, fold) {
    if (!(p instanceof LowRankGaussianPosterior)) {
      throw new QbnnError('ERR_ARG', `foldBatchNorm: the lowrank form needs a LowRankGaussianPosterior`);
    }
    const [w, b] = p.parts;
    fold.scaleRows(w.mu);
    fold.scaleSoftplus(w.rho);
    fold.scaleRows(w.v);
    if (!b) return false;
    fold.foldBias(b.mu);
    fold.scaleSoftplus(b.rho);
    fold.scaleRows(b.v);
    return true;
  },
  stochastic: () => true,
  /**
   * n_q = clamp(round((sigma_q - Z_s) eps_q a1[c] + (v_q - Z_v) a2[c]) + Z_n) with
   * a1 = S_eps S_sigma / S_n and a2 = S_v z / S_n; w_q = clamp(round((mu_q - Z_mu) S_mu / S_w +
   * (n_q - Z_n) S_n / S_w) + Z_w), packed for the provider's GEMM (and freed after it).
   */
  sample(w, { n, k, l, provider, streams, memo }) {
    const c = memo(w, 'lowrank-constants', () => ({
      mu: perChannel(w.muQ, n),
      sig: perChannel(w.sigmaQ, n),
      v: perChannel(w.vQ, n),
      noise: perChannel(w.noiseQ, n),
      weight: perChannel(w.weightQ, n),
    }));
    const eps = provider.qnormal({
      key: streams.weight,
      position: l * Math.ceil((n * k) / 4),
      out: new Int8Array(n * k),
    });
    const z = scalarNormal(streams, l, 0);
    const [nlo, nhi] = intRange(w.noiseQ);
    const [wlo, whi] = intRange(w.weightQ);
    const q = new Int8Array(n * k);
    for (let o = 0; o < n; o++) {
      const a1 = (QNORMAL_SCALE * c.sig.s[o]) / c.noise.s[o];
      const a2 = (c.v.s[o] * z) / c.noise.s[o];
      const m2 = c.mu.s[o] / c.weight.s[o];
      const m3 = c.noise.s[o] / c.weight.s[o];
      for (let i = o * k; i < (o + 1) * k; i++) {
        const t = (w.sigma[i] - c.sig.z[o]) * eps[i] * a1 + (w.v[i] - c.v.z[o]) * a2;
        const nq = Math.min(nhi, Math.max(nlo, roundHalfEven(t) + c.noise.z[o]));
        const u = (w.mu[i] - c.mu.z[o]) * m2 + (nq - c.noise.z[o]) * m3;
        q[i] = Math.min(whi, Math.max(wlo, roundHalfEven(u) + c.weight.z[o]));
      }
    }
    const packed: PackedWeights = provider.packWeights(q, n, k, c.weight.z);
    const epsB = qnormalFill(streams.bias, l * Math.ceil(n / 4), new Int8Array(n));
    return { packed, wScale: c.weight.s, bias: biasOf(w, epsB, scalarNormal(streams, l, 1)), owned: true };
  },
  // rank-one correlation across the tensor: no local reparameterisation
  reference(w, { n, k, l, streams }) {
    const mu = perChannel(w.muQ, n);
    const sig = perChannel(w.sigmaQ, n);
    const v = perChannel(w.vQ, n);
    const ns = perChannel(w.noiseQ, n);
    const ws = perChannel(w.weightQ, n);
    const [nlo, nhi] = intRange(w.noiseQ);
    const [wlo, whi] = intRange(w.weightQ);
    const fq = (x: number, s: number, zp: number, lo: number, hi: number) =>
      s * (Math.min(hi, Math.max(lo, roundHalfEven(x / s) + zp)) - zp);
    const eps = qnormalFill(streams.weight, l * Math.ceil((n * k) / 4), new Int8Array(n * k));
    const z = scalarNormal(streams, l, 0);
    const out = new Float64Array(n * k);
    for (let i = 0; i < n * k; i++) {
      const o = Math.floor(i / k);
      const noise =
        sig.s[o] * (w.sigma[i] - sig.z[o]) * eps[i] * QNORMAL_SCALE + v.s[o] * (w.v[i] - v.z[o]) * z;
      const m = mu.s[o] * (w.mu[i] - mu.z[o]);
      out[i] = fq(m + fq(noise, ns.s[o], ns.z[o], nlo, nhi), ws.s[o], ws.z[o], wlo, whi);
    }
    const epsB = qnormalFill(streams.bias, l * Math.ceil(n / 4), new Int8Array(n));
    return { w: out, b: biasOf(w, epsB, scalarNormal(streams, l, 1)), wScale: ws.s };
  },
  sizeBytes: (w) =>
    w.mu.length * 3 +
    (w.bias ? w.bias.mu.length * 12 : 0) +
    12 * [w.muQ, w.sigmaQ, w.vQ, w.noiseQ, w.weightQ].reduce((a, p) => a + p.scale.length, 0),
  weightBits: (w) => w.weightQ.bits,
  save(w, put, { n, k }) {
    put('mu', { dtype: 'I8', shape: [n, k], data: w.mu });
    put('sigma', { dtype: 'U8', shape: [n, k], data: w.sigma });
    put('v', { dtype: 'I8', shape: [n, k], data: w.v });
    if (w.bias) {
      put('bias_mu', { dtype: 'F32', shape: [n], data: w.bias.mu });
      put('bias_sigma', { dtype: 'F32', shape: [n], data: w.bias.sigma });
      put('bias_v', { dtype: 'F32', shape: [n], data: w.bias.v });
    }
    const params = { muQ: w.muQ, sigmaQ: w.sigmaQ, vQ: w.vQ, noiseQ: w.noiseQ, weightQ: w.weightQ };
    return {
      ...Object.fromEntries(Object.entries(params).map(([key, p]) => [key, qparamsToJson(p)])),
      bias: !!w.bias,
    };
  },
  load(j, get, { n, k }) {
    const p = (key: string) => qparamsFromJson(j[key], `lowrank ${key}`, n);
    return {
      kind: 'lowrank',
      mu: get('mu', 'I8', n * k),
      sigma: get('sigma', 'U8', n * k),
      v: get('v', 'I8', n * k),
      muQ: p('muQ'),
      sigmaQ: p('sigmaQ'),
      vQ: p('vQ'),
      noiseQ: p('noiseQ'),
      weightQ: p('weightQ'),
      bias: j.bias
        ? { mu: get('bias_mu', 'F32', n), sigma: get('bias_sigma', 'F32', n), v: get('bias_v', 'F32', n) }
        : undefined,
    };
  },
};

/** Registers the integer form (done on import of the plugin; safe to call again). */
export function registerLowRankIntegerForm(): void {
  registerIntegerForm(lowRankForm, { replace: true });
}
