import { parseFlags } from '../args.js';
import { checkFileFlags } from '../file-flags.js';
import { count, DATASETS, type DatasetName, loadClassification } from '../lib/data.js';
import {
  type BayesModelConfig,
  buildBayesModel,
  checkPosterior,
  inputShapeOf,
  MAX_MEMBERS,
  MODELS,
  type ModelName,
} from '../lib/models.js';
import { trainBayes } from '../lib/train.js';
import {
  type Command,
  commonFlags,
  type Io,
  imageTensors,
  pluginInputs,
  pluginSpecs,
  runtimeLine,
  saveModel,
  setup,
} from './common.js';

const flags = {
  model: { type: 'string', help: 'architecture', default: 'lenet5', choices: MODELS },
  posterior: {
    type: 'string',
    help: 'posterior of every layer: gaussian, radial, mcdropout, sghmc or a plugin name',
    default: 'gaussian',
  },
  data: { type: 'string', help: 'data set', default: 'mnist', choices: DATASETS },
  'train-size': { type: 'int', help: 'training images', default: 8000, min: 10, max: 60000 },
  'test-size': {
    type: 'int',
    help: 'held-out test images (kept out of training)',
    default: 2000,
    min: 0,
    max: 10000,
  },
  epochs: { type: 'int', help: 'training epochs', default: 2, min: 1, max: 1000 },
  'batch-size': { type: 'int', help: 'mini-batch size', default: 64, min: 1, max: 4096 },
  lr: { type: 'number', help: 'learning rate (default: Adam 2e-3; SGHMC sampler 0.5)', min: 0, max: 10 },
  beta: { type: 'number', help: 'KL weight of the ELBO (1 = true ELBO)', default: 0.1, min: 0, max: 1000 },
  members: {
    type: 'int',
    help: 'SGHMC: ensemble members collected after burn-in',
    default: 8,
    min: 1,
    max: MAX_MEMBERS,
  },
  out: { type: 'string', help: 'checkpoint to write (safetensors)', default: 'qbnn-out/model.safetensors' },
  ...commonFlags,
} as const;

export const train: Command = {
  name: 'train',
  summary: 'train a Bayesian network and save a safetensors checkpoint',
  usage:
    'qbnn train [--model lenet5|mlp] [--posterior NAME] [--data mnist|fashion-mnist] [--out FILE] [flags]',
  flags,
  example: 'qbnn train --model lenet5 --posterior gaussian --epochs 2 --out qbnn-out/model.safetensors',
  async run(argv: string[], io: Io) {
    const f = parseFlags('train', argv, flags);
    const [out] = checkFileFlags('train', {
      inputs: pluginInputs(f.plugin),
      outputs: [{ flag: '--out', path: f.out }],
    });
    const rt = await setup(f);
    checkPosterior(f.posterior);
    io.err(`qbnn train: ${runtimeLine(rt)}\n`);
    const data = f.data as DatasetName;
    const split = loadClassification(data, {
      trainSize: f['train-size'],
      testSize: f['test-size'],
      seed: f.seed,
    });
    const cfg: BayesModelConfig = {
      model: f.model as ModelName,
      posterior: f.posterior,
      seed: f.seed,
      dataset: { name: data, trainSize: f['train-size'], testSize: f['test-size'], seed: f.seed },
      ...(f.plugin ? { plugins: pluginSpecs(f.plugin) } : {}),
    };
    const model = buildBayesModel(cfg);
    const t = imageTensors(split.train, inputShapeOf(cfg.model));
    try {
      const summary = await trainBayes(model, t, {
        epochs: f.epochs,
        batchSize: f['batch-size'],
        lr: f.lr,
        beta: f.beta,
        seed: f.seed,
        task: 'classification',
        members: f.members,
        label: 'train',
        quiet: f.quiet,
      });
      if (summary.members > 0) cfg.members = summary.members;
      await saveModel(model, cfg, out);
      const result = {
        checkpoint: out,
        model: cfg.model,
        posterior: cfg.posterior,
        data: split.name,
        trainImages: count(split.train),
        parameters: model.numParameters(),
        ...summary,
      };
      if (f.json) io.out(`${JSON.stringify(result)}\n`);
      else {
        io.out(
          `trained ${cfg.model} (${cfg.posterior}, ${result.parameters} parameters) on ${result.trainImages} ${split.name} images: ` +
            `${summary.objective}, ${summary.epochs} epochs, ${summary.steps} steps, ${summary.seconds.toFixed(1)} s, final loss ${summary.finalLoss.toFixed(4)}` +
            `${summary.members ? `, ${summary.members} ensemble members` : ''}\ncheckpoint: ${out}\n`,
        );
      }
    } finally {
      t.x.dispose();
      t.y.dispose();
      model.dispose();
    }
  },
};
