import { crossEntropy, type FitResult, fit, type Module } from '@qbnn/nn';
import {
  bayesLayers,
  elboLoss,
  gaussianNll,
  modelKl,
  restoreModes,
  SghmcSampler,
  setSamplingMode,
} from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { InterruptedError, isInterrupted } from '../interrupt.js';
import { startProgress } from '../progress.js';
import { isEnsemble, isVariational } from './models.js';

/** Options of {@link trainBayes}. */
export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Adam learning rate (default 2e-3), or the SGHMC sampler's lr (default 0.5, step lr / sqrt(N)). */
  lr?: number;
  /** KL weight of the ELBO (1 = the true ELBO). */
  beta: number;
  seed: number;
  task: 'classification' | 'regression';
  /** SGHMC: ensemble members to collect after burn-in. */
  members: number;
  /** Label of the progress bar. */
  label: string;
  quiet: boolean;
}

/** How a model was trained (for the output and the report). */
export interface TrainSummary {
  objective: string;
  epochs: number;
  steps: number;
  seconds: number;
  finalLoss: number;
  members: number;
}

function nllOf(task: TrainOptions['task'], out: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return task === 'classification' ? crossEntropy(out, y) : gaussianNll(out, y);
}

/**
 * Trains a Bayesian model. Variational posteriors (every layer has a KL: Gaussian, Radial, MC
 * Dropout, most plugins) minimise the per-example negative ELBO, NLL + beta KL / N, with Adam,
 * sampling one weight per batch (`weights` mode) when every layer supports it. SGHMC runs the
 * scale-adapted SGHMC sampler on NLL + negLogPrior / N, burns in for half the steps and collects
 * `members` weight sets evenly over the rest. Any other posterior trains on the NLL alone.
 * Ctrl-C stops after the current step and throws {@link InterruptedError} (nothing is saved).
 */
export async function trainBayes(
  model: Module,
  data: { x: tf.Tensor; y: tf.Tensor },
  opts: TrainOptions,
): Promise<TrainSummary> {
  const n = data.x.shape[0];
  const ensemble = isEnsemble(model);
  const variational = !ensemble && isVariational(model);
  const layers = bayesLayers(model);
  const canWeights = layers.length > 0 && layers.every(([, l]) => l.posterior.modes.includes('weights'));
  const gaussianLike = layers.every(([, l]) => ['gaussian', 'radial'].includes(l.posterior.kind));
  const modes = setSamplingMode(model, canWeights && gaussianLike ? 'weights' : undefined);
  const stepsPerEpoch = Math.ceil(n / opts.batchSize);
  const totalSteps = opts.epochs * stepsPerEpoch;
  const progress = startProgress(opts.label, totalSteps, 'steps', opts.quiet);
  const controller = new AbortController();
  let optimizer: tf.Optimizer | undefined;
  let objective = 'NLL';
  let loss: (m: Module, x: tf.Tensor, y: tf.Tensor) => tf.Scalar;
  const burnIn = Math.floor(totalSteps / 2);
  const collectAt = new Set<number>();
  if (ensemble) {
    objective = 'SGHMC on NLL + negLogPrior / N';
    optimizer = new SghmcSampler({ lr: opts.lr ?? 0.5, datasetSize: n, burnIn, seed: opts.seed });
    const members = Math.max(1, opts.members);
    for (let k = 1; k <= members; k++) {
      collectAt.add(burnIn + Math.max(1, Math.round(((totalSteps - burnIn) * k) / members)));
    }
    loss = (m, x, y) =>
      tf.tidy(() => {
        let prior: tf.Tensor = tf.scalar(0);
        for (const [, l] of bayesLayers(m)) {
          const p = l.posterior as { negLogPrior?: () => tf.Scalar };
          if (p.negLogPrior) prior = tf.add(prior, p.negLogPrior());
        }
        return tf.add(nllOf(opts.task, m.apply(x), y), tf.div(prior, n)) as tf.Scalar;
      });
  } else if (variational) {
    objective = `ELBO (NLL + ${opts.beta} KL / N)`;
    loss = (m, x, y) =>
      elboLoss(nllOf(opts.task, m.apply(x), y), modelKl(m), { datasetSize: n, beta: opts.beta });
  } else {
    loss = (m, x, y) => nllOf(opts.task, m.apply(x), y);
  }
  let lastLoss = Number.NaN;
  let result: FitResult;
  let collected = 0;
  try {
    result = await fit(model, data, {
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: optimizer ? undefined : (opts.lr ?? 2e-3),
      optimizer: optimizer ?? 'adam',
      seed: opts.seed,
      loss,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type !== 'step') return;
        lastLoss = e.loss;
        if (collectAt.has(e.globalStep)) {
          for (const [, l] of bayesLayers(model)) (l.posterior as unknown as { collect(): number }).collect();
          collected++;
        }
        progress.update(e.globalStep, { loss: e.loss });
        if (isInterrupted()) controller.abort();
      },
    });
  } finally {
    progress.stop();
    restoreModes(model, modes);
    if (optimizer) optimizer.dispose();
  }
  if (result.stopped === 'aborted') throw new InterruptedError();
  if (ensemble && collected === 0) {
    for (const [, l] of bayesLayers(model)) (l.posterior as unknown as { collect(): number }).collect();
    collected = 1;
  }
  return {
    objective,
    epochs: result.epochs,
    steps: result.steps,
    seconds: result.seconds,
    finalLoss: result.epochLoss[result.epochLoss.length - 1] ?? lastLoss,
    members: collected,
  };
}
