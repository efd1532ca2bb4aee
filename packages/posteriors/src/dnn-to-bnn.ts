import { checkKnownKeys, keysOf, QbnnError } from '@qbnn/core';
import { Conv2d, Linear, type Module } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { BayesConv2d, type BayesLayerOptions, BayesLinear } from './layers.js';
import { type GaussianPrior, gaussianPrior, type Prior } from './priors.js';
import type { PosteriorName, PosteriorOptionsOf, SamplingMode } from './types.js';

/**
 * Bayesian-Torch's `dnn_to_bnn` parameters (`bnn_prior_parameters`), accepted under their own
 * names: `prior_mu` and `prior_sigma` give the prior N(prior_mu, prior_sigma^2);
 * `posterior_mu_init` and `posterior_rho_init` initialise mu ~ N(posterior_mu_init, 0.1^2) and
 * rho ~ N(posterior_rho_init, 0.1^2) as Bayesian-Torch does; `type` `Reparameterization` samples
 * one weight per forward (mode `weights`), `Flipout` uses flipout; `moped_enable` with
 * `moped_delta` is MOPED.
 */
export interface BayesianTorchParameters {
  prior_mu?: number;
  prior_sigma?: number;
  posterior_mu_init?: number;
  posterior_rho_init?: number;
  type?: 'Reparameterization' | 'Flipout';
  moped_enable?: boolean;
  moped_delta?: number;
}

/** Options of {@link dnnToBnn}. */
export interface DnnToBnnOptions<N extends PosteriorName = PosteriorName> extends BayesianTorchParameters {
  /** Posterior for every converted layer. Default `gaussian`. */
  posterior?: N;
  posteriorOptions?: PosteriorOptionsOf<N>;
  /** Prior of every layer. Default N(0, 1). */
  prior?: GaussianPrior;
  /**
   * MOPED / empirical Bayes (Krishnan et al. 2020): initialise from the deterministic weights,
   * mu = w and sigma = delta |w| (`true` = delta 0.1). With `priorFromWeights`, the prior mean of
   * each tensor is the deterministic weight too (prior N(w, prior.sigma^2)).
   */
  moped?: boolean | { delta?: number; priorFromWeights?: boolean };
  /** Sampling mode of the new layers. */
  mode?: SamplingMode;
  /** Seed: layer k gets seed + k. Default 0. */
  seed?: number;
  /**
   * Module paths not to convert (e.g. a final layer to keep deterministic). A pattern may use
   * `*` for one path segment and `**` for any number of them (`features.*`, `**.fc`).
   */
  exclude?: string[];
  /** Only convert modules whose paths match one of these patterns (same syntax as `exclude`). */
  include?: string[];
}

/** What a converter gets besides the module: the options every converted layer shares. */
export interface BnnConversionContext {
  /** Layer options (posterior, its options, prior, mode, seed, isInput), without MOPED init. */
  layer: BayesLayerOptions;
  /** MOPED delta when MOPED is on, else null. */
  mopedDelta: number | null;
  /** Whether the prior mean is the deterministic weight (MOPED `priorFromWeights`). */
  priorFromWeights: boolean;
}

/**
 * Converts one deterministic layer kind into its Bayesian counterpart. `convert` receives a
 * module `matches` accepted and returns the new module (the old one is disposed by
 * {@link dnnToBnn}).
 */
export interface BnnConverter {
  matches(m: Module): boolean;
  convert(m: Module, ctx: BnnConversionContext): Module;
}

const converters: [string, BnnConverter][] = [];

/**
 * Adds (or replaces, by name) the conversion of a deterministic layer kind, so {@link dnnToBnn}
 * converts it. Packages with new layer kinds call this once at import.
 */
export function registerBnnConverter(name: string, converter: BnnConverter): void {
  const i = converters.findIndex(([n]) => n === name);
  if (i >= 0) converters[i] = [name, converter];
  else converters.push([name, converter]);
}

/** The names of the registered conversions, in registration order. */
export function bnnConverters(): string[] {
  return converters.map(([n]) => n);
}

/**
 * The layer options of one converted weight layer: MOPED init (mu = w, sigma = delta |w|) and,
 * with `priorFromWeights`, a prior centred on the deterministic weights. For converters.
 */
export function convertedLayerOptions(
  ctx: BnnConversionContext,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
): BayesLayerOptions {
  const o: BayesLayerOptions = { ...ctx.layer, bias: bias !== null };
  if (ctx.priorFromWeights) {
    const p = ctx.layer.prior ?? gaussianPrior(0, 1);
    const sigma = 'kind' in p ? p.sigma : p.weight.sigma;
    o.prior = {
      weight: gaussianPrior(tf.keep(weight.clone()), sigma),
      bias: bias ? gaussianPrior(tf.keep(bias.clone()), sigma) : undefined,
    };
  }
  if (ctx.mopedDelta !== null) {
    o.posteriorOptions = {
      ...ctx.layer.posteriorOptions,
      initFrom: { weight, bias, delta: ctx.mopedDelta },
    } as never;
  }
  return o;
}

/** {@link convertedLayerOptions} of a layer whose parameters are `weight` and an optional `bias`. */
export function moduleLayerOptions(ctx: BnnConversionContext, m: Module): BayesLayerOptions {
  return convertedLayerOptions(ctx, m.param('weight'), m.hasParam('bias') ? m.param('bias') : null);
}

registerBnnConverter('Linear', {
  matches: (m) => m instanceof Linear,
  convert: (m, ctx) => {
    const l = m as Linear;
    return new BayesLinear(l.inFeatures, l.outFeatures, moduleLayerOptions(ctx, l));
  },
});

registerBnnConverter('Conv2d', {
  matches: (m) => m instanceof Conv2d,
  convert: (m, ctx) => {
    const c = m as Conv2d;
    return new BayesConv2d(c.inChannels, c.outChannels, c.kernelSize, {
      ...moduleLayerOptions(ctx, c),
      ...c.params,
    });
  },
});

/** A matcher for module paths with `*` (within one segment) and `**` (any number of segments). */
export function pathPattern(pattern: string): (path: string) => boolean {
  const pat = pattern.split('.');
  const segs = pat.map((seg) =>
    seg === '**' ? null : new RegExp(`^${seg.replace(/[\\^$+?.()[\]{}|]/g, '\\$&').replace(/\*/g, '.*')}$`),
  );
  const match = (path: string[], i: number, j: number): boolean => {
    if (i === segs.length) return j === path.length;
    const s = segs[i];
    if (s === null) {
      for (let k = j; k <= path.length; k++) if (match(path, i + 1, k)) return true;
      return false;
    }
    return j < path.length && s.test(path[j]) && match(path, i + 1, j + 1);
  };
  return (p) => match(p.split('.'), 0, 0);
}

// dnnToBnn's option keys (a misspelt one, `posterir: 'radial'`, silently converted to the
// default); keysOf keeps the list complete.
const DNN_TO_BNN_KEYS = keysOf<DnnToBnnOptions>()([
  'posterior',
  'posteriorOptions',
  'prior',
  'moped',
  'mode',
  'seed',
  'exclude',
  'include',
  'prior_mu',
  'prior_sigma',
  'posterior_mu_init',
  'posterior_rho_init',
  'type',
  'moped_enable',
  'moped_delta',
]);

function resolveOptions(options: DnnToBnnOptions): BnnConversionContext {
  checkKnownKeys('dnnToBnn: options', options, DNN_TO_BNN_KEYS);
  const btPrior = options.prior_mu !== undefined || options.prior_sigma !== undefined;
  if (btPrior && options.prior) {
    throw new QbnnError('ERR_ARG', 'dnnToBnn: give either prior or prior_mu / prior_sigma, not both');
  }
  if (options.moped_enable !== undefined && options.moped !== undefined) {
    throw new QbnnError('ERR_ARG', 'dnnToBnn: give either moped or moped_enable / moped_delta, not both');
  }
  if (options.type !== undefined && options.mode !== undefined) {
    throw new QbnnError('ERR_ARG', 'dnnToBnn: give either mode or type, not both');
  }
  if (options.type !== undefined && options.type !== 'Reparameterization' && options.type !== 'Flipout') {
    throw new QbnnError(
      'ERR_ARG',
      `dnnToBnn: type must be 'Reparameterization' or 'Flipout', got '${options.type}'`,
    );
  }
  const prior: Prior = btPrior
    ? gaussianPrior(options.prior_mu ?? 0, options.prior_sigma ?? 1)
    : (options.prior ?? gaussianPrior(0, 1));
  const posteriorOptions: Record<string, unknown> = {
    ...(options.posteriorOptions as Record<string, unknown>),
  };
  if (options.posterior_mu_init !== undefined)
    posteriorOptions.muInit = { mean: options.posterior_mu_init, std: 0.1 };
  if (options.posterior_rho_init !== undefined)
    posteriorOptions.rhoInit = { mean: options.posterior_rho_init, std: 0.1 };
  const moped =
    options.moped_enable !== undefined
      ? options.moped_enable
        ? { delta: options.moped_delta ?? 0.1 }
        : null
      : options.moped === true
        ? {}
        : options.moped || null;
  const mode: SamplingMode | undefined =
    options.type === 'Reparameterization' ? 'weights' : options.type === 'Flipout' ? 'flipout' : options.mode;
  return {
    layer: { posterior: options.posterior, posteriorOptions: posteriorOptions as never, prior, mode },
    mopedDelta: moped ? (moped.delta ?? 0.1) : null,
    priorFromWeights: !!moped?.priorFromWeights,
  };
}

/**
 * Converts a deterministic @qbnn/nn model into a Bayesian one in place, like Bayesian-Torch's
 * `dnn_to_bnn`: every module of a kind with a registered conversion (Linear, Conv2d and the
 * kinds other files register, see {@link registerBnnConverter}) anywhere in the tree is replaced
 * by its Bayesian counterpart with the chosen registered posterior, unless its path matches an
 * `exclude` pattern (or, with `include`, does not match one). The first converted layer is marked as the network input (MC Dropout does
 * not drop the input). Bayesian-Torch's option names are accepted (see
 * {@link BayesianTorchParameters}). The replaced modules are disposed. Returns the model and the
 * converted paths.
 */
export function dnnToBnn<M extends Module, N extends PosteriorName>(
  model: M,
  options: DnnToBnnOptions<N> = {},
): { model: M; converted: string[] } {
  const ctx = resolveOptions(options as DnnToBnnOptions);
  const excluded = (options.exclude ?? []).map(pathPattern);
  const included = options.include?.map(pathPattern);
  const targets: [string, Module, BnnConverter][] = [];
  const inside: string[] = [];
  for (const [path, m] of model.namedModules()) {
    if (path === '' || excluded.some((x) => x(path))) continue;
    if (included && !included.some((x) => x(path))) continue;
    // Children of a module being converted go with it (an LSTM's gates are its own).
    if (inside.some((p) => path.startsWith(`${p}.`))) continue;
    const conv = converters.find(([, c]) => c.matches(m));
    if (conv) {
      targets.push([path, m, conv[1]]);
      inside.push(path);
    }
  }
  // the root cannot be replaced in place (setModule names a child): converting nothing would
  // hand back the deterministic layer as if it were Bayesian
  if (targets.length === 0 && converters.some(([, c]) => c.matches(model)))
    throw new QbnnError(
      'ERR_ARG',
      `dnnToBnn: the model itself is a ${model.constructor.name}, which cannot be replaced in place; wrap it (new Sequential(layer)) or create the Bayesian layer directly`,
    );
  const converted: string[] = [];
  targets.forEach(([path, m, conv], k) => {
    const layer = conv.convert(m, {
      ...ctx,
      layer: { ...ctx.layer, seed: (options.seed ?? 0) + k, isInput: k === 0 },
    });
    layer.train(model.training);
    model.setModule(path, layer);
    m.dispose();
    converted.push(path);
  });
  return { model, converted };
}
