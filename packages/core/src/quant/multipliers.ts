import type { ChannelScales } from '../kernels/types.js';
import { QNORMAL_SCALE } from '../rng/qnormal.js';
import { checkInt, checkPositiveScale, perChannelF64 } from './checks.js';

/**
 * The GEMM requantisation multipliers of the kernel contract (kernels/types.ts), length n:
 * `m[c] = (aScale * wScale[c]) / outScale`, in float64 in exactly that order. Every provider
 * consumes these values rather than recomputing them, so JS and native agree bit for bit.
 */
export function requantMultipliers(
  aScale: number,
  wScale: ChannelScales,
  outScale: number,
  n: number,
): Float64Array {
  checkPositiveScale('aScale', aScale);
  checkPositiveScale('outScale', outScale);
  checkInt('n', n, 1, 2 ** 31 - 1);
  const w = perChannelF64('wScale', wScale, n, checkPositiveScale);
  const m = new Float64Array(n);
  for (let c = 0; c < n; c++) m[c] = (aScale * w[c]) / outScale;
  return m;
}

/**
 * The float-output scales of the contract, length n: `s[c] = aScale * wScale[c]` in float64
 * (a float32 GEMM output is `float32(acc * s[c])`).
 */
export function accumulatorScales(aScale: number, wScale: ChannelScales, n: number): Float64Array {
  checkPositiveScale('aScale', aScale);
  checkInt('n', n, 1, 2 ** 31 - 1);
  const w = perChannelF64('wScale', wScale, n, checkPositiveScale);
  const s = new Float64Array(n);
  for (let c = 0; c < n; c++) s[c] = aScale * w[c];
  return s;
}

/** Scales of the fused Gaussian weight sampler, each per-tensor or per output channel. */
export interface GaussianSampleScales {
  /** Scale of the stored means mu_q. */
  muScale: ChannelScales;
  /** Scale of the stored standard deviations sigma_q. */
  sigmaScale: ChannelScales;
  /** Observed scale of the noise n = Q(eps * sigma). */
  noiseScale: ChannelScales;
  /** Observed scale of the sampled weight w = Q(mu + n). */
  weightScale: ChannelScales;
  /** Scale of eps; default QNORMAL_SCALE (3/127). */
  epsScale?: number;
  /** Number of output channels N. */
  n: number;
}

/**
 * The float64 multipliers of `GaussianSampleArgs` (kernels/types.ts), each of length n:
 * `m1 = (epsScale * sigmaScale) / noiseScale`, `m2 = muScale / weightScale`,
 * `m3 = noiseScale / weightScale`, computed in exactly that order.
 */
export function gaussianSampleMultipliers(s: GaussianSampleScales): {
  m1: Float64Array;
  m2: Float64Array;
  m3: Float64Array;
} {
  const n = checkInt('n', s.n, 1, 2 ** 31 - 1);
  const eps = checkPositiveScale('epsScale', s.epsScale ?? QNORMAL_SCALE);
  const mu = perChannelF64('muScale', s.muScale, n, checkPositiveScale);
  const sig = perChannelF64('sigmaScale', s.sigmaScale, n, checkPositiveScale);
  const ns = perChannelF64('noiseScale', s.noiseScale, n, checkPositiveScale);
  const ws = perChannelF64('weightScale', s.weightScale, n, checkPositiveScale);
  const m1 = new Float64Array(n);
  const m2 = new Float64Array(n);
  const m3 = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    m1[c] = (eps * sig[c]) / ns[c];
    m2[c] = mu[c] / ws[c];
    m3[c] = ns[c] / ws[c];
  }
  return { m1, m2, m3 };
}
