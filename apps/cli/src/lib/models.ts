import { QbnnError } from '@qbnn/core';
import { Builder, type LayerFactory, lenet5, type Module, registerArchitecture, Sequential } from '@qbnn/nn';
import {
  BayesConv2d,
  BayesLayer,
  BayesLinear,
  bayesLayers,
  hasPosterior,
  listPosteriors,
} from '@qbnn/posteriors';

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

registerArchitecture(BAYES_ARCH, (c) => buildBayesModel(c as unknown as BayesModelConfig), true);

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
