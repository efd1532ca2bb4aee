import { QbnnError, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { FusedAdamOptimizer } from './adam.js';
import { checkClassLabels, checkFiniteTensor, checkInputBatch, checkPositiveInteger } from './inputs.js';
import { crossEntropy, labelIndices } from './losses.js';
import type { Module } from './module.js';

/** In-memory examples: `x` and `y` share their first axis (N). */
export interface TensorData {
  x: tf.Tensor;
  y: tf.Tensor;
}

/**
 * Examples served by index (lazy loading, augmentation). `batch` returns new tensors that the
 * caller disposes; `rng` is a per-batch stream for augmentation.
 */
export interface IndexedData {
  size: number;
  batch(indices: Int32Array, rng: Rng): TensorData;
}

/** What {@link fit} trains on. */
export type Dataset = TensorData | IndexedData;

/** Context handed to the loss at every step. */
export interface StepContext {
  epoch: number;
  /** Step within the epoch (0-based). */
  step: number;
  stepsPerEpoch: number;
  /** Steps done before this one over the whole run. */
  globalStep: number;
  totalSteps: number;
  /** Examples in this batch and in the dataset (ELBO scaling: KL / datasetSize). */
  batchSize: number;
  datasetSize: number;
  /** Learning rate of this step. */
  lr: number;
  /** A stream for this step's sampling (Bayesian layers, noise), a pure function of (seed, step). */
  rng: Rng;
}

/**
 * A training objective. Runs inside the gradient tape: compute the forward pass through
 * `model.apply`, add any extra term (the ELBO adds `KL / datasetSize`), return a scalar.
 */
export type LossFn = (model: Module, x: tf.Tensor, y: tf.Tensor, ctx: StepContext) => tf.Scalar;

/** Softmax cross-entropy on the model's logits (the default classification loss). */
export const crossEntropyLoss: LossFn = (model, x, y) => crossEntropy(model.apply(x), y);

/** A learning-rate schedule: the rate for `globalStep` of `totalSteps`. */
export type LrSchedule = (globalStep: number, totalSteps: number, baseLr: number) => number;

/** Cosine annealing from `baseLr` to `minLr` over the run, optionally after a linear warm-up. */
export function cosineAnnealing(opts: { minLr?: number; warmupSteps?: number } = {}): LrSchedule {
  const minLr = opts.minLr ?? 0;
  const warm = opts.warmupSteps ?? 0;
  return (t, total, base) => {
    if (t < warm) return (base * (t + 1)) / warm;
    const span = Math.max(1, total - warm);
    return minLr + 0.5 * (base - minLr) * (1 + Math.cos((Math.PI * Math.min(t - warm, span)) / span));
  };
}

/** A step event (`type: 'step'`) or the end of an epoch (`type: 'epoch'`). */
export interface ProgressEvent {
  type: 'step' | 'epoch';
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  /** Loss of this step, or the epoch mean for epoch events. */
  loss: number;
  lr: number;
  /** Throughput over this step, or over the epoch. */
  examplesPerSec: number;
  /** Milliseconds since fit started. */
  elapsedMs: number;
  /** Global gradient norm before clipping (when `clipGradNorm` is set). */
  gradNorm?: number;
  /** Results of the `validate` hook (epoch events). */
  metrics?: Record<string, number>;
}

/** Options of {@link fit}. */
export interface FitOptions {
  /** Objective (default {@link crossEntropyLoss}). */
  loss?: LossFn;
  /** `'adam'` (default), `'sgd'` (with `momentum`), or a tfjs optimizer you own. */
  optimizer?: 'adam' | 'sgd' | tf.Optimizer;
  /** Base learning rate (default 1e-3 for Adam, 1e-2 for SGD). */
  lr?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Nesterov momentum for SGD (default false). */
  nesterov?: boolean;
  /** L2 penalty added to the gradients (`g += wd * w`, default 0). */
  weightDecay?: number;
  epochs?: number;
  batchSize?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** `'constant'` (default), `'cosine'`, or a schedule. Applied per step. */
  lrSchedule?: 'constant' | 'cosine' | LrSchedule;
  /** Rescale gradients so their global L2 norm is at most this. */
  clipGradNorm?: number;
  /** Called after each step and each epoch. May return a promise (awaited). */
  onProgress?: (e: ProgressEvent) => void | Promise<void>;
  /** Computes validation metrics after each epoch (e.g. `{ accuracy }`). */
  validate?: (model: Module, epoch: number) => Record<string, number> | Promise<Record<string, number>>;
  /** After each epoch: return true to stop training. */
  earlyStop?: (e: ProgressEvent) => boolean;
  /** Aborts between steps (Ctrl-C); fit then returns with `stopped: 'aborted'`. */
  signal?: AbortSignal;
  /**
   * Seed of the shuffling, of the per-step `ctx.rng`, and of the model's stochastic modules
   * (they are reseeded through {@link Module.seedAll}). Default 0: runs are reproducible.
   */
  seed?: number;
  /** Only these variables are updated (default: the model's trainable parameters). */
  varList?: tf.Variable[];
}

/** What {@link fit} returns. */
export interface FitResult {
  /** Mean training loss of each completed epoch. */
  epochLoss: number[];
  /** Validation metrics of each completed epoch (when `validate` is given). */
  metrics: Record<string, number>[];
  epochs: number;
  steps: number;
  seconds: number;
  stopped: 'completed' | 'earlyStop' | 'aborted';
}

function isTensorData(d: Dataset): d is TensorData {
  return (d as TensorData).x instanceof tf.Tensor;
}

function datasetSize(d: Dataset): number {
  if (isTensorData(d)) {
    if (d.x.shape[0] !== d.y.shape[0]) {
      throw new QbnnError('ERR_SHAPE', `data: x has ${d.x.shape[0]} examples, y has ${d.y.shape[0]}`);
    }
    return d.x.shape[0];
  }
  if (!Number.isSafeInteger(d.size) || d.size < 0)
    throw new QbnnError('ERR_ARG', `data.size is invalid: ${d.size}`);
  return d.size;
}

/** Sets the learning rate of a tfjs Adam / SGD / momentum optimizer in place. */
export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/** Fisher-Yates permutation of 0..n-1 from `rng`. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const u = rng.uniform(n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(u[i] * (i + 1)));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

function snapshotModes(model: Module): () => void {
  const modes = model.modules().map((m) => [m, m.training] as const);
  return () => {
    for (const [m, t] of modes) m.training = t;
  };
}

const yieldNow = (): Promise<void> =>
  new Promise((r) => (typeof setImmediate === 'function' ? setImmediate(r) : setTimeout(r, 0)));

/**
 * Trains `model` on `data`: shuffled mini-batches, a gradient step per batch through tfjs
 * (Adam or SGD-momentum), an optional per-step learning-rate schedule, global-norm gradient
 * clipping and weight decay; progress events, validation, early stop and abort between steps.
 * Every step runs in `tf.tidy`: no tensor outlives it except the updated variables.
 * Deterministic given `seed` (and a deterministic backend).
 */
export async function fit(model: Module, data: Dataset, opts: FitOptions = {}): Promise<FitResult> {
  const n = datasetSize(data);
  const epochs = opts.epochs ?? 1;
  const batchSize = checkPositiveInteger('fit: batchSize', opts.batchSize ?? 32);
  if (!Number.isSafeInteger(epochs) || epochs < 0)
    throw new QbnnError('ERR_ARG', `epochs must be >= 0, got ${epochs}`);
  if (n === 0) throw new QbnnError('ERR_ARG', 'fit: the dataset is empty');
  const stepsPerEpoch = opts.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  if (stepsPerEpoch === 0)
    throw new QbnnError('ERR_ARG', `fit: dropLast with batchSize ${batchSize} > ${n} examples`);
  const totalSteps = epochs * stepsPerEpoch;
  const lossFn = opts.loss ?? crossEntropyLoss;
  const kind = opts.optimizer ?? 'adam';
  const baseLr = opts.lr ?? (kind === 'sgd' ? 1e-2 : 1e-3);
  if (!(baseLr > 0)) throw new QbnnError('ERR_ARG', `lr must be > 0, got ${baseLr}`);
  const schedule: LrSchedule =
    typeof opts.lrSchedule === 'function'
      ? opts.lrSchedule
      : opts.lrSchedule === 'cosine'
        ? cosineAnnealing()
        : (_t, _T, base) => base;
  const clip = opts.clipGradNorm;
  if (clip !== undefined && !(clip > 0))
    throw new QbnnError('ERR_ARG', `clipGradNorm must be > 0, got ${clip}`);
  const wd = opts.weightDecay ?? 0;
  const varList = opts.varList ?? model.trainableParameters();
  if (varList.length === 0) throw new QbnnError('ERR_ARG', 'fit: the model has no trainable parameters');

  const ownOptimizer = typeof kind === 'string';
  const optimizer =
    kind === 'adam'
      ? new FusedAdamOptimizer(baseLr, 0.9, 0.999)
      : kind === 'sgd'
        ? (opts.momentum ?? 0.9) > 0
          ? tf.train.momentum(baseLr, opts.momentum ?? 0.9, opts.nesterov ?? false)
          : tf.train.sgd(baseLr)
        : kind;

  const seed = new Rng(opts.seed ?? 0);
  const shuffleRoot = seed.fork(0);
  const stepRoot = seed.fork(1);
  const dataRoot = seed.fork(3);
  model.seedAll(seed.fork(2));
  const restore = snapshotModes(model);
  model.train();

  const t0 = performance.now();
  const result: FitResult = {
    epochLoss: [],
    metrics: [],
    epochs: 0,
    steps: 0,
    seconds: 0,
    stopped: 'completed',
  };
  let globalStep = 0;
  let lastYield = t0;
  try {
    outer: for (let epoch = 0; epoch < epochs; epoch++) {
      const order =
        (opts.shuffle ?? true)
          ? permutation(n, shuffleRoot.fork(epoch))
          : Int32Array.from({ length: n }, (_, i) => i);
      const te = performance.now();
      let lossSum = 0;
      let seen = 0;
      let lastLr = baseLr;
      for (let step = 0; step < stepsPerEpoch; step++) {
        if (opts.signal?.aborted) {
          result.stopped = 'aborted';
          break outer;
        }
        const idx = order.subarray(step * batchSize, Math.min(n, (step + 1) * batchSize));
        const lr = schedule(globalStep, totalSteps, baseLr);
        lastLr = lr;
        setLearningRate(optimizer, lr);
        const ts = performance.now();
        const ctx: StepContext = {
          epoch,
          step,
          stepsPerEpoch,
          globalStep,
          totalSteps,
          batchSize: idx.length,
          datasetSize: n,
          lr,
          rng: stepRoot.fork(globalStep),
        };
        const [loss, gradNorm] = tf.tidy(() => {
          let batch: TensorData;
          if (isTensorData(data)) {
            const it = tf.tensor1d(idx, 'int32');
            batch = { x: tf.gather(data.x, it), y: tf.gather(data.y, it) };
          } else {
            batch = data.batch(idx, dataRoot.fork(globalStep));
          }
          const { value, grads } = tf.variableGrads(() => lossFn(model, batch.x, batch.y, ctx), varList);
          let norm: tf.Scalar | undefined;
          if (wd > 0) {
            for (const v of varList) {
              const g = grads[v.name];
              if (g) grads[v.name] = tf.add(g, tf.mul(v, wd));
            }
          }
          if (clip !== undefined) {
            const sq = Object.values(grads).map((g) => tf.sum(tf.square(g)));
            norm = tf.sqrt(tf.addN(sq)) as tf.Scalar;
            const scale = tf.minimum(1, tf.div(clip, tf.add(norm, 1e-6)));
            for (const k of Object.keys(grads)) grads[k] = tf.mul(grads[k], scale);
          }
          optimizer.applyGradients(grads);
          const out = norm ? tf.stack([value, norm]) : tf.reshape(value, [1]);
          return Array.from(out.dataSync());
        });
        if (!Number.isFinite(loss)) {
          throw new QbnnError('ERR_NAN', `fit: loss is ${loss} at epoch ${epoch}, step ${step}`);
        }
        lossSum += loss * idx.length;
        seen += idx.length;
        globalStep++;
        result.steps = globalStep;
        const now = performance.now();
        if (opts.onProgress) {
          await opts.onProgress({
            type: 'step',
            epoch,
            epochs,
            step,
            stepsPerEpoch,
            globalStep,
            totalSteps,
            loss,
            lr,
            examplesPerSec: (idx.length * 1000) / Math.max(1e-3, now - ts),
            elapsedMs: now - t0,
            gradNorm,
          });
        }
        if (now - lastYield > 50) {
          await yieldNow();
          lastYield = performance.now();
        }
      }
      const epochLoss = lossSum / seen;
      result.epochLoss.push(epochLoss);
      result.epochs = epoch + 1;
      let metrics: Record<string, number> | undefined;
      if (opts.validate) {
        metrics = await opts.validate(model, epoch);
        model.train();
        result.metrics.push(metrics);
      }
      const now = performance.now();
      const ev: ProgressEvent = {
        type: 'epoch',
        epoch,
        epochs,
        step: stepsPerEpoch - 1,
        stepsPerEpoch,
        globalStep,
        totalSteps,
        loss: epochLoss,
        lr: lastLr,
        examplesPerSec: (seen * 1000) / Math.max(1e-3, now - te),
        elapsedMs: now - t0,
        metrics,
      };
      await opts.onProgress?.(ev);
      if (opts.earlyStop?.(ev)) {
        result.stopped = 'earlyStop';
        break;
      }
    }
  } finally {
    restore();
    if (ownOptimizer) optimizer.dispose();
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

/** Options of {@link predict} and {@link evaluate}. */
export interface EvalOptions {
  /** Examples per forward pass: a positive integer (default 256). */
  batchSize?: number;
}

/**
 * Runs the model in eval mode over `x` in batches and concatenates the outputs.
 * @throws QbnnError for a batch size that is not a positive integer, an `x` that is not a live
 * tensor `[N >= 1, ...]`, or ERR_NAN if `x` holds a NaN or an infinity (naming its index).
 */
export function predict(model: Module, x: tf.Tensor, opts: EvalOptions = {}): tf.Tensor {
  const bs = checkPositiveInteger('predict: batchSize', opts.batchSize ?? 256);
  checkInputBatch('predict: x', x);
  const n = x.shape[0];
  const restore = snapshotModes(model);
  model.eval();
  try {
    return tf.tidy(() => {
      const outs: tf.Tensor[] = [];
      for (let i = 0; i < n; i += bs) {
        const xb = tf.slice(x, i, Math.min(bs, n - i));
        outs.push(model.apply(xb));
      }
      const y = outs.length === 1 ? outs[0] : tf.concat(outs, 0);
      // Finite input can still overflow float32 inside the model (an input of 1e38).
      checkFiniteTensor('predict: the model output (an input or a weight too large for float32?)', y);
      return y;
    });
  } finally {
    restore();
  }
}

/** What {@link evaluate} reports. */
export interface EvalResult {
  /** Fraction of correct top-1 predictions. */
  accuracy: number;
  /** Mean cross-entropy of the logits. */
  loss: number;
  n: number;
}

/**
 * Classification accuracy and cross-entropy of `model` (eval mode, batched) on `data`, whose
 * `y` holds class indices `[N]` or one-hot rows `[N, C]`. Leaves no tensor behind.
 * @throws QbnnError for a batch size that is not a positive integer, a non-finite input
 * (ERR_NAN), or labels that are not class indices of the model's C outputs (a label 99 of 10
 * classes, a fractional or negative label) or target rows of width C.
 */
export function evaluate(model: Module, data: TensorData, opts: EvalOptions = {}): EvalResult {
  const bs = checkPositiveInteger('evaluate: batchSize', opts.batchSize ?? 256);
  if (typeof data !== 'object' || data === null) {
    throw new QbnnError('ERR_ARG', `evaluate: data must be { x, y } tensors, got ${String(data)}`);
  }
  const n = checkInputBatch('evaluate: data.x', data.x).shape[0];
  const restore = snapshotModes(model);
  model.eval();
  let correct = 0;
  let lossSum = 0;
  try {
    for (let i = 0; i < n; i += bs) {
      const m = Math.min(bs, n - i);
      const [c, l] = tf.tidy(() => {
        const logits = model.apply(tf.slice(data.x, i, m));
        if (i === 0) {
          if (logits.rank !== 2) {
            throw new QbnnError(
              'ERR_SHAPE',
              `evaluate: the model must output [N, C] logits, got [${logits.shape}]`,
            );
          }
          checkClassLabels('evaluate: data.y', data.y, n, logits.shape[1] as number);
        }
        const y = tf.slice(data.y, i, m);
        const hit = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labelIndices(y)), 'float32'));
        return [hit.dataSync()[0], crossEntropy(logits, y).dataSync()[0]];
      });
      if (!Number.isFinite(l)) {
        throw new QbnnError(
          'ERR_NAN',
          `evaluate: the loss of examples ${i}..${i + m - 1} is ${l} (an input or a weight too large for float32?)`,
        );
      }
      correct += c;
      lossSum += l * m;
    }
  } finally {
    restore();
  }
  return { accuracy: correct / n, loss: lossSum / n, n };
}
