import {
  gaussianSampleKlFused,
  gaussianSampleKlMany,
  normalLocScale,
  normalLocScaleFused,
  normalTensor,
  type Rng,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { sizeOf } from './init.js';
import {
  crossFromStats,
  fusedKlApplies,
  gaussianEntropyTerm,
  gaussianKlClosedFused,
  gaussianStatsTensors,
} from './kl.js';
import { type LocScaleOptions, type LocScaleParam, LocScalePosterior } from './locscale.js';
import { type GaussianPrior, type Prior, priorFor } from './priors.js';
import { sigmaOf } from './sample-scope.js';
import type { ForwardOptions, KlOptions, LayerOp, PosteriorSpec, SamplingMode } from './types.js';

/** A KL computed with a weight sample, valid for the prior, the parameters' data and the tape it saw. */
interface PendingKl {
  kl: tf.Scalar;
  prior: Prior;
  data: object[];
  tape: unknown;
}

/** The gradient tape recording now (tfjs's engine state), or null outside one. */
const activeTape = (): unknown =>
  (tf.engine().state as unknown as { activeTape: unknown }).activeTape ?? null;

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

  /**
   * With no gradient recording (inference), the normals drawn inside the sample kernel where the
   * backend has it (@qbnn/core's normalLocScale: the same values, eps never a tensor), with sigma
   * kept across a prediction's samples (see withSigmaCache). Else the location-scale sample.
   */
  protected override sampleParam(p: LocScaleParam, rng: Rng): tf.Tensor {
    if (activeTape() !== null || !normalLocScaleFused()) return super.sampleParam(p, rng);
    return normalLocScale(p.mu, sigmaOf(p.rho), rng) as tf.Tensor;
  }

  /**
   * In training, weights mode, with the layer's prior given and scalar priors: each tensor's sample
   * and closed-form KL as one fused kernel each way (@qbnn/core's gaussianSampleKlMany, weight and bias in one call), the KL kept
   * for the next {@link getKl} with that prior. Elsewhere the location-scale forward.
   */
  override forward(x: tf.Tensor, op: LayerOp, options: ForwardOptions = {}): tf.Tensor {
    const prior = options.klPrior;
    const parts = prior ? this.params.map((p) => ({ p, q: priorFor(prior, p.role) })) : [];
    if (
      prior === undefined ||
      !options.training ||
      (options.mode ?? this.defaultMode) !== 'weights' ||
      options.hook !== undefined ||
      !gaussianSampleKlFused() ||
      !parts.every(({ q }) => fusedKlApplies(q))
    )
      return super.forward(x, op, options);
    const rng = options.rng ?? this.rng;
    const [kl, ...w] = tf.tidy(() => {
      // the weight's and the bias's noise in that order, then both samples and the KL in one call
      const drawn = gaussianSampleKlMany(
        parts.map(({ p, q }) => ({
          mu: p.mu,
          rho: p.rho,
          eps: this.drawXi(p.mu.shape, rng),
          prior: { mean: q.mean as number, sigma: q.sigma as number },
        })),
      )!;
      return [drawn.kl, ...drawn.w];
    });
    const y = tf.tidy(() => op.apply(x, w[0], w[1]));
    tf.dispose(w);
    this.pending?.kl.dispose();
    this.pending = { kl: kl as tf.Scalar, prior, data: this.paramData(), tape: activeTape() };
    return y;
  }

  private pending: PendingKl | undefined;

  private paramData(): object[] {
    return this.params.flatMap((p) => [p.mu.dataId, p.rho.dataId]);
  }

  /**
   * The KL the last forward computed, if it is the closed form to `prior` of the parameters as they
   * are now (no assign since) on the tape recording now; handed over once.
   */
  private takePendingKl(prior: Prior): tf.Scalar | undefined {
    const p = this.pending;
    if (p === undefined) return undefined;
    this.pending = undefined;
    const data = this.paramData();
    if (
      !p.kl.isDisposed &&
      p.prior === prior &&
      p.tape === activeTape() &&
      p.data.length === data.length &&
      p.data.every((d, i) => d === data[i])
    )
      return p.kl;
    p.kl.dispose();
    return undefined;
  }

  /** The closed-form KL as one fused kernel per tensor where it applies (scalar priors). */
  override getKl(prior: Prior, options: KlOptions = {}): tf.Scalar {
    const m = options.nMcIter ?? 1;
    if ((options.method ?? 'closed') === 'closed' && Number.isSafeInteger(m) && m >= 1) {
      const pending = this.takePendingKl(prior);
      if (pending) return pending;
      const parts = this.params.map((p) => ({ p, prior: priorFor(prior, p.role) }));
      if (parts.every(({ prior: q }) => fusedKlApplies(q)))
        return tf.tidy(
          () => tf.addN(parts.map(({ p, prior: q }) => gaussianKlClosedFused(p.mu, p.rho, q)!)) as tf.Scalar,
        );
    }
    return super.getKl(prior, options);
  }

  override dispose(): void {
    this.pending?.kl.dispose();
    this.pending = undefined;
    super.dispose();
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
