import type { Rng } from '@qbnn/core';
import type * as tf from '@tensorflow/tfjs-core';
import type { Prior } from './priors.js';

/**
 * How a posterior turns its distribution into a layer output.
 *
 * - `weights`: one weight sample shared by the whole batch (what quantisation and PTQ use).
 * - `local`: local reparameterisation (Kingma et al. 2015): the pre-activation's mean and
 *   variance are computed and sampled per example; every example sees an independent weight
 *   sample. Only for posteriors with independent weights (Gaussian).
 * - `flipout` (Wen et al. 2018): a shared perturbation decorrelated per example by random sign
 *   flips of inputs and outputs.
 * - `mean`: the posterior mean (or mode), no sampling.
 */
export type SamplingMode = 'weights' | 'local' | 'flipout' | 'mean';

/**
 * How the KL divergence to the prior is computed (see DESIGN.md section 4).
 *
 * - `closed`: exact closed form.
 * - `direct`: Monte Carlo over `nMcIter` weight samples held in the autodiff graph (memory grows
 *   with the sample count).
 * - `repar`: sufficient statistics t1 = mean xi, t2 = mean xi^2 accumulated without gradient
 *   (Nazarovs et al.); graph memory independent of the sample count.
 */
export type KlMethod = 'closed' | 'direct' | 'repar';

/** Options of {@link Posterior.getKl}. */
export interface KlOptions {
  /** Default `closed`. */
  method?: KlMethod;
  /** Monte Carlo samples for `direct` and `repar`. Default 1. */
  nMcIter?: number;
  /** Randomness for the Monte Carlo methods; default the posterior's own stream. */
  rng?: Rng;
}

/**
 * A layer's linear operation, applied to an input with a given weight and bias. Channel (or
 * feature) axis is 1 for both input and output (`[N, F]` for linear, `NCHW` for convolution),
 * which is what flipout's sign vectors and local reparameterisation rely on.
 */
export interface LayerOp {
  /** `linear`, `conv2d` or a plugin-defined kind. */
  readonly kind: string;
  /** `y = op(x; weight) + bias`, bias broadcast along axis 1. */
  apply(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor;
}

/**
 * The name of a quantisation point of weight sampling (DESIGN.md section 3): `mu`, `sigma`
 * (= softplus(rho)), `noise` (sigma * xi), `weight` (the sample), or a plugin's own point. Posteriors
 * report these to the {@link SampleHook}; @qbnn/qat observes and fake-quantises them and its integer
 * forms read their parameters under the same names.
 */
export type QuantPoint = 'mu' | 'sigma' | 'noise' | 'weight' | (string & {});

/**
 * A tensor hook called at named points of weight sampling, the seam quantisation-aware
 * training uses to insert fake-quantisers (DESIGN.md section 3: after mu, after
 * softplus(rho), on eps * sigma, on the sampled weight). Returning the input unchanged is a
 * no-op.
 *
 * @param point - the {@link QuantPoint}.
 * @param param - which tensor: `weight` or `bias`.
 */
export type SampleHook = (point: QuantPoint, param: 'weight' | 'bias', t: tf.Tensor) => tf.Tensor;

/** One draw (or the mean) of a layer's weight and bias. */
export interface WeightSample {
  weight: tf.Tensor;
  bias?: tf.Tensor;
}

/** Options of {@link Posterior.sample}. */
export interface SampleOptions {
  /** Randomness; default the posterior's own stream. */
  rng?: Rng;
  /** Quantisation hook, see {@link SampleHook}. */
  hook?: SampleHook;
}

/** Options of {@link Posterior.forward}. */
export interface ForwardOptions extends SampleOptions {
  /** Default `weights`. */
  mode?: SamplingMode;
  /** Whether the owning module is in training mode. */
  training?: boolean;
  /**
   * Whether this layer sees the network input (MC Dropout drops nothing there). Set by the
   * layer or by `dnnToBnn`.
   */
  isInput?: boolean;
  /**
   * The prior of the layer's KL. In training, a posterior may compute its closed-form KL to it in
   * the same pass as the weight sample and return that value from the next `getKl` with this
   * prior (the Gaussian posterior does, in weights mode, where the backend has the fused kernel).
   */
  klPrior?: Prior;
}

/** What a posterior is created for: the shapes of the layer it parameterises. */
export interface PosteriorSpec {
  /** Weight shape in torch layout: `[out, in]` or `[out, in/groups, kh, kw]`. */
  weightShape: readonly number[];
  /** Bias shape `[out]`, or null for a layer without bias. */
  biasShape: readonly number[] | null;
  /** Inputs feeding one output (in/groups * kh * kw), for initialisation. */
  fanIn: number;
  /** The posterior's random stream (sampling and initialisation). */
  rng: Rng;
  /** A name for error messages and variable names (e.g. the module path). */
  name?: string;
  /**
   * Allocates a trainable parameter named `name` (`weight_mu`, ...) with initial `value` and
   * returns its Variable. A Bayesian layer passes its module's `registerParameter`, so the
   * posterior's parameters are the module's (they train, save and load with it); standalone
   * posteriors default to `tf.variable`. The caller keeps ownership of `value`.
   */
  createParameter?: (name: string, value: tf.Tensor) => tf.Variable;
  /** Allocates a non-trainable buffer the same way (the layer's `registerBuffer`). */
  createBuffer?: (name: string, value: tf.Tensor) => tf.Variable;
}

/**
 * A variational (or sample-based) posterior over one layer's weight and bias: a plugin,
 * registered by name with {@link registerPosterior}.
 *
 * A posterior owns its parameters as tfjs Variables; the Bayesian layer registers them in its
 * module under the names {@link Posterior.parameters} returns, so they train, save and load
 * with the model.
 */
export interface Posterior {
  /** The registry name. */
  readonly kind: string;
  /** Sampling modes `forward` accepts. */
  readonly modes: readonly SamplingMode[];
  /** KL methods `getKl` accepts (empty: the posterior has no KL, e.g. SGHMC). */
  readonly klMethods: readonly KlMethod[];
  /** The mode a layer uses when none is given (for training). */
  readonly defaultMode: SamplingMode;
  /** Named trainable parameters, e.g. `weight_mu`, `weight_rho`, `bias_mu`, `bias_rho`. */
  parameters(): ReadonlyMap<string, tf.Variable>;
  /** Named non-trainable state to save with the model (may be empty). */
  buffers(): ReadonlyMap<string, tf.Tensor>;
  /** Draws one weight (and bias) sample, differentiable w.r.t. the parameters. */
  sample(options?: SampleOptions): WeightSample;
  /** The posterior mean (mode for ensembles) of weight and bias. */
  mean(): WeightSample;
  /** Samples and applies `op` to `x` in the given mode. */
  forward(x: tf.Tensor, op: LayerOp, options?: ForwardOptions): tf.Tensor;
  /**
   * KL(q || prior) as a scalar, differentiable w.r.t. the parameters.
   * @throws QbnnError ERR_UNSUPPORTED for a method not in {@link Posterior.klMethods}.
   */
  getKl(prior: Prior, options?: KlOptions): tf.Scalar;
  /**
   * Optional: transforms the layer input before the op (MC Dropout's Bernoulli mask). When
   * present, `forward(x)` equals `op.apply(transformInput(x), sample())` in `weights` mode, which
   * is what quantisation needs to observe the masked input separately.
   */
  transformInput?(x: tf.Tensor, options?: ForwardOptions): tf.Tensor;
  /** Optional: takes a new random stream (so `Module.seedAll` makes sampling reproducible). */
  reseed?(rng: Rng): void;
  /** Optional, for ensembles (SGHMC): how many members are stored. */
  ensembleSize?(): number;
  /**
   * Optional, for ensembles: use member `i` in every following forward and `sample`, or a random
   * member per call with `null`.
   */
  select?(i: number | null): void;
  /**
   * Optional, for ensembles whose members are stored copies of trainable parameters (SGHMC):
   * copies member `i` into the parameters (`'load'`), or the parameters into member `i`
   * (`'store'`), so that fine-tuning (QAT) can train each member through the parameters.
   */
  copyMember?(i: number, direction: 'load' | 'store'): void;
  /** Frees the variables. */
  dispose(): void;
}

/** Creates a posterior for a layer. `options` are the plugin's own (validated by it). */
export type PosteriorFactory<O = Record<string, unknown>> = (spec: PosteriorSpec, options?: O) => Posterior;

/**
 * Option types of the registered posteriors, keyed by name. A plugin package adds its own with
 * declaration merging:
 *
 * ```ts
 * declare module '@qbnn/posteriors' {
 *   interface PosteriorOptionsMap { lowrank: LowRankOptions }
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: augmented by plugins through declaration merging
export interface PosteriorOptionsMap {}

/** A registered posterior name: a known one, or any string (checked at run time). */
export type PosteriorName = keyof PosteriorOptionsMap | (string & {});

/** The options type of posterior `N`. */
export type PosteriorOptionsOf<N> = N extends keyof PosteriorOptionsMap
  ? PosteriorOptionsMap[N]
  : Record<string, unknown>;
