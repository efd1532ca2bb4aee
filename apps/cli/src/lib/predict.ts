import { QbnnError } from '@qbnn/core';
import type { ImageSet } from '@qbnn/data';
import type { Module } from '@qbnn/nn';
import { predict } from '@qbnn/posteriors';
import type { QuantizedModel } from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { throwIfInterrupted } from '../interrupt.js';
import type { Progress } from '../progress.js';

/** Per-sample class probabilities, laid out [L, N, C] (sample-major, as @qbnn/metrics reads them). */
export interface SampledProbs {
  probs: Float32Array;
  samples: number;
  n: number;
  classes: number;
}

/** Per-sample regression means and variances, [L, N] each. */
export interface SampledMoments {
  means: Float32Array;
  variances: Float32Array;
  samples: number;
  n: number;
}

const BATCH = 250;

function perImage(shape: readonly number[]): number {
  let p = 1;
  for (const d of shape.slice(1)) p *= d;
  return p;
}

/** Something that yields a batch's per-sample outputs [L, B, C] (row-major) for one batch. */
type BatchFn = (x: Float32Array, b: number) => Float32Array;

function runBatches(
  x: Float32Array,
  shape: readonly number[],
  samples: number,
  fn: BatchFn,
  progress?: Progress,
  done0 = 0,
): { out: Float32Array; classes: number } {
  const n = shape[0];
  const per = perImage(shape);
  // the class count is the model's: read from the first batch's output
  let classes = 0;
  let out = new Float32Array(0);
  for (let s = 0; s < n; s += BATCH) {
    throwIfInterrupted();
    const b = Math.min(BATCH, n - s);
    const part = fn(x.subarray(s * per, (s + b) * per), b);
    if (s === 0) {
      classes = part.length / (samples * b);
      out = new Float32Array(samples * n * classes);
    }
    for (let l = 0; l < samples; l++) {
      out.set(part.subarray(l * b * classes, (l + 1) * b * classes), (l * n + s) * classes);
    }
    progress?.update(done0 + s + b);
  }
  return { out, classes };
}

/**
 * Monte Carlo predictive of a float Bayesian model on images: L forward passes with fresh
 * posterior samples (each layer's own sampling mode), softmax per sample.
 */
export function floatProbs(
  model: Module,
  set: ImageSet,
  samples: number,
  opts: { inputShape?: readonly number[]; progress?: Progress; done0?: number } = {},
): SampledProbs {
  const inputShape = opts.inputShape ?? set.shape.slice(1);
  const { out: probs, classes } = runBatches(
    set.images,
    set.shape,
    samples,
    (xb, b) =>
      tf.tidy(() => {
        const x = tf.tensor(xb, [b, ...inputShape]);
        const p = predict(model, x, { samples }).probs;
        return p.dataSync() as Float32Array;
      }),
    opts.progress,
    opts.done0,
  );
  return { probs, samples, n: set.shape[0], classes };
}

function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length; r += classes) {
    let m = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[r + c]);
    let s = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(logits[r + c] - m);
      out[r + c] = e;
      s += e;
    }
    for (let c = 0; c < classes; c++) out[r + c] /= s;
  }
  return out;
}

/**
 * Monte Carlo predictive of a quantised model through the integer engine (`weights` mode: one
 * integer weight sample per MC sample and batch), with the given kernel provider.
 */
export function intProbs(
  qm: QuantizedModel,
  set: ImageSet,
  samples: number,
  seed: number,
  provider?: string,
  progress?: Progress,
  done0 = 0,
): SampledProbs {
  let call = 0;
  const { out: probs, classes } = runBatches(
    set.images,
    set.shape,
    samples,
    (xb) => {
      const o = qm.forward(xb, { samples, seed: seed + 7919 * ++call, provider });
      return softmaxRows(o.logits, o.classes);
    },
    progress,
    done0,
  );
  return { probs, samples, n: set.shape[0], classes };
}

const softplus = (v: number) => (v > 30 ? v : Math.log1p(Math.exp(v)));

/** Regression moments of a float model ([N, 2] head: mean, softplus variance). */
export function floatMoments(
  model: Module,
  x: Float32Array,
  n: number,
  features: number,
  samples: number,
): SampledMoments {
  return tf.tidy(() => {
    const p = predict(model, tf.tensor(x, [n, features]), { samples, task: 'regression' });
    return {
      means: Float32Array.from(p.mean.dataSync()),
      variances: Float32Array.from(p.variance.dataSync()),
      samples,
      n,
    };
  });
}

/** Regression moments of a quantised model: logits column 0 is the mean, softplus(column 1) + 1e-6 the variance. */
export function intMoments(
  qm: QuantizedModel,
  x: Float32Array,
  n: number,
  samples: number,
  seed: number,
): SampledMoments {
  const o = qm.forward(x, { samples, seed });
  if (o.classes !== 2) {
    throw new QbnnError(
      'ERR_SHAPE',
      `a regression model's output must be [N, 2] (mean, raw variance); this one has ${o.classes} columns`,
    );
  }
  const means = new Float32Array(samples * n);
  const variances = new Float32Array(samples * n);
  for (let i = 0; i < samples * n; i++) {
    means[i] = o.logits[i * 2];
    variances[i] = softplus(o.logits[i * 2 + 1]) + 1e-6;
  }
  return { means, variances, samples, n };
}
