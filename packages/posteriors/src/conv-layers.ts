import {
  Conv1d,
  type Conv1dParams,
  Conv3d,
  type Conv3dParams,
  ConvTranspose1d,
  type ConvTranspose1dParams,
  ConvTranspose2d,
  type ConvTranspose2dParams,
  conv1d,
  conv1dGeometry,
  conv3d,
  conv3dGeometry,
  convTranspose1d,
  convTranspose1dGeometry,
  convTranspose2d,
  convTranspose2dGeometry,
  type Module,
  type Pair,
  type Triple,
} from '@qbnn/nn';
import { moduleLayerOptions, registerBnnConverter } from './dnn-to-bnn.js';
import { BayesLayer, type BayesLayerOptions } from './layers.js';
import type { LayerOp } from './types.js';

/**
 * Bayesian 1-D convolution, `[N, C, L]`, weight `[out, in/groups, k]` (Bayesian-Torch's
 * `Conv1dReparameterization` / `Conv1dFlipout`).
 */
export class BayesConv1d extends BayesLayer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly params: Required<Conv1dParams>;
  readonly op: LayerOp;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    options: BayesLayerOptions & Conv1dParams = {},
  ) {
    const g = conv1dGeometry('BayesConv1d', inChannels, outChannels, kernelSize, options);
    super(g.weightShape, (options.bias ?? true) ? [outChannels] : null, g.fanIn, options);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = kernelSize;
    this.params = g.params;
    const p = { ...g.params };
    this.op = { kind: 'conv1d', apply: (x, w, b) => conv1d(x, w, b, p) };
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel=${this.kernelSize}, stride=${this.params.stride}, padding=${this.params.padding}, posterior=${this.posterior.kind}, mode=${this.activeMode}`;
  }
}

/** Bayesian 3-D convolution, NCDHW, weight `[out, in/groups, kd, kh, kw]` (Bayesian-Torch's `Conv3d*`). */
export class BayesConv3d extends BayesLayer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number, number];
  readonly params: ReturnType<typeof conv3dGeometry>['params'];
  readonly op: LayerOp;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: Triple,
    options: BayesLayerOptions & Conv3dParams = {},
  ) {
    const g = conv3dGeometry('BayesConv3d', inChannels, outChannels, kernelSize, options);
    super(g.weightShape, (options.bias ?? true) ? [outChannels] : null, g.fanIn, options);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = g.kernelSize;
    this.params = g.params;
    const p = { ...g.params };
    this.op = { kind: 'conv3d', apply: (x, w, b) => conv3d(x, w, b, p) };
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel=[${this.kernelSize}], stride=[${this.params.stride}], padding=[${this.params.padding}], posterior=${this.posterior.kind}, mode=${this.activeMode}`;
  }
}

/**
 * Bayesian 2-D transposed convolution, NCHW, weight `[in, out/groups, kh, kw]`
 * (Bayesian-Torch's `ConvTranspose2dReparameterization` / `ConvTranspose2dFlipout`).
 */
export class BayesConvTranspose2d extends BayesLayer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly params: ReturnType<typeof convTranspose2dGeometry>['params'];
  readonly op: LayerOp;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: Pair,
    options: BayesLayerOptions & ConvTranspose2dParams = {},
  ) {
    const g = convTranspose2dGeometry('BayesConvTranspose2d', inChannels, outChannels, kernelSize, options);
    super(g.weightShape, (options.bias ?? true) ? [outChannels] : null, g.fanIn, options);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = g.kernelSize;
    this.params = g.params;
    const p = { ...g.params };
    this.op = { kind: 'convTranspose2d', apply: (x, w, b) => convTranspose2d(x, w, b, p) };
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel=[${this.kernelSize}], stride=[${this.params.stride}], padding=[${this.params.padding}], posterior=${this.posterior.kind}, mode=${this.activeMode}`;
  }
}

/** Bayesian 1-D transposed convolution, `[N, C, L]`, weight `[in, out/groups, k]`. */
export class BayesConvTranspose1d extends BayesLayer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly params: Required<ConvTranspose1dParams>;
  readonly op: LayerOp;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    options: BayesLayerOptions & ConvTranspose1dParams = {},
  ) {
    const g = convTranspose1dGeometry('BayesConvTranspose1d', inChannels, outChannels, kernelSize, options);
    super(g.weightShape, (options.bias ?? true) ? [outChannels] : null, g.fanIn, options);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = kernelSize;
    this.params = g.params;
    const p = { ...g.params };
    this.op = { kind: 'convTranspose1d', apply: (x, w, b) => convTranspose1d(x, w, b, p) };
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel=${this.kernelSize}, stride=${this.params.stride}, padding=${this.params.padding}, posterior=${this.posterior.kind}, mode=${this.activeMode}`;
  }
}

/** A deterministic convolution as the converters see it: channels, kernel, hyper-parameters. */
interface ConvLike extends Module {
  inChannels: number;
  outChannels: number;
}

/**
 * Registers the conversion of a convolution kind `Det` into `Bayes`, which takes the same
 * channels, kernel size and hyper-parameters (`params`) plus the Bayesian layer options.
 */
function registerConvConverter<D extends ConvLike & { kernelSize: unknown; params: object }>(
  name: string,
  Det: abstract new (...args: never[]) => D,
  Bayes: new (i: number, o: number, k: D['kernelSize'], options: BayesLayerOptions & D['params']) => Module,
): void {
  registerBnnConverter(name, {
    matches: (m) => m instanceof Det,
    convert: (m, ctx) => {
      const c = m as D;
      return new Bayes(c.inChannels, c.outChannels, c.kernelSize, {
        ...moduleLayerOptions(ctx, c),
        ...c.params,
      });
    },
  });
}

registerConvConverter('Conv1d', Conv1d, BayesConv1d);
registerConvConverter('Conv3d', Conv3d, BayesConv3d);
registerConvConverter('ConvTranspose1d', ConvTranspose1d, BayesConvTranspose1d);
registerConvConverter('ConvTranspose2d', ConvTranspose2d, BayesConvTranspose2d);
