import { QbnnError } from '@qbnn/core';
import type { Module } from '@qbnn/nn';
import { type BayesLayer, bayesLayers, type GaussianPrior, gaussianPrior, priorFor } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';

/** A prior part held per element in the checkpoint: the shape of its mean and sigma buffers. */
export interface PriorBuffersConfig {
  shape: number[];
}

const PARTS = ['weight', 'bias'] as const;
type Part = (typeof PARTS)[number];

/** Bayesian-Torch's buffer names of a layer's prior, which the held buffers take too. */
export const priorBufferNames = (part: Part): [string, string] => [`prior_${part}_mu`, `prior_${part}_sigma`];

/** The state-dict keys a model's Bayesian layers may hold prior buffers under. */
export function priorBufferKeys(model: Module): Set<string> {
  const names = PARTS.flatMap(priorBufferNames);
  return new Set(bayesLayers(model).flatMap(([path]) => names.map((n) => (path ? `${path}.${n}` : n))));
}

const isTensor = (v: number | tf.Tensor): v is tf.Tensor => typeof v !== 'number';

/**
 * Moves a layer's per-element prior (a prior whose mean or sigma is a tensor, as an older
 * Bayesian-Torch file's MOPED prior buffers give) into persistent buffers of the layer named as
 * in Bayesian-Torch (`prior_weight_mu`, ...), so that its checkpoint keeps it: a config can hold
 * only numbers. The layer's prior then reads the buffers; the tensors it held are disposed.
 * Returns the parts so held, with their shapes, for the model's config.
 */
export function holdTensorPrior(layer: BayesLayer): Partial<Record<Part, PriorBuffersConfig>> {
  const held: Partial<Record<Part, PriorBuffersConfig>> = {};
  const parts = {} as Record<Part, GaussianPrior | undefined>;
  for (const part of PARTS) {
    const pr = layer.prior;
    const p = part === 'weight' ? priorFor(pr, 'weight') : 'kind' in pr ? undefined : pr.bias;
    parts[part] = p;
    if (!p || (!isTensor(p.mean) && !isTensor(p.sigma))) continue;
    const shape = (isTensor(p.mean) ? p.mean : (p.sigma as tf.Tensor)).shape;
    const [mu, sigma] = priorBufferNames(part);
    const asTensor = (v: number | tf.Tensor) => (isTensor(v) ? v : tf.fill(shape, v));
    parts[part] = gaussianPrior(
      tf.tidy(() => layer.registerBuffer(mu, asTensor(p.mean))),
      tf.tidy(() => layer.registerBuffer(sigma, asTensor(p.sigma))),
    );
    for (const v of [p.mean, p.sigma]) if (isTensor(v)) v.dispose();
    held[part] = { shape: [...shape] };
  }
  if (Object.keys(held).length > 0) layer.prior = { weight: parts.weight as GaussianPrior, bias: parts.bias };
  return held;
}

/**
 * Gives a freshly built layer the buffers {@link holdTensorPrior} saved (zeros and ones, which
 * loading the checkpoint's state dict then overwrites) and points its prior at them.
 */
export function makePriorBuffers(
  layer: BayesLayer,
  held: Partial<Record<Part, PriorBuffersConfig>>,
  constant: Partial<Record<Part, GaussianPrior>>,
): void {
  const parts = { ...constant };
  // The shapes come from a file: no larger than the layer's largest parameter, which the
  // checkpoint's own tensors already bound, before anything is allocated.
  const largest = Math.max(0, ...[...layer.posterior.parameters().values()].map((v) => v.size));
  for (const part of PARTS) {
    const h = held[part];
    if (!h) continue;
    const shape: unknown = h.shape;
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isInteger(d) && d >= 0) ||
      shape.reduce((a: number, d: number) => a * d, 1) > largest
    ) {
      throw new QbnnError(
        'ERR_FORMAT',
        `prior of ${layer.constructor.name}.${part}: buffer shape ${JSON.stringify(shape)} must be non-negative integers of at most ${largest} elements (the layer's largest parameter)`,
      );
    }
    const [mu, sigma] = priorBufferNames(part);
    parts[part] = gaussianPrior(
      tf.tidy(() => layer.registerBuffer(mu, tf.zeros(h.shape))),
      tf.tidy(() => layer.registerBuffer(sigma, tf.ones(h.shape))),
    );
  }
  if (parts.weight) layer.prior = { weight: parts.weight, bias: parts.bias };
}
