import { normalTensor, type Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { sizeOf } from './init.js';
import {
  crossFromStats,
  fusedKlApplies,
  gaussianEntropyTerm,
  gaussianKlClosedFused,
  gaussianStatsTensors,
} from './kl.js';
import { type LocScaleOptions, LocScalePosterior } from './locscale.js';
import { type GaussianPrior, type Prior, priorFor } from './priors.js';
import type { KlOptions, PosteriorSpec, SamplingMode } from './types.js';

/** Options of the `gaussian` posterior. */
export interface GaussianOptions extends LocScaleOptions {}

/**
 * Mean-field Gaussian posterior (Bayes by Backprop, Blundell et al. 2015): every weight
 * w = mu + softplus(rho) * xi with xi ~ N(0, 1) independent. Parameters `weight_mu`,
 * `weight_rho`, `bias_mu`, `bias_rho`. Modes: `local` (the default, lowest-variance training),
 * `weights`, `flipout`, `mean`. KL: `closed`, `direct`, `repar` (t1, t2 drawn exactly in
 * O(#params) whatever M is).
 */
export class GaussianPosterior extends LocScalePosterior {
  readonly kind: string = 'gaussian';
  readonly modes: readonly SamplingMode[] = ['local', 'weights', 'flipout', 'mean'];
  override readonly defaultMode: SamplingMode = 'local';

  constructor(spec: PosteriorSpec, options: GaussianOptions = {}) {
    super(spec, options);
  }

  protected drawXiValues(shape: readonly number[], rng: Rng): Float32Array {
    return rng.normal(sizeOf(shape));
  }

  /** The same values as {@link drawXiValues}, drawn straight into the backend's memory. */
  protected override drawXi(shape: readonly number[], rng: Rng): tf.Tensor {
    return normalTensor(rng, shape);
  }

  /** The closed-form KL as one fused kernel per tensor where it applies (scalar priors). */
  override getKl(prior: Prior, options: KlOptions = {}): tf.Scalar {
    const m = options.nMcIter ?? 1;
    if ((options.method ?? 'closed') === 'closed' && Number.isSafeInteger(m) && m >= 1) {
      const parts = this.params.map((p) => ({ p, prior: priorFor(prior, p.role) }));
      if (parts.every(({ prior: q }) => fusedKlApplies(q)))
        return tf.tidy(
          () => tf.addN(parts.map(({ p, prior: q }) => gaussianKlClosedFused(p.mu, p.rho, q)!)) as tf.Scalar,
        );
    }
    return super.getKl(prior, options);
  }

  protected entropyTerm(logSigma: tf.Tensor): tf.Scalar {
    return gaussianEntropyTerm(logSigma);
  }

  protected crossClosed(mu: tf.Tensor, sigma: tf.Tensor, prior: GaussianPrior): tf.Scalar {
    return crossFromStats(mu, sigma, prior, 0, 1);
  }

  protected override reparStats(
    shape: readonly number[],
    m: number,
    rng: Rng,
  ): { t1: tf.Tensor; t2: tf.Tensor } {
    return gaussianStatsTensors(shape, m, rng);
  }
}
