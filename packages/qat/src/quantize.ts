import { QbnnError } from '@qbnn/core';
import { checkPositiveInteger, type Dataset, type FitOptions, fit, type Module } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import type { QuantizedModel } from './engine/quantized-model.js';
import { convert } from './flows/convert.js';
import { fineTuneMembers } from './flows/ensemble-qat.js';
import { calibrate, prepare, prepareQat } from './flows/prepare.js';
import { defaultQConfig, type QConfig } from './qconfig.js';

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /** `ptq`: observe calibration data, then convert. `qat`: fine-tune with fake quantisation, then convert. */
  mode: 'ptq' | 'qat';
  /**
   * PTQ: representative inputs, a tensor [N, ...] (cut into `batchSize` batches) or (async)
   * batches. QAT: the fine-tuning set, nn's `Dataset` (`{ x, y }` tensors).
   */
  data: tf.Tensor | Iterable<tf.Tensor> | AsyncIterable<tf.Tensor> | Dataset;
  /** Default `defaultQConfig({ qat: mode === 'qat' })`: W8/A8, per-channel weights. */
  qconfig?: QConfig;
  /** Per-example input shape; default the data's shape without its batch axis. */
  inputShape?: number[];
  /** Fold BatchNorms into the preceding convolutions (default true). */
  foldBn?: boolean;
  /** PTQ: batch size when `data` is one tensor (default 32). */
  batchSize?: number;
  /** PTQ: forward passes per batch, each with new weight samples (default 1). */
  passes?: number;
  /**
   * QAT: nn's `fit` options. Defaults: 1 epoch, Adam at lr 2e-4, batch 32, and nn's default
   * cross-entropy (a plain likelihood: no KL gradient during QAT, as in Ferianc et al.). An
   * aborted fit (its `signal`) rejects with the signal's reason.
   */
  fit?: FitOptions;
  /** Passed to {@link convert}: stored weight draws for posteriors without an integer form. */
  storedDraws?: number;
}

function isTensorData(d: QuantizeOptions['data']): d is Extract<Dataset, { x: tf.Tensor }> {
  return typeof d === 'object' && d !== null && (d as { x?: unknown }).x instanceof tf.Tensor;
}

function inputShapeOf(opts: QuantizeOptions): number[] {
  if (opts.inputShape) return [...opts.inputShape];
  const d = opts.data;
  if (d instanceof tf.Tensor) return d.shape.slice(1);
  if (isTensorData(d)) return d.x.shape.slice(1);
  throw new QbnnError('ERR_ARG', 'quantize: inputShape is required when data is not a tensor or { x, y }');
}

function* slices(x: tf.Tensor, batchSize: number): Generator<tf.Tensor> {
  for (let s = 0; s < x.shape[0]; s += batchSize) {
    const b = tf.slice(x, s, Math.min(batchSize, x.shape[0] - s));
    try {
      yield b;
    } finally {
      b.dispose();
    }
  }
}

function usesLearnableScales(qc: QConfig): boolean {
  const parts = [
    qc.weight,
    qc.activation,
    ...Object.values(qc.layers ?? {}).flatMap((o) => [o.weight, o.activation]),
  ];
  return parts.some((p) => p?.learnableScale === true);
}

/**
 * The common path in one call: a trained float model (deterministic or Bayesian, any posterior
 * with a registered integer form) to a {@link QuantizedModel} computing in integers.
 *
 * - `ptq` (Bayesian-Torch): {@link prepare} (observers at the Ferianc points), {@link calibrate}
 *   on `data`, {@link convert}.
 * - `qat` (Ferianc et al.): {@link prepareQat} (fake quantisation, straight-through gradients),
 *   nn's `fit` on `data` with `opts.fit`, {@link convert}. An ensemble posterior (SGHMC) runs
 *   the fine-tuning once per member, each member through its own quantisation points.
 *
 * The model is prepared in place (its layers wrapped); dispose it when done with it.
 *
 * @example
 * const qm = await quantize(model, { mode: 'ptq', data: calibrationImages });
 * const { logits } = qm.forward(testImages, { samples: 20 });
 */
export async function quantize(model: Module, opts: QuantizeOptions): Promise<QuantizedModel> {
  if (opts === null || typeof opts !== 'object')
    throw new QbnnError(
      'ERR_ARG',
      `quantize: opts must be an object ({ mode, data, ... }), got ${String(opts)}`,
    );
  if (opts.mode !== 'ptq' && opts.mode !== 'qat') {
    throw new QbnnError('ERR_ARG', `quantize: mode must be 'ptq' or 'qat', got '${String(opts.mode)}'`);
  }
  // checked before the model is prepared: a batch size of 0 stepped the calibration slices forever
  const batchSize = checkPositiveInteger('quantize: opts.batchSize', opts.batchSize ?? 32);
  checkPositiveInteger('quantize: opts.passes', opts.passes ?? 1);
  const inputShape = inputShapeOf(opts);
  const qconfig = opts.qconfig ?? defaultQConfig({ qat: opts.mode === 'qat' });
  const prep = { foldBn: opts.foldBn };
  if (opts.mode === 'ptq') {
    prepare(model, qconfig, prep);
    const d = opts.data;
    const iterable =
      typeof d === 'object' && d !== null && (Symbol.iterator in d || Symbol.asyncIterator in d);
    if (!(d instanceof tf.Tensor) && !iterable) {
      throw new QbnnError('ERR_ARG', "quantize: mode 'ptq' takes inputs (a tensor or batches), not { x, y }");
    }
    const batches = d instanceof tf.Tensor ? slices(d, batchSize) : (d as Iterable<tf.Tensor>);
    await calibrate(model, batches, { passes: opts.passes });
  } else {
    const d = opts.data;
    if (d instanceof tf.Tensor || !(typeof d === 'object' && d !== null && ('x' in d || 'batch' in d))) {
      throw new QbnnError('ERR_ARG', "quantize: mode 'qat' takes a training set ({ x, y }), not bare inputs");
    }
    prepareQat(model, qconfig, prep);
    if (usesLearnableScales(qconfig) && isTensorData(d)) {
      // learnable (LSQ) scales become parameters on the first forward: make them before fit collects them
      const first = tf.slice(d.x, 0, Math.min(opts.fit?.batchSize ?? 32, d.x.shape[0]));
      await calibrate(model, [first]);
      first.dispose();
    }
    // An ensemble (SGHMC) fine-tunes each member in turn; progress counts steps over all of them.
    let before = 0;
    let aborted = false;
    const onProgress = opts.fit?.onProgress;
    await fineTuneMembers(model, async () => {
      const r = await fit(model, d as Dataset, {
        epochs: 1,
        lr: 2e-4,
        batchSize: 32,
        ...opts.fit,
        onProgress: onProgress && ((e) => onProgress({ ...e, globalStep: e.globalStep + before })),
      });
      before += r.steps;
      aborted = r.stopped === 'aborted';
      return !aborted;
    });
    if (aborted) {
      throw opts.fit?.signal?.reason ?? new QbnnError('ERR_ARG', 'quantize: QAT was aborted');
    }
  }
  model.eval();
  return convert(model, { inputShape, storedDraws: opts.storedDraws });
}
