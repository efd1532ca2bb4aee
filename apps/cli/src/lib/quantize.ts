import { QbnnError } from '@qbnn/core';
import { crossEntropy, type Module } from '@qbnn/nn';
import { ensembleSize, gaussianNll } from '@qbnn/posteriors';
import { defaultQConfig, type QConfig, type QuantizedModel, quantize, type TensorQConfig } from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { readJsonFile } from '../files.js';
import { InterruptedError, isInterrupted, throwIfInterrupted } from '../interrupt.js';
import { startProgress } from '../progress.js';

export const QUANT_MODES = ['ptq', 'qat'] as const;
export type QuantMode = (typeof QUANT_MODES)[number];

const TENSOR_KEYS = new Set([
  'bits',
  'signed',
  'symmetric',
  'perChannel',
  'observer',
  'learnableScale',
  'averagingConstant',
  'percentile',
  'bins',
]);

function checkTensorPart(v: unknown, where: string): Partial<TensorQConfig> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new QbnnError('ERR_ARG', `${where} must be an object`);
  }
  for (const k of Object.keys(v)) {
    if (!TENSOR_KEYS.has(k)) {
      throw new QbnnError(
        'ERR_ARG',
        `${where}.${k} is not a quantisation setting (known: ${[...TENSOR_KEYS].join(', ')})`,
      );
    }
  }
  const bits = (v as { bits?: unknown }).bits;
  if (bits !== undefined && !(Number.isInteger(bits) && (bits as number) >= 2 && (bits as number) <= 8)) {
    throw new QbnnError('ERR_ARG', `${where}.bits must be an integer in [2, 8]; got ${JSON.stringify(bits)}`);
  }
  return v as Partial<TensorQConfig>;
}

/**
 * The QConfig of a run: qat's default (signed per-channel weights, unsigned activations) at
 * `wbits` / `abits`, then the JSON file's `weight`, `activation` and per-layer `layers`
 * overrides (keys are module paths such as "conv1" or "fc2"; see @qbnn/qat's QConfig), e.g.
 * `{ "layers": { "fc2": { "weight": { "bits": 4 } } } }`.
 */
export function buildQConfig(mode: QuantMode, wbits: number, abits: number, file?: string): QConfig {
  const qc = defaultQConfig({ weightBits: wbits, activationBits: abits, qat: mode === 'qat' });
  if (!file) return qc;
  const json = readJsonFile(file, '--qconfig', 2 ** 20);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new QbnnError('ERR_ARG', `--qconfig ${file}: must hold a JSON object`);
  }
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['weight', 'activation', 'layers'].includes(k)) {
      throw new QbnnError(
        'ERR_ARG',
        `--qconfig ${file}: unknown key '${k}' (known: weight, activation, layers)`,
      );
    }
  }
  Object.assign(qc.weight, checkTensorPart(o.weight, `--qconfig ${file}: weight`));
  Object.assign(qc.activation, checkTensorPart(o.activation, `--qconfig ${file}: activation`));
  if (o.layers !== undefined) {
    if (typeof o.layers !== 'object' || o.layers === null || Array.isArray(o.layers)) {
      throw new QbnnError('ERR_ARG', `--qconfig ${file}: layers must be an object keyed by module path`);
    }
    qc.layers = {};
    for (const [path, v] of Object.entries(o.layers as Record<string, unknown>)) {
      if (typeof v !== 'object' || v === null) {
        throw new QbnnError('ERR_ARG', `--qconfig ${file}: layers.${path} must be an object`);
      }
      const lv = v as Record<string, unknown>;
      for (const k of Object.keys(lv)) {
        if (k !== 'weight' && k !== 'activation') {
          throw new QbnnError(
            'ERR_ARG',
            `--qconfig ${file}: layers.${path}.${k} is not weight or activation`,
          );
        }
      }
      qc.layers[path] = {
        weight: checkTensorPart(lv.weight, `--qconfig ${file}: layers.${path}.weight`),
        activation: checkTensorPart(lv.activation, `--qconfig ${file}: layers.${path}.activation`),
      };
    }
  }
  return qc;
}

/** Options of {@link quantizeModel}. */
export interface QuantizeOptions {
  mode: QuantMode;
  qconfig: QConfig;
  /** Per-example input shape ([1, 28, 28] for images, [features] for regression). */
  inputShape: number[];
  /** Calibration inputs (PTQ) / QAT training data. */
  data: { x: tf.Tensor; y: tf.Tensor };
  /** PTQ: examples used to calibrate. */
  calibrationSize: number;
  /** PTQ: forward passes per calibration batch (fresh weight samples each). */
  calibrationPasses: number;
  /** QAT: epochs, learning rate, batch size, examples used. */
  qatEpochs: number;
  qatLr: number;
  batchSize: number;
  qatSize: number;
  task: 'classification' | 'regression';
  seed: number;
  label: string;
  quiet: boolean;
}

/**
 * Quantises a trained float model (consumed: modified in place, then disposed) into an integer
 * {@link QuantizedModel} through @qbnn/qat's one-call `quantize`: PTQ (Bayesian-Torch) calibrates
 * on training inputs with several weight draws; QAT (Ferianc) fine-tunes with fake quantisation
 * on the likelihood alone (no KL gradient) at a small learning rate. Adds progress and Ctrl-C.
 */
export async function quantizeModel(model: Module, opts: QuantizeOptions): Promise<QuantizedModel> {
  try {
    return await prepareAndConvert(model, opts);
  } finally {
    // the integer model holds plain typed arrays: the prepared float copy is no longer needed
    model.dispose();
  }
}

async function prepareAndConvert(model: Module, opts: QuantizeOptions): Promise<QuantizedModel> {
  const n = opts.data.x.shape[0];
  const common = { qconfig: opts.qconfig, inputShape: opts.inputShape };
  if (opts.mode === 'ptq') {
    const size = Math.min(n, opts.calibrationSize);
    const batches: tf.Tensor[] = [];
    for (let s = 0; s < size; s += opts.batchSize)
      batches.push(tf.slice(opts.data.x, s, Math.min(opts.batchSize, size - s)));
    const progress = startProgress(opts.label, batches.length, 'batches', opts.quiet);
    try {
      let done = 0;
      async function* gen() {
        for (const b of batches) {
          throwIfInterrupted();
          yield b;
          progress.update(++done);
        }
      }
      return await quantize(model, { ...common, mode: 'ptq', data: gen(), passes: opts.calibrationPasses });
    } finally {
      progress.stop();
      tf.dispose(batches);
    }
  }
  const size = Math.min(n, opts.qatSize);
  const x = tf.slice(opts.data.x, 0, size);
  const y = tf.slice(opts.data.y, 0, size);
  // an ensemble (SGHMC) fine-tunes each member in turn
  const steps = opts.qatEpochs * Math.ceil(size / opts.batchSize) * Math.max(1, ensembleSize(model));
  const progress = startProgress(opts.label, steps, 'steps', opts.quiet);
  const controller = new AbortController();
  try {
    return await quantize(model, {
      ...common,
      mode: 'qat',
      data: { x, y },
      fit: {
        epochs: opts.qatEpochs,
        batchSize: opts.batchSize,
        lr: opts.qatLr,
        seed: opts.seed,
        signal: controller.signal,
        loss: (m, xb, yb) =>
          opts.task === 'classification' ? crossEntropy(m.apply(xb), yb) : gaussianNll(m.apply(xb), yb),
        onProgress: (e) => {
          if (e.type === 'step') progress.update(e.globalStep, { loss: e.loss });
          if (isInterrupted()) controller.abort(new InterruptedError());
        },
      },
    });
  } finally {
    progress.stop();
    tf.dispose([x, y]);
  }
}
