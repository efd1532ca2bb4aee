import { QbnnError, roundHalfEven } from '@qbnn/core';
import type { FixedWeights } from '../src/forms/fixed.js';
import type { GaussianWeights } from '../src/forms/gaussian.js';
import { paramsFromRange } from '../src/params.js';
import type { QParams, QuantParams } from '../src/spec.js';

export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function gauss(rnd: () => number): number {
  const u = Math.max(rnd(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

/** Per-channel (axis 0) params of a [n, k] tensor. */
export function channelParams(
  v: Float64Array,
  n: number,
  k: number,
  bits: number,
  signed: boolean,
  perChannel = true,
): QParams {
  if (!perChannel) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of v) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    return paramsFromRange(Float64Array.of(lo), Float64Array.of(hi), { bits, signed, symmetric: false });
  }
  const min = new Float64Array(n).fill(Infinity);
  const max = new Float64Array(n).fill(-Infinity);
  for (let i = 0; i < n * k; i++) {
    const c = Math.floor(i / k);
    min[c] = Math.min(min[c], v[i]);
    max[c] = Math.max(max[c], v[i]);
  }
  return paramsFromRange(min, max, { bits, signed, symmetric: false, axis: 0 });
}

export function quantizeWith(v: Float64Array, p: QParams, k: number): number[] {
  const { qmin, qmax } = p.signed
    ? { qmin: -(2 ** (p.bits - 1)), qmax: 2 ** (p.bits - 1) - 1 }
    : { qmin: 0, qmax: 2 ** p.bits - 1 };
  return Array.from(v, (x, i) => {
    const c = p.scale.length === 1 ? 0 : Math.floor(i / k);
    return Math.min(qmax, Math.max(qmin, roundHalfEven(x / p.scale[c]) + p.zeroPoint[c]));
  });
}

export function randomGaussianWeights(
  rnd: () => number,
  n: number,
  k: number,
  bits: number,
  kind: 'gaussian' | 'radial' = 'gaussian',
  perChannel = true,
): GaussianWeights {
  const mu = Float64Array.from({ length: n * k }, () => gauss(rnd) * 0.3);
  const sigma = Float64Array.from({ length: n * k }, () => 0.02 + rnd() * 0.1);
  const muQ = channelParams(mu, n, k, bits, true, perChannel);
  const sigmaQ = channelParams(sigma, n, k, bits, false, perChannel);
  const noise = Float64Array.from(sigma, (s) => s * 3.1);
  const noiseRange = Float64Array.from(noise, (v, i) => (i % 2 ? v : -v));
  const noiseQ = channelParams(noiseRange, n, k, bits, true, perChannel);
  const wRange = Float64Array.from(mu, (m, i) => m + (i % 2 ? noise[i] : -noise[i]));
  const weightQ = channelParams(wRange, n, k, bits, true, perChannel);
  return {
    kind,
    mu: Int8Array.from(quantizeWith(mu, muQ, k)),
    muQ,
    sigma: Uint8Array.from(quantizeWith(sigma, sigmaQ, k)),
    sigmaQ,
    noiseQ,
    weightQ,
    bias: {
      mu: Float32Array.from({ length: n }, () => gauss(rnd) * 0.1),
      sigma: Float32Array.from({ length: n }, () => 0.01 + rnd() * 0.05),
    },
  };
}

export function randomFixedWeights(rnd: () => number, n: number, k: number, bits: number): FixedWeights {
  const w = Float64Array.from({ length: n * k }, () => gauss(rnd) * 0.3);
  const wq = channelParams(w, n, k, bits, true);
  return {
    kind: 'fixed',
    w: Int8Array.from(quantizeWith(w, wq, k)),
    wq,
    bias: Float32Array.from({ length: n }, () => gauss(rnd) * 0.1),
  };
}

export function act(lo: number, hi: number, bits = 8): QuantParams {
  const p = paramsFromRange(Float64Array.of(lo), Float64Array.of(hi), {
    bits,
    signed: false,
    symmetric: false,
  });
  return { scale: p.scale[0], zeroPoint: p.zeroPoint[0], bits, signed: false };
}

/** `code: message` of the QbnnError `fn` throws ('ok' when it returns); any other error fails the test. */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof QbnnError) return `${e.code}: ${e.message}`;
    throw new Error(`untyped error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  return 'ok';
}
