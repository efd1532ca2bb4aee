import { roundHalfEven } from '../quant/round.js';
import { qnormalFill } from '../rng/qnormal.js';
import { type JsPackedWeights, makePacked } from './pack.js';
import type { GaussianSampleArgs, QNormalArgs } from './types.js';
import { checkGaussianSampleArgs, checkQNormalArgs } from './validate.js';

/** The reference `qnormal` of the contract: fills args.out from the stream (key, position). */
export function qnormal(args: QNormalArgs): Int8Array {
  checkQNormalArgs(args);
  return qnormalFill(args.key, args.position, args.out);
}

/**
 * The reference fused Gaussian weight sampler (GaussianSampleArgs in types.ts), returning the
 * sampled s8 weights [n, k] row-major. Consumes ceil(n k / 4) blocks from args.position.
 */
export function sampleGaussianWeights(args: GaussianSampleArgs): Int8Array {
  const { n, k, qmin, qmax } = checkGaussianSampleArgs(args);
  const size = n * k;
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
