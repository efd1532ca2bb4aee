import { QbnnError } from '@qbnn/core';
import {
  type CheckpointContents,
  checkFiniteTensor,
  checkInputBatch,
  checkPositiveInteger,
  type Module,
} from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { linkVariance, type VarianceLink } from './elbo.js';
import { BayesLayer } from './layers.js';
import { withSigmaCache } from './sample-scope.js';
import type { KlOptions, SamplingMode } from './types.js';

/** The Bayesian layers of a model with their paths, in module order. */
export function bayesLayers(model: Module): [string, BayesLayer][] {
  return model.namedModules().filter((e): e is [string, BayesLayer] => e[1] instanceof BayesLayer);
}

/** Sum of the layers' KL divergences (each to its own prior), in layer order. */
export function modelKl(model: Module, options?: KlOptions): tf.Scalar {
  const layers = bayesLayers(model);
  // one AddN (its gradient: a clone per layer) rather than a chain of adds and their gradients
  return tf.tidy(() =>
    layers.length === 0 ? tf.scalar(0) : (tf.addN(layers.map(([, l]) => l.kl(options))) as tf.Scalar),
  );
}

/**
 * Sets the sampling mode of every Bayesian layer (undefined: each posterior's default). Returns
 * the previous modes, to restore with {@link restoreModes}.
 * @throws QbnnError ERR_UNSUPPORTED if a layer's posterior lacks the mode (nothing is changed).
 */
export function setSamplingMode(model: Module, mode: SamplingMode | undefined): (SamplingMode | undefined)[] {
  const layers = bayesLayers(model);
  if (mode) {
    for (const [path, l] of layers) {
      if (!l.posterior.modes.includes(mode)) {
        throw new QbnnError(
          'ERR_UNSUPPORTED',
          `layer '${path}' (posterior '${l.posterior.kind}') does not support sampling mode '${mode}'`,
        );
      }
    }
  }
  return layers.map(([, l]) => {
    const old = l.mode;
    l.mode = mode;
    return old;
  });
}

/** Restores modes returned by {@link setSamplingMode}. */
export function restoreModes(model: Module, modes: (SamplingMode | undefined)[]): void {
  bayesLayers(model).forEach(([, l], i) => {
    l.mode = modes[i];
  });
}

/** Number of ensemble members of the model (0 if no layer holds an ensemble; error if layers disagree). */
export function ensembleSize(model: Module): number {
  const sizes = bayesLayers(model)
    .map(([, l]) => l.posterior.ensembleSize?.())
    .filter((s): s is number => s !== undefined);
  if (sizes.length === 0) return 0;
  if (sizes.some((s) => s !== sizes[0])) {
    throw new QbnnError('ERR_SHAPE', `ensemble layers hold different member counts: ${sizes.join(', ')}`);
  }
  return sizes[0];
}

/**
 * Allocates in every ensemble layer (SGHMC) exactly the members a checkpoint holds for it, so
 * the saved ensemble then loads with `loadStateDict`. The count is read from the file's tensors
 * (`<layer path>.member<k>_weight`, k = 0 .. K-1), never from a number in its metadata: a
 * config claiming 1e9 members cannot allocate what the file does not hold. Returns the largest
 * K. Call it on a freshly built model (empty ensembles), before loading the state.
 * @throws QbnnError ERR_FORMAT if a layer's members are not numbered 0 .. K-1.
 */
export function reserveEnsemble(model: Module, contents: CheckpointContents): number {
  const found = new Map<string, number[]>();
  for (const key of Object.keys(contents.tensors)) {
    const m = /^(?:(.*)\.)?member(\d+)_weight$/.exec(key);
    if (!m) continue;
    const list = found.get(m[1] ?? '') ?? [];
    list.push(Number(m[2]));
    found.set(m[1] ?? '', list);
  }
  let most = 0;
  for (const [path, layer] of bayesLayers(model)) {
    const posterior = layer.posterior as { reserveMembers?: (n: number) => void };
    const ks = (found.get(path) ?? []).sort((a, b) => a - b);
    if (!posterior.reserveMembers || ks.length === 0) continue;
    if (ks.some((k, i) => k !== i)) {
      throw new QbnnError(
        'ERR_FORMAT',
        `checkpoint: the members of layer '${path}' are not numbered 0..${ks.length - 1} (found ${ks.slice(0, 8).join(', ')}${ks.length > 8 ? ', ...' : ''})`,
      );
    }
    posterior.reserveMembers(ks.length);
    most = Math.max(most, ks.length);
  }
  return most;
}

/** Makes every ensemble layer use member `i` (null: the chain's current weights). */
export function selectMember(model: Module, i: number | null): void {
  for (const [, l] of bayesLayers(model)) l.posterior.select?.(i);
}

/** Options of {@link predict}. */
export interface PredictOptions {
  /**
   * Number of MC samples L, a positive integer. Default: the ensemble size for ensembles, else
   * 10. The returned values (`L * N * C`) may not exceed 2^28 (1 GiB of float32).
   */
  samples?: number;
  /**
   * Sampling mode for every Bayesian layer during prediction (default: each layer's own). With
   * `local` (Gaussian, MC Dropout) the L samples are stacked along the batch axis and computed
   * in one pass, since every example already gets an independent sample.
   */
  mode?: SamplingMode;
  /** `classification` (default): softmax probabilities. `regression`: a [N, 2] mean/variance head. */
  task?: 'classification' | 'regression';
  /** Variance link of a regression head. Default softplus. */
  varianceLink?: VarianceLink;
  /**
   * Largest number of rows in one forward pass (stacked samples count). Each pass runs in its own
   * tidy scope, so peak memory is one pass's activations. A positive integer, default 1024.
   */
  maxBatch?: number;
}

/** Per-sample predictions of {@link predict} for classification: probabilities `[L, N, C]`. */
export interface ClassificationPrediction {
  probs: tf.Tensor3D;
}
/** Per-sample predictions for regression: means and variances `[L, N]`. */
export interface RegressionPrediction {
  mean: tf.Tensor2D;
  variance: tf.Tensor2D;
}

/**
 * Monte Carlo predictive: runs the model L times with fresh posterior samples (in eval mode,
 * restored after) and returns per-sample outputs, from which the predictive mean and the
 * uncertainty metrics (@qbnn/metrics) follow. Ensembles (SGHMC) give one sample per member.
 * In `local` mode the samples are stacked along the batch axis ([L * N, ...], chunked by
 * `maxBatch`) instead of L separate passes. The caller disposes the returned tensors.
 */
export function predict(
  model: Module,
  x: tf.Tensor,
  options: PredictOptions & { task: 'regression' },
): RegressionPrediction;
export function predict(model: Module, x: tf.Tensor, options?: PredictOptions): ClassificationPrediction;
export function predict(
  model: Module,
  x: tf.Tensor,
  options: PredictOptions = {},
): ClassificationPrediction | RegressionPrediction {
  const members = ensembleSize(model);
  const samples = checkPositiveInteger('predict: samples', options.samples ?? (members > 0 ? members : 10));
  const maxBatch = checkPositiveInteger('predict: maxBatch', options.maxBatch ?? 1024);
  const task = options.task ?? 'classification';
  if (task !== 'classification' && task !== 'regression') {
    throw new QbnnError(
      'ERR_ARG',
      `predict: task must be 'classification' or 'regression', got ${String(task)}`,
    );
  }
  const n = checkInputBatch('predict: x', x).shape[0];
  if (samples * n > MAX_PREDICT_ELEMENTS) {
    throw new QbnnError(
      'ERR_ARG',
      `predict: samples = ${samples} for ${n} examples would return more than ${MAX_PREDICT_ELEMENTS} values`,
    );
  }
  return withSigmaCache(() => predictSamples(model, x, options, members, samples, maxBatch, task, n));
}

/** {@link predict} after its checks. */
function predictSamples(
  model: Module,
  x: tf.Tensor,
  options: PredictOptions,
  members: number,
  samples: number,
  maxBatch: number,
  task: 'classification' | 'regression',
  n: number,
): ClassificationPrediction | RegressionPrediction {
  const wasTraining = model.training;
  const modes = setSamplingMode(model, options.mode);
  model.eval();
  try {
    const layers = bayesLayers(model);
    const stack =
      members === 0 &&
      layers.length > 0 &&
      layers.every(([, l]) => l.activeMode === 'local' || l.activeMode === 'mean') &&
      layers.some(([, l]) => l.activeMode === 'local');
    const raw = tf.tidy(() => {
      const outs: tf.Tensor[] = [];
      if (stack) {
        // Sample-major rows: row s * N + i is sample s of example i.
        const perPass = Math.max(1, Math.floor(maxBatch / Math.max(1, n)));
        for (let s0 = 0; s0 < samples; s0 += perPass) {
          const k = Math.min(perPass, samples - s0);
          const xs = k === 1 ? x : tf.concat(Array.from({ length: k }, () => x));
          outs.push(forwardChunked(model, xs, maxBatch));
          if (s0 === 0) checkOutputSize(outs[0], k, samples);
        }
      } else {
        for (let s = 0; s < samples; s++) {
          if (members > 0) selectMember(model, s % members);
          outs.push(forwardChunked(model, x, maxBatch));
          if (s === 0) checkOutputSize(outs[0], 1, samples);
        }
      }
      const all = tf.concat(outs, 0);
      // Finite input can still overflow float32 inside the model (an input of 1e38).
      checkFiniteTensor('predict: the model output (an input or a weight too large for float32?)', all);
      return tf.reshape(all, [samples, n, ...all.shape.slice(1)]);
    });
    if (task === 'regression') {
      return tf.tidy(() => {
        if (raw.rank !== 3 || raw.shape[2] !== 2) {
          throw new QbnnError(
            'ERR_SHAPE',
            `predict: a regression model must output [N, 2], got [${raw.shape.slice(1)}]`,
          );
        }
        const [m, v] = tf.split(raw, 2, 2);
        return {
          mean: tf.reshape(m, [samples, n]) as tf.Tensor2D,
          variance: tf.reshape(linkVariance(v, options.varianceLink), [samples, n]) as tf.Tensor2D,
        };
      });
    }
    const probs = tf.tidy(() => tf.softmax(raw) as tf.Tensor3D);
    raw.dispose();
    return { probs };
  } finally {
    if (members > 0) selectMember(model, null);
    restoreModes(model, modes);
    model.train(wasTraining);
  }
}

/** Most values {@link predict} returns (`samples * N * C`): 2^28 float32 values, 1 GiB. */
const MAX_PREDICT_ELEMENTS = 2 ** 28;

/**
 * Refuses, after the first pass and before the others run, a sample count whose stacked output
 * would exceed {@link MAX_PREDICT_ELEMENTS} (samples: 1e9 would otherwise run until memory ends).
 */
function checkOutputSize(first: tf.Tensor, firstSamples: number, samples: number): void {
  const total = (first.size / firstSamples) * samples;
  if (total > MAX_PREDICT_ELEMENTS) {
    throw new QbnnError(
      'ERR_ARG',
      `predict: samples = ${samples} would return ${total} values (${first.size / firstSamples} a sample), more than ${MAX_PREDICT_ELEMENTS}: use fewer samples`,
    );
  }
}

/** Forward in chunks of at most `maxBatch` rows, each in its own tidy scope (only logits survive). */
function forwardChunked(model: Module, x: tf.Tensor, maxBatch: number): tf.Tensor {
  const n = x.shape[0];
  if (n <= maxBatch) return tf.tidy(() => model.apply(x));
  const parts: tf.Tensor[] = [];
  for (let i = 0; i < n; i += maxBatch) {
    const size = Math.min(maxBatch, n - i);
    parts.push(tf.tidy(() => model.apply(tf.slice(x, i, size))));
  }
  const out = tf.concat(parts, 0);
  tf.dispose(parts);
  return out;
}
