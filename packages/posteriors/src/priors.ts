import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * A Gaussian prior N(mean, sigma^2) over every element of a parameter tensor. `mean` and
 * `sigma` are numbers, or tensors broadcastable to the parameter (MOPED / empirical Bayes put
 * the trained deterministic weights in `mean`).
 */
export interface GaussianPrior {
  readonly kind: 'gaussian';
  readonly mean: number | tf.Tensor;
  readonly sigma: number | tf.Tensor;
}

/** Separate priors for a layer's weight and bias (bias defaults to the weight's). */
export interface LayerPrior {
  readonly weight: GaussianPrior;
  readonly bias?: GaussianPrior;
}

/** A prior handed to {@link Posterior.getKl}: one for all tensors, or one per tensor. */
export type Prior = GaussianPrior | LayerPrior;

/**
 * A Gaussian prior. Defaults N(0, 1) as in Bayesian-Torch.
 * @throws QbnnError ERR_ARG if a numeric sigma is not a positive finite number.
 */
export function gaussianPrior(mean: number | tf.Tensor = 0, sigma: number | tf.Tensor = 1): GaussianPrior {
  if (typeof sigma === 'number' && !(sigma > 0 && Number.isFinite(sigma))) {
    throw new QbnnError('ERR_ARG', `gaussianPrior: sigma must be a positive finite number, got ${sigma}`);
  }
  if (typeof mean === 'number' && !Number.isFinite(mean)) {
    throw new QbnnError('ERR_ARG', `gaussianPrior: mean must be finite, got ${mean}`);
  }
  return { kind: 'gaussian', mean, sigma };
}

/** The prior of one tensor (`weight` or `bias`) of a layer. */
export function priorFor(prior: Prior, param: 'weight' | 'bias'): GaussianPrior {
  if ('kind' in prior) {
    if (prior.kind !== 'gaussian') {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `prior kind ${(prior as { kind: string }).kind} is not supported`,
      );
    }
    return prior;
  }
  if (param === 'bias' && prior.bias) return prior.bias;
  return prior.weight;
}

/** `mean` and `sigma` of a Gaussian prior as tensors (scalars for numbers). */
export function priorTensors(p: GaussianPrior): { mean: tf.Tensor; sigma: tf.Tensor } {
  return {
    mean: typeof p.mean === 'number' ? tf.scalar(p.mean) : p.mean,
    sigma: typeof p.sigma === 'number' ? tf.scalar(p.sigma) : p.sigma,
  };
}
