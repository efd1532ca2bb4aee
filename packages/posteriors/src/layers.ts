import { checkKnownKeys, keysOf, QbnnError, type Rng } from '@qbnn/core';
import {
  type Conv2dParams,
  canConv2dReluMaxPool,
  conv2dGeometry,
  conv2dReluMaxPool,
  type LayerFactory,
  Module,
  type Pair,
  type SeedLike,
  toRng,
} from '@qbnn/nn';
import type * as tf from '@tensorflow/tfjs-core';
import { LocScalePosterior } from './locscale.js';
import { McDropoutPosterior } from './mcdropout.js';
import { conv2dOp, linearOp } from './ops.js';
import { gaussianPrior, type Prior } from './priors.js';
import { getPosterior } from './registry.js';
import type {
  KlOptions,
  LayerOp,
  Posterior,
  PosteriorName,
  PosteriorOptionsOf,
  SampleHook,
  SampleOptions,
  SamplingMode,
  WeightSample,
} from './types.js';

/** Options of the Bayesian layers. */
export interface BayesLayerOptions<N extends PosteriorName = PosteriorName> {
  /** Registered posterior name. Default `gaussian`. */
  posterior?: N;
  /** The posterior's own options. */
  posteriorOptions?: PosteriorOptionsOf<N>;
  /** Prior for the KL. Default N(0, 1). */
  prior?: Prior;
  /** Sampling mode; default the posterior's `defaultMode`. */
  mode?: SamplingMode;
  /** Learn a bias (default true). */
  bias?: boolean;
  /** Seed of the posterior's stream (initialisation and sampling). Default 0. */
  seed?: SeedLike;
  /** This layer sees the network input (MC Dropout does not drop there). Default false. */
  isInput?: boolean;
}

// The keys of BayesLayerOptions (keysOf keeps the list complete).
const BAYES_LAYER_KEYS = keysOf<BayesLayerOptions>()([
  'posterior',
  'posteriorOptions',
  'prior',
  'mode',
  'bias',
  'seed',
  'isInput',
]);

/**
 * The arguments of {@link BayesLayer}'s constructor for a convolution of geometry `g` (the
 * package's and plugins' convolution layers): its weight, a bias of `outChannels` unless
 * `options.bias` is false, and its hyper-parameters' names as the layer's own option keys.
 */
export function convLayerArgs(
  g: { weightShape: number[]; fanIn: number; params: object },
  outChannels: number,
  options: BayesLayerOptions,
): [number[], number[] | null, number, BayesLayerOptions, string[]] {
  return [
    g.weightShape,
    (options.bias ?? true) ? [outChannels] : null,
    g.fanIn,
    options,
    Object.keys(g.params),
  ];
}

/**
 * Base of the Bayesian layers: a module whose weight and bias are a {@link Posterior} plugin,
 * created by name from the registry. The posterior's Variables are this module's parameters
 * (`weight_mu`, `weight_rho`, ... as the plugin names them), so optimisers, `stateDict` and
 * checkpoints see them. Do not swap them with `replaceParameter`: the posterior holds them.
 */
export abstract class BayesLayer extends Module {
  readonly posterior: Posterior;
  /** Prior used by {@link kl}. */
  prior: Prior;
  /** Sampling mode of {@link forward} (undefined: the posterior's default). */
  mode: SamplingMode | undefined;
  /** Whether this layer sees the network input. */
  isInput: boolean;
  /** Quantisation hook applied while sampling (see {@link SampleHook}); set by QAT. */
  hook: SampleHook | undefined;
  /** The layer operation applied with sampled weights. */
  abstract readonly op: LayerOp;

  /**
   * `paramKeys`: the layer's own option keys besides {@link BayesLayerOptions}' (a convolution's
   * hyper-parameters); any other key is an ERR_ARG naming it (a misspelt `posteriorOption` or
   * `strid` silently used the default).
   */
  protected constructor(
    weightShape: number[],
    biasShape: number[] | null,
    fanIn: number,
    options: BayesLayerOptions,
    paramKeys: readonly string[] = [],
  ) {
    super();
    checkKnownKeys(`${this.constructor.name}: options`, options, [...BAYES_LAYER_KEYS, ...paramKeys]);
    const name = options.posterior ?? 'gaussian';
    const factory = getPosterior(name);
    const rng: Rng = toRng(options.seed);
    this.posterior = factory(
      {
        weightShape,
        biasShape,
        fanIn,
        rng,
        name: `${this.constructor.name}(${name})`,
        createParameter: (n, v) => this.registerParameter(n, v),
        createBuffer: (n, v) => this.registerBuffer(n, v),
      },
      options.posteriorOptions as never,
    );
    this.prior = options.prior ?? gaussianPrior(0, 1);
    this.isInput = options.isInput ?? false;
    if (this.isInput && 'isInput' in this.posterior) (this.posterior as { isInput: boolean }).isInput = true;
    this.mode = options.mode;
    if (options.mode && !this.posterior.modes.includes(options.mode)) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `posterior '${name}' does not support sampling mode '${options.mode}' (supported: ${this.posterior.modes.join(', ')})`,
      );
    }
    this.hook = undefined;
  }

  /** The mode the next forward uses. */
  get activeMode(): SamplingMode {
    return this.mode ?? this.posterior.defaultMode;
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.forwardWith(x, this.op);
  }

  /** The posterior's forward with `op` in place of the layer's op. */
  protected forwardWith(x: tf.Tensor, op: LayerOp): tf.Tensor {
    return this.posterior.forward(x, op, {
      mode: this.activeMode,
      training: this.training,
      isInput: this.isInput,
      hook: this.hook,
      klPrior: this.prior,
    });
  }

  /** KL(q || prior) of this layer (see {@link Posterior.getKl}). */
  kl(options?: KlOptions): tf.Scalar {
    return this.posterior.getKl(this.prior, options);
  }

  /** One weight (and bias) sample, with the layer's hook unless one is given. */
  sampleWeights(options: SampleOptions = {}): WeightSample {
    return this.posterior.sample({ hook: this.hook, ...options });
  }

  override reseed(rng: Rng): void {
    this.posterior.reseed?.(rng);
  }
}

/** Bayesian `y = x W^T + b` with `W [out, in]`; input `[N, in]`. */
export class BayesLinear extends BayesLayer {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly op: LayerOp = linearOp();

  constructor(inFeatures: number, outFeatures: number, options: BayesLayerOptions = {}) {
    for (const [what, n] of [
      ['inFeatures', inFeatures],
      ['outFeatures', outFeatures],
    ] as const) {
      if (!Number.isSafeInteger(n) || n <= 0) {
        throw new QbnnError('ERR_ARG', `BayesLinear ${what} must be a positive integer, got ${n}`);
      }
    }
    super([outFeatures, inFeatures], (options.bias ?? true) ? [outFeatures] : null, inFeatures, options);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
  }

  override forward(x: tf.Tensor): tf.Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new QbnnError(
        'ERR_SHAPE',
        `BayesLinear: expected input [N, ${this.inFeatures}], got [${x.shape}]`,
      );
    }
    return super.forward(x);
  }

  override extraRepr(): string {
    return `in=${this.inFeatures}, out=${this.outFeatures}, posterior=${this.posterior.kind}, mode=${this.activeMode}`;
  }
}

/** Options of {@link BayesConv2d}: the posterior options plus the convolution's hyper-parameters. */
export interface BayesConv2dOptions extends BayesLayerOptions, Conv2dParams {}

/** Bayesian 2-D convolution, NCHW, weight `[out, in/groups, kh, kw]` (PyTorch layouts). */
export class BayesConv2d extends BayesLayer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly params: Required<Conv2dParams>;
  readonly op: LayerOp;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: BayesConv2dOptions = {}) {
    const g = conv2dGeometry('BayesConv2d', inChannels, outChannels, kernelSize, options);
    super(...convLayerArgs(g, outChannels, options));
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = g.kernelSize;
    this.params = g.params;
    this.op = conv2dOp(this.params);
  }

  /**
   * relu(maxPool2x2(forward(x))) with the ReLU and the pool in the convolution's kernel (see
   * @qbnn/nn's conv2dReluMaxPool and Sequential), where the kernel serves it and the posterior
   * applies the op once, to its weights, as its output (the loc-scale posteriors in weights and
   * mean modes, MC Dropout in every mode); null otherwise.
   */
  forwardReluMaxPool(x: tf.Tensor): tf.Tensor | null {
    const mode = this.activeMode;
    const once =
      this.posterior instanceof McDropoutPosterior ||
      (this.posterior instanceof LocScalePosterior && (mode === 'weights' || mode === 'mean'));
    if (
      !once ||
      !canConv2dReluMaxPool(x, [this.outChannels, this.inChannels, ...this.kernelSize], this.params)
    )
      return null;
    const p = this.params;
    return this.forwardWith(x, { kind: 'conv2d', apply: (xi, w, b) => conv2dReluMaxPool(xi, w, b, p) });
  }

  override extraRepr(): string {
    return (
      `${this.inChannels}, ${this.outChannels}, kernel=[${this.kernelSize}], stride=[${this.params.stride}], ` +
      `padding=[${this.params.padding}], groups=${this.params.groups}, posterior=${this.posterior.kind}, mode=${this.activeMode}`
    );
  }
}

/** Options of {@link bayesFactory}. */
export type BayesFactoryOptions<N extends PosteriorName = PosteriorName> = Omit<
  BayesLayerOptions<N>,
  'seed' | 'isInput' | 'bias'
>;

/**
 * A layer factory for the @qbnn/nn model zoo that builds Bayesian layers with the given
 * posterior: `lenet5({}, { factory: bayesFactory({ posterior: 'radial' }) })` is a Bayesian
 * LeNet-5. Each layer is seeded from the builder's per-layer stream; the first weight layer
 * built is marked as the network input (MC Dropout leaves the input undropped). Make one
 * factory per model: it counts the layers it built.
 */
export function bayesFactory<N extends PosteriorName>(
  options: BayesFactoryOptions<N> = {},
): Partial<LayerFactory> {
  let built = 0;
  const common = (opts: { rng: Rng; bias?: boolean }): BayesLayerOptions => ({
    ...(options as BayesLayerOptions),
    seed: opts.rng,
    bias: opts.bias,
    isInput: built++ === 0,
  });
  return {
    linear: (i, o, opts) => new BayesLinear(i, o, common(opts)),
    conv2d: (i, o, k, opts) =>
      new BayesConv2d(i, o, k, {
        ...common(opts),
        stride: opts.stride,
        padding: opts.padding,
        dilation: opts.dilation,
        groups: opts.groups,
      }),
  };
}
