import { dirname, join, resolve } from 'node:path';
import { checkLayerOverrides } from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { parseFlags, UsageError } from '../args.js';
import { checkFileFlags } from '../file-flags.js';
import { DATASETS, type DatasetName, loadClassification } from '../lib/data.js';
import { dataFileOf, fileInputShape, loadDataFile } from '../lib/data-file.js';
import { inputShapeOf } from '../lib/models.js';
import { buildQConfig, QUANT_MODES, type QuantMode, quantizeModel } from '../lib/quantize.js';
import {
  type Command,
  commonFlags,
  type Io,
  imageTensors,
  loadFloatCheckpoint,
  pluginInputs,
  runtimeLine,
  saveQuantModel,
  setup,
  stem,
} from './common.js';

const flags = {
  checkpoint: { type: 'string', help: 'float checkpoint written by qbnn train or qbnn import (required)' },
  mode: {
    type: 'string',
    help: 'post-training quantisation or quantisation-aware training',
    default: 'ptq',
    choices: QUANT_MODES,
  },
  wbits: { type: 'int', help: 'weight bits', default: 8, min: 2, max: 8 },
  abits: { type: 'int', help: 'activation bits', default: 8, min: 2, max: 8 },
  qconfig: {
    type: 'string',
    help: 'JSON file of per-layer overrides, e.g. {"layers":{"fc2":{"weight":{"bits":4}}}}',
  },
  data: {
    type: 'string',
    help: `data for calibration / QAT: ${DATASETS.join(' or ')} (default: the checkpoint's), or a file (.pt, .safetensors) of tensors x [N, ...] and y [N] (class indices, or float targets for regression); an imported model needs the file`,
  },
  'calibration-size': {
    type: 'int',
    help: 'PTQ: training images used to calibrate',
    default: 512,
    min: 1,
    max: 60000,
  },
  'calibration-passes': {
    type: 'int',
    help: 'PTQ: forward passes (weight draws) per batch',
    default: 2,
    min: 1,
    max: 100,
  },
  'qat-epochs': { type: 'int', help: 'QAT: fine-tuning epochs', default: 1, min: 1, max: 100 },
  'qat-lr': { type: 'number', help: 'QAT: Adam learning rate', default: 2e-4, min: 0, max: 1 },
  'qat-size': { type: 'int', help: 'QAT: training images used', default: 2000, min: 1, max: 60000 },
  'batch-size': { type: 'int', help: 'mini-batch size', default: 64, min: 1, max: 4096 },
  out: {
    type: 'string',
    help: 'quantised model to write (default: beside the checkpoint, <name>-<mode>-w<W>a<A>.safetensors)',
  },
  ...commonFlags,
} as const;

export const quantize: Command = {
  name: 'quantize',
  summary: 'quantise a trained checkpoint to integers (PTQ or QAT) and save it',
  usage:
    'qbnn quantize --checkpoint FILE [--mode ptq|qat] [--wbits N] [--abits N] [--qconfig FILE] [--data NAME|FILE] [--out FILE]',
  flags,
  example: 'qbnn quantize --checkpoint qbnn-out/model.safetensors --mode qat --wbits 4 --abits 8',
  async run(argv: string[], io: Io) {
    const f = parseFlags('quantize', argv, flags);
    if (f.checkpoint === undefined)
      throw new UsageError(
        'qbnn quantize: --checkpoint <file> is required (a model written by qbnn train or qbnn import)',
      );
    const mode = f.mode as QuantMode;
    const dataFile = dataFileOf('quantize', '--data', f.data, DATASETS);
    const [out] = checkFileFlags('quantize', {
      inputs: [
        { flag: '--checkpoint', path: f.checkpoint },
        ...(dataFile !== undefined ? [{ flag: '--data', path: dataFile }] : []),
        ...(f.qconfig !== undefined ? [{ flag: '--qconfig', path: f.qconfig }] : []),
        ...pluginInputs(f.plugin),
      ],
      outputs: [
        {
          flag: f.out === undefined ? '--out (default)' : '--out',
          path:
            f.out ??
            join(dirname(f.checkpoint), `${stem(f.checkpoint)}-${mode}-w${f.wbits}a${f.abits}.safetensors`),
        },
      ],
    });
    const qconfig = buildQConfig(mode, f.wbits, f.abits, f.qconfig);
    const rt = await setup(f);
    io.err(`qbnn quantize: ${runtimeLine(rt)}\n`);
    const { model, config } = await loadFloatCheckpoint(f.checkpoint);
    if (config === undefined && dataFile === undefined) {
      model.dispose();
      throw new UsageError(
        `qbnn quantize: ${f.checkpoint} is an imported model: give its data with --data FILE (.pt or .safetensors holding x and y)`,
      );
    }
    try {
      // before calibration or training: an override naming no layer is a mistake, not a no-op
      checkLayerOverrides(
        qconfig,
        model.namedModules().map(([path]) => path),
      );
    } catch (err) {
      model.dispose();
      throw new UsageError(`qbnn quantize: --qconfig ${f.qconfig}: ${(err as Error).message}`);
    }
    let t: { x: tf.Tensor; y: tf.Tensor };
    let inputShape: number[];
    let task: 'classification' | 'regression' = 'classification';
    try {
      if (dataFile !== undefined) {
        const d = loadDataFile(dataFile, '--data');
        inputShape = fileInputShape(dataFile, '--data', d.shape.slice(1), config?.model);
        if (d.targets !== undefined) task = 'regression';
        t = {
          x: tf.tensor(d.x, [d.shape[0], ...inputShape]),
          y: d.labels !== undefined ? tf.tensor1d(d.labels, 'int32') : tf.tensor1d(d.targets!),
        };
      } else {
        const ds = config!.dataset ?? { name: 'mnist', trainSize: 8000, testSize: 2000, seed: f.seed };
        const data = (f.data ?? ds.name) as DatasetName;
        const split = loadClassification(data, {
          trainSize: ds.trainSize,
          testSize: ds.testSize,
          seed: ds.seed,
        });
        inputShape = inputShapeOf(config!.model);
        t = imageTensors(split.train, inputShape);
      }
    } catch (err) {
      model.dispose();
      throw err;
    }
    const t0 = performance.now();
    try {
      const qm = await quantizeModel(model, {
        mode,
        qconfig,
        inputShape,
        data: t,
        calibrationSize: f['calibration-size'],
        calibrationPasses: f['calibration-passes'],
        qatEpochs: f['qat-epochs'],
        qatLr: f['qat-lr'],
        batchSize: f['batch-size'],
        qatSize: f['qat-size'],
        task,
        seed: f.seed,
        label: mode === 'ptq' ? 'PTQ calibrate' : 'QAT fine-tune',
        quiet: f.quiet,
      });
      await saveQuantModel(qm, out);
      const d = qm.describe();
      const layers = d.layers.map((l) => ({
        path: l.path,
        weightBits: l.weightBits,
        inputBits: l.inputBits,
        kind: l.form,
      }));
      const result = {
        quantized: out,
        checkpoint: resolve(f.checkpoint),
        mode,
        wbits: f.wbits,
        abits: f.abits,
        sizeBytes: d.sizeBytes,
        seconds: (performance.now() - t0) / 1000,
        layers,
      };
      if (f.json) io.out(`${JSON.stringify(result)}\n`);
      else {
        io.out(
          `quantised ${f.checkpoint} with ${mode.toUpperCase()} at W${f.wbits}/A${f.abits}${f.qconfig ? ` (overrides from ${f.qconfig})` : ''} in ${result.seconds.toFixed(1)} s: ${(result.sizeBytes / 1024).toFixed(1)} KB\n`,
        );
        for (const l of layers)
          io.out(`  ${l.path.padEnd(10)} ${l.kind.padEnd(9)} W${l.weightBits} input A${l.inputBits}\n`);
        io.out(`quantised model: ${out}\n`);
      }
    } finally {
      t.x.dispose();
      t.y.dispose();
      model.dispose();
    }
  },
};
