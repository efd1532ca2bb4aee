import { QbnnError } from '@qbnn/core';
import { Builder, type LayerFactory, lenet5, type Module, registerArchitecture, Sequential } from '@qbnn/nn';
import {
  BayesConv2d,
  BayesLayer,
  BayesLinear,
  bayesLayers,
  hasPosterior,
  listPosteriors,
  reserveEnsemble,
} from '@qbnn/posteriors';
import { checkDatasetName } from './data.js';

/** Model architectures the cli builds. */
export const MODELS = ['lenet5', 'mlp'] as const;
export type ModelName = (typeof MODELS)[number] | 'regression-mlp';

/**
 * Everything needed to rebuild a Bayesian model: stored as the checkpoint's config, so
 * `qbnn quantize` / `qbnn eval` rebuild the model from the file alone.
 */
export interface BayesModelConfig {
  model: ModelName;
  posterior: string;
  posteriorOptions?: Record<string, unknown>;
  seed: number;
  /** Ensemble members to allocate before loading (SGHMC). */
  members?: number;
  /** regression-mlp: input features. */
  inFeatures?: number;
  /** mlp / regression-mlp: hidden width. */
  hidden?: number;
  /** regression-mlp: hidden layers. */
  depth?: number;
  /** Plugin modules the posterior came from (informational; load them with --plugin). */
  plugins?: string[];
  /** The data split it was trained on, so `qbnn eval` uses the same held-out test set. */
  dataset?: { name: string; trainSize: number; testSize: number; seed: number };
}

/** Per-example input shape of an image model: [1, 28, 28] for LeNet-5, [784] for the MLP. */
export function inputShapeOf(model: ModelName): number[] {
  return model === 'mlp' ? [784] : [1, 28, 28];
}

/** Name of the architecture the cli registers in @qbnn/nn's registry. */
export const BAYES_ARCH = 'qbnn-cli/bayes';

/** Checks the posterior is registered, with a message listing the registered ones. */
export function checkPosterior(name: string, flag = '--posterior'): void {
  if (!hasPosterior(name)) {
    throw new QbnnError(
      'ERR_UNKNOWN',
      `${flag}: unknown posterior '${name}' (registered: ${listPosteriors().join(', ')}; load a plugin with --plugin <module>)`,
    );
  }
}

/** A layer factory making Bayesian layers with the given posterior (the first layer sees the input). */
function bayesFactory(cfg: BayesModelConfig): Partial<LayerFactory> {
  const posteriorOptions = { ...cfg.posteriorOptions };
  let first = true;
  const isInput = () => {
    const v = first;
    first = false;
    return v;
  };
  return {
    linear: (i, o, opts) =>
      new BayesLinear(i, o, {
        posterior: cfg.posterior,
        posteriorOptions: posteriorOptions as never,
        bias: opts.bias,
        seed: opts.rng,
        isInput: isInput(),
      }),
    conv2d: (i, o, k, opts) =>
      new BayesConv2d(i, o, k, {
        posterior: cfg.posterior,
        posteriorOptions: posteriorOptions as never,
        stride: opts.stride,
        padding: opts.padding,
        dilation: opts.dilation,
        groups: opts.groups,
        bias: opts.bias,
        seed: opts.rng,
        isInput: isInput(),
      }),
  };
}

/**
 * Builds a Bayesian model: LeNet-5 (the Ferianc layout), a 2-hidden-layer MLP on flattened
 * images, or the regression MLP (Sequential, one [mean, raw variance] head of width 2 so the
 * integer engine can run it). Every weighted layer is a Bayesian layer with the posterior.
 */
export function buildBayesModel(cfg: BayesModelConfig): Module {
  checkPosterior(cfg.posterior);
  const factory = bayesFactory(cfg);
  let model: Module;
  if (cfg.model === 'lenet5') model = lenet5({}, { seed: cfg.seed, factory });
  else if (cfg.model === 'mlp') {
    const b = new Builder({ seed: cfg.seed, factory });
    const h = cfg.hidden ?? 256;
    // Flat [N, 784] input (no Flatten module: the integer engine starts with a weighted layer).
    model = new Sequential({
      fc1: b.linear('fc1', 784, h),
      relu1: b.relu('relu1'),
      fc2: b.linear('fc2', h, h),
      relu2: b.relu('relu2'),
      fc3: b.linear('fc3', h, 10),
    });
  } else if (cfg.model === 'regression-mlp') {
    const b = new Builder({ seed: cfg.seed, factory });
    const h = cfg.hidden ?? 50;
    const depth = cfg.depth ?? 1;
    const parts: Record<string, Module> = {};
    for (let i = 0; i < depth; i++) {
      parts[`fc${i}`] = b.linear(`fc${i}`, i === 0 ? (cfg.inFeatures ?? 13) : h, h);
      parts[`relu${i}`] = b.relu(`relu${i}`);
    }
    parts.out = b.linear('out', h, 2);
    model = new Sequential(parts);
  } else {
    throw new QbnnError('ERR_ARG', `unknown model '${String(cfg.model)}' (known: ${MODELS.join(', ')})`);
  }
  if (cfg.members && cfg.members > 0) {
    for (const [, l] of bayesLayers(model)) {
      const p = l.posterior as { reserveMembers?: (n: number) => void };
      p.reserveMembers?.(cfg.members);
    }
  }
  return model;
}

function checkInt(c: Record<string, unknown>, key: string, min: number, max: number, where = 'config'): void {
  const v = c[key];
  if (v === undefined) return;
  if (!(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) {
    throw new QbnnError(
      'ERR_ARG',
      `${where}.${key} must be an integer in [${min}, ${max}]; got ${JSON.stringify(v)}`,
    );
  }
}

/**
 * A model config read from a checkpoint, checked before anything is built: sizes are bounded (a
 * width or member count of 1e9 would allocate without bound) and the data set record names a
 * known data set exactly (an unknown name used to fall back to Fashion-MNIST silently).
 */
export function checkBayesConfig(c: Record<string, unknown>): BayesModelConfig {
  if (typeof c !== 'object' || c === null) throw new QbnnError('ERR_ARG', 'config must be an object');
  if (!([...MODELS, 'regression-mlp'] as unknown[]).includes(c.model)) {
    throw new QbnnError(
      'ERR_ARG',
      `config.model is ${JSON.stringify(c.model)}, not one of ${[...MODELS, 'regression-mlp'].join(', ')}`,
    );
  }
  if (typeof c.posterior !== 'string') throw new QbnnError('ERR_ARG', 'config.posterior must be a string');
  if (c.seed === undefined) throw new QbnnError('ERR_ARG', 'config.seed is missing');
  checkInt(c, 'seed', 0, MAX_SEED);
  checkInt(c, 'members', 0, MAX_MEMBERS);
  checkInt(c, 'hidden', 1, 4096);
  checkInt(c, 'depth', 1, 16);
  checkInt(c, 'inFeatures', 1, 100_000);
  if (c.dataset !== undefined) {
    const d = c.dataset as Record<string, unknown>;
    if (typeof d !== 'object' || d === null)
      throw new QbnnError('ERR_ARG', 'config.dataset must be an object');
    checkDatasetName(d.name, 'config.dataset.name');
    for (const [key, max] of [
      ['trainSize', 60_000],
      ['testSize', 10_000],
      ['seed', MAX_SEED],
    ] as const) {
      if (d[key] === undefined) throw new QbnnError('ERR_ARG', `config.dataset.${key} is missing`);
      checkInt(d, key, 0, max, 'config.dataset');
    }
  }
  return c as unknown as BayesModelConfig;
}

/** Largest seed the cli takes (flags and checkpoints). */
export const MAX_SEED = 2 ** 32 - 1;
/** Most SGHMC ensemble members (flags and checkpoints). */
export const MAX_MEMBERS = 100;

// Rebuilt from a checkpoint, SGHMC ensembles are sized from the members the file holds (what the
// config says is only checked for range): sizes follow the file's real contents.
registerArchitecture(
  BAYES_ARCH,
  (c, contents) => {
    const cfg = checkBayesConfig(c);
    if (!contents) return buildBayesModel(cfg);
    const model = buildBayesModel({ ...cfg, members: undefined });
    reserveEnsemble(model, contents);
    return model;
  },
  true,
);

/** Whether every Bayesian layer of the model has a KL divergence (variational posteriors). */
export function isVariational(model: Module): boolean {
  const layers = bayesLayers(model);
  return layers.length > 0 && layers.every(([, l]) => l.posterior.klMethods.length > 0);
}

/** Whether the model's layers hold ensembles (SGHMC). */
export function isEnsemble(model: Module): boolean {
  return bayesLayers(model).some(
    ([, l]) => typeof (l.posterior as { collect?: unknown }).collect === 'function',
  );
}

export { BayesLayer };
