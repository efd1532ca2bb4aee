import { QbnnError } from '../errors.js';
import { checkInt, checkLength } from '../quant/checks.js';
import { qRange } from '../quant/params.js';
import { roundHalfEven } from '../quant/round.js';
import { qnormalFill } from '../rng/qnormal.js';
import { type JsPackedWeights, makePacked } from './pack.js';
import type { GaussianSampleArgs, QNormalArgs } from './types.js';

function checkKey(name: string, key: readonly [number, number], position: number): void {
  if (!Array.isArray(key) || key.length !== 2)
    throw new QbnnError('ERR_ARG', `${name}: key must be a pair of uint32`);
  checkInt(`${name}: key[0]`, key[0], 0, 0xffffffff);
  checkInt(`${name}: key[1]`, key[1], 0, 0xffffffff);
  checkInt(`${name}: position`, position, 0, Number.MAX_SAFE_INTEGER);
}

/** The reference `qnormal` of the contract: fills args.out from the stream (key, position). */
export function qnormal(args: QNormalArgs): Int8Array {
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'qnormal: args must be an object');
  checkKey('qnormal', args.key, args.position);
  return qnormalFill(args.key, args.position, args.out);
}

function zeroPoints(name: string, z: Int32Array, n: number, lo: number, hi: number): void {
  if (!(z instanceof Int32Array))
    throw new QbnnError('ERR_ARG', `sampleGaussian: ${name} must be an Int32Array`);
  checkLength(`sampleGaussian: ${name}`, z, n);
  for (let i = 0; i < n; i++) checkInt(`sampleGaussian: ${name}[${i}]`, z[i], lo, hi);
}

function multipliers(name: string, m: Float64Array, n: number): void {
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

/**
 * The reference fused Gaussian weight sampler (GaussianSampleArgs in types.ts), returning the
 * sampled s8 weights [n, k] row-major. Consumes ceil(n k / 4) blocks from args.position.
 */
export function sampleGaussianWeights(args: GaussianSampleArgs): Int8Array {
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'sampleGaussian: args must be an object');
  const n = checkInt('sampleGaussian: n', args.n, 1, 2 ** 31 - 1);
  const k = checkInt('sampleGaussian: k', args.k, 1, 2 ** 31 - 1);
  const { qmin, qmax } = qRange(args.bits, true);
  checkKey('sampleGaussian', args.key, args.position);
  const size = n * k;
  if (!(args.mu instanceof Int8Array))
    throw new QbnnError('ERR_ARG', 'sampleGaussian: mu must be an Int8Array');
  if (!(args.sigma instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'sampleGaussian: sigma must be a Uint8Array');
  checkLength('sampleGaussian: mu', args.mu, size);
  checkLength('sampleGaussian: sigma', args.sigma, size);
  zeroPoints('muZeroPoint', args.muZeroPoint, n, -128, 127);
  zeroPoints('sigmaZeroPoint', args.sigmaZeroPoint, n, 0, 255);
  zeroPoints('noiseZeroPoint', args.noiseZeroPoint, n, qmin, qmax);
  zeroPoints('weightZeroPoint', args.weightZeroPoint, n, qmin, qmax);
  multipliers('m1', args.m1, n);
  multipliers('m2', args.m2, n);
  multipliers('m3', args.m3, n);

  const out = qnormalFill(args.key, args.position, new Int8Array(size)); // eps, overwritten in place
  const { mu, sigma, muZeroPoint, sigmaZeroPoint, noiseZeroPoint, weightZeroPoint, m1, m2, m3 } = args;
  for (let r = 0; r < n; r++) {
    const zmu = muZeroPoint[r];
    const zs = sigmaZeroPoint[r];
    const zn = noiseZeroPoint[r];
    const zw = weightZeroPoint[r];
    const a = m1[r];
    const b = m2[r];
    const c = m3[r];
    for (let i = r * k, end = i + k; i < end; i++) {
      // Exactly the contract's order of float64 operations.
      const nq = Math.min(Math.max(roundHalfEven(out[i] * (sigma[i] - zs) * a) + zn, qmin), qmax);
      const wq = roundHalfEven((mu[i] - zmu) * b + (nq - zn) * c) + zw;
      out[i] = Math.min(Math.max(wq, qmin), qmax);
    }
  }
  return out;
}

/** The fused sampler returning the JS provider's packed weights (zero points = weightZeroPoint). */
export function sampleGaussianPacked(args: GaussianSampleArgs): JsPackedWeights {
  const w = sampleGaussianWeights(args);
  return makePacked(w, args.n, args.k, Int32Array.from(args.weightZeroPoint));
}
