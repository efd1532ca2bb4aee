import {
  type ConvGeometryFn,
  type ConvKernelArg,
  type ConvKind,
  ConvNd,
  type ConvParamsArg,
  conv1dKind,
  conv3dKind,
  convRepr,
  convTranspose1dKind,
  convTranspose2dKind,
  convTranspose3dKind,
} from '@qbnn/nn';
import { moduleLayerOptions, registerBnnConverter } from './dnn-to-bnn.js';
import { BayesLayer, type BayesLayerOptions, convLayerArgs } from './layers.js';
import type { LayerOp } from './types.js';

/**
 * A Bayesian convolution of any {@link ConvKind} (1-D, 3-D, transposed): the kind's op applied
 * with weights from the posterior. Each Bayesian-Torch class is a subclass naming its kind.
 */
export class BayesConvNd<F extends ConvGeometryFn> extends BayesLayer {
  readonly kind: ConvKind<F>;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: ReturnType<F>['kernelSize'];
  readonly params: ReturnType<F>['params'];
  readonly op: LayerOp;

  constructor(
    kind: ConvKind<F>,
    inChannels: number,
    outChannels: number,
    kernelSize: ConvKernelArg<F>,
    options: BayesLayerOptions & ConvParamsArg<F>,
  ) {
    const g = kind.geometry(`Bayes${kind.name}`, inChannels, outChannels, kernelSize, options);
    super(...convLayerArgs(g, outChannels, options));
    this.kind = kind;
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = g.kernelSize;
    this.params = g.params;
    const p = { ...g.params };
    this.op = { kind: kind.op, apply: (x, w, b) => kind.apply(x, w, b, p) };
  }

  override extraRepr(): string {
    return `${convRepr(this, ['stride', 'padding'])}, posterior=${this.posterior.kind}, mode=${this.activeMode}`;
  }
}

/** The constructor of one kind's Bayesian layers. */
export type BayesConvClass<F extends ConvGeometryFn> = new (
  inChannels: number,
  outChannels: number,
  kernelSize: ConvKernelArg<F>,
  options?: BayesLayerOptions & ConvParamsArg<F>,
) => BayesConvNd<F>;

/**
 * The base class of one kind's Bayesian layers, with the deterministic layer's constructor plus
 * the Bayesian options: `class BayesConv1d extends bayesConvOf(conv1dKind) {}`.
 */
export function bayesConvOf<F extends ConvGeometryFn>(kind: ConvKind<F>): BayesConvClass<F> {
  return class extends BayesConvNd<F> {
    constructor(
      inChannels: number,
      outChannels: number,
      kernelSize: ConvKernelArg<F>,
      options: BayesLayerOptions & ConvParamsArg<F> = {} as ConvParamsArg<F>,
    ) {
      super(kind, inChannels, outChannels, kernelSize, options);
    }
  };
}

/**
 * Bayesian 1-D convolution, `[N, C, L]`, weight `[out, in/groups, k]` (Bayesian-Torch's
 * `Conv1dReparameterization` / `Conv1dFlipout`).
 */
export class BayesConv1d extends bayesConvOf(conv1dKind) {}

/** Bayesian 3-D convolution, NCDHW, weight `[out, in/groups, kd, kh, kw]` (Bayesian-Torch's `Conv3d*`). */
export class BayesConv3d extends bayesConvOf(conv3dKind) {}

/**
 * Bayesian 2-D transposed convolution, NCHW, weight `[in, out/groups, kh, kw]`
 * (Bayesian-Torch's `ConvTranspose2dReparameterization` / `ConvTranspose2dFlipout`).
 */
export class BayesConvTranspose2d extends bayesConvOf(convTranspose2dKind) {}

/** Bayesian 1-D transposed convolution, `[N, C, L]`, weight `[in, out/groups, k]`. */
export class BayesConvTranspose1d extends bayesConvOf(convTranspose1dKind) {}

/**
 * Bayesian 3-D transposed convolution, NCDHW, weight `[in, out/groups, kd, kh, kw]`
 * (Bayesian-Torch's `ConvTranspose3dReparameterization` / `ConvTranspose3dFlipout`).
 */
export class BayesConvTranspose3d extends bayesConvOf(convTranspose3dKind) {}

/**
 * Registers the conversion of deterministic convolutions of `kind` into `Bayes`, which takes the
 * same channels, kernel size and hyper-parameters plus the Bayesian layer options.
 */
function registerConvConverter<F extends ConvGeometryFn>(kind: ConvKind<F>, Bayes: BayesConvClass<F>): void {
  registerBnnConverter(kind.name, {
    matches: (m) => m instanceof ConvNd && m.kind === kind,
    convert: (m, ctx) => {
      const c = m as ConvNd<F>;
      return new Bayes(c.inChannels, c.outChannels, c.kernelSize as ConvKernelArg<F>, {
        ...moduleLayerOptions(ctx, c),
        ...(c.params as ConvParamsArg<F>),
      });
    },
  });
}

registerConvConverter(conv1dKind, BayesConv1d);
registerConvConverter(conv3dKind, BayesConv3d);
registerConvConverter(convTranspose1dKind, BayesConvTranspose1d);
registerConvConverter(convTranspose2dKind, BayesConvTranspose2d);
registerConvConverter(convTranspose3dKind, BayesConvTranspose3d);
