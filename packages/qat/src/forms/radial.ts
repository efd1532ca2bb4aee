import { QNORMAL_SCALE } from '@qbnn/core';
import {
  foldLocScale,
  type GaussianWeights,
  LOC_SCALE_POINTS,
  loadLocScale,
  locScaleBytes,
  locScaleFromFloat,
  planLocScale,
  referenceLocScale,
  sampleLocScale,
  saveLocScale,
  validateLocScale,
} from './gaussian.js';
import { scalarNormal } from './streams.js';
import type { IntegerForm, LayerStreams } from './types.js';

/**
 * The radial radius |r|, r ~ N(0, 1), of sample l, tensor `which` (0 weight, 1 bias). The sign
 * of r is dropped: eps / ||eps|| is uniform on the sphere and symmetric, so u |r| and u r have
 * the same distribution, and the fused sampler needs a positive multiplier.
 */
function radius(streams: LayerStreams, l: number, which: 0 | 1): number {
  return Math.max(Math.abs(scalarNormal(streams, l, which)), 1e-12);
}

function sumSquares(eps: Int8Array): number {
  let ss = 0;
  for (let i = 0; i < eps.length; i++) ss += eps[i] * eps[i];
  return ss;
}

/**
 * Radial weights (Farquhar et al.): w = mu + sigma * (eps / ||eps||) * r over the layer's whole
 * weight tensor (and separately its bias). Stored like the Gaussian; the direction factor
 * r / ||eps|| scales the fused sampler's eps multiplier. No local reparameterisation (the
 * weights are not independent).
 */
export const radialForm: IntegerForm<GaussianWeights> = {
  kind: 'radial',
  posteriors: ['radial'],
  points: LOC_SCALE_POINTS,
  fromFloat: (ctx) => locScaleFromFloat('radial', ctx),
  foldBatchNorm: foldLocScale,
  stochastic: () => true,
  sample: (w, ctx) =>
    sampleLocScale(
      w,
      ctx,
      (position) => {
        // eps_real = S eps; xi = eps_real r / ||eps_real|| = eps (r / sqrt(ss)); relative to eps_real: / S
        const eps = ctx.provider.qnormal({
          key: ctx.streams.weight,
          position,
          out: new Int8Array(ctx.n * ctx.k),
        });
        const ss = sumSquares(eps);
        return ss > 0 ? radius(ctx.streams, ctx.l, 0) / (Math.sqrt(ss) * QNORMAL_SCALE) : 1e-12;
      },
      (eps) => {
        const ss = sumSquares(eps);
        const c = ss > 0 ? radius(ctx.streams, ctx.l, 1) / Math.sqrt(ss) : 0;
        return Float64Array.from(eps, (e) => e * c);
      },
    ),
  plan: (w, ctx) =>
    planLocScale(w, ctx, 'radial', (streams, l) => [radius(streams, l, 0), radius(streams, l, 1)]),
  reference: (w, ctx) =>
    referenceLocScale(w, ctx, (eps, which) => {
      // the definition: xi = r eps_real / ||eps_real||, eps_real = S eps
      const real = Float64Array.from(eps, (e) => e * QNORMAL_SCALE);
      let norm = 0;
      for (const v of real) norm += v * v;
      norm = Math.sqrt(norm);
      const r = radius(ctx.streams, ctx.l, which);
      return real.map((v) => (norm > 0 ? (v / norm) * r : 0));
    }),
  validate: validateLocScale,
  sizeBytes: locScaleBytes,
  weightBits: (w) => w.weightQ.bits,
  save: saveLocScale,
  load: (j, get, shape) => loadLocScale('radial', j, get, shape),
};
