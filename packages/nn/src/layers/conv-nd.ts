import type * as tf from '@tensorflow/tfjs-core';
import type { SeedLike } from '../init.js';
import { Module } from '../module.js';
import { registerWeightAndBias } from './weights.js';

/** The checked shape of a convolution layer of any kind, as its geometry function returns it. */
export interface ConvGeometry {
  /** The kernel size, normalised (a number for one axis, an array for several). */
  kernelSize: unknown;
  /** The normalised hyper-parameters, in the order PyTorch prints them. */
  params: object;
  /** The weight's shape in PyTorch's layout for the kind. */
  weightShape: number[];
  /** torch's fan-in of the weight (its initialisation bound). */
  fanIn: number;
}

/** Method syntax makes the arguments bivariant, so every kind's geometry function fits. */
interface GeometryMethod {
  geometry(
    layer: string,
    inChannels: number,
    outChannels: number,
    kernelSize: unknown,
    p?: object,
  ): ConvGeometry;
}

/**
 * A geometry function: checks a layer's channels, kernel size and hyper-parameters (errors name
 * `layer`) and normalises them.
 */
export type ConvGeometryFn = GeometryMethod['geometry'];

/** The kernel-size argument a kind's layers take. */
export type ConvKernelArg<F extends ConvGeometryFn> = Parameters<F>[3];
/** The hyper-parameter options a kind's layers take. */
export type ConvParamsArg<F extends ConvGeometryFn> = Exclude<Parameters<F>[4], undefined>;

/**
 * One kind of convolution (1-D, 3-D, transposed, ...): its torch class name, the functional op
 * it applies and its geometry function. The deterministic layers here and the Bayesian and
 * quantised layers elsewhere are built from it, so a kind is described once.
 */
export interface ConvKind<F extends ConvGeometryFn = ConvGeometryFn> {
  /** torch's class name (`Conv1d`). */
  readonly name: string;
  /** The functional op's name (`conv1d`); Bayesian layers use it as their op kind. */
  readonly op: string;
  readonly geometry: F;
  apply(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | undefined, p: ReturnType<F>['params']): tf.Tensor;
}

/** What {@link convRepr} prints of a conv layer. */
export interface ConvLayerShape {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: unknown;
  readonly params: object;
}

/**
 * `in, out, kernel=..., stride=..., ...` as PyTorch prints a conv layer: sizes of several axes in
 * brackets, one-axis sizes bare; `keys` picks the hyper-parameters (default all, in order).
 */
export function convRepr(layer: ConvLayerShape, keys?: readonly string[]): string {
  const show = (v: unknown) => (Array.isArray(v) ? `[${v}]` : `${v}`);
  const entries = Object.entries(layer.params).filter(([k]) => !keys || keys.includes(k));
  return [
    `${layer.inChannels}, ${layer.outChannels}, kernel=${show(layer.kernelSize)}`,
    ...entries.map(([k, v]) => `${k}=${show(v)}`),
  ].join(', ');
}

/** Options of a deterministic conv layer: its kind's hyper-parameters plus bias and seed. */
export type ConvLayerOptions<F extends ConvGeometryFn> = ConvParamsArg<F> & {
  /** Learn an additive per-channel bias (default true). */
  bias?: boolean;
  /** Initialisation seed (default 0). */
  seed?: SeedLike;
};

/**
 * A deterministic convolution of any {@link ConvKind}, with PyTorch semantics, names (`weight`,
 * `bias`) and initialisation. Each torch class (`Conv1d`, ...) is a subclass naming its kind.
 */
export class ConvNd<F extends ConvGeometryFn> extends Module {
  readonly kind: ConvKind<F>;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: ReturnType<F>['kernelSize'];
  readonly params: ReturnType<F>['params'];

  constructor(
    kind: ConvKind<F>,
    inChannels: number,
    outChannels: number,
    kernelSize: ConvKernelArg<F>,
    opts: ConvLayerOptions<F>,
  ) {
    super();
    const g = kind.geometry(kind.name, inChannels, outChannels, kernelSize, opts);
    this.kind = kind;
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = g.kernelSize;
    this.params = g.params;
    registerWeightAndBias(this, g.weightShape, outChannels, g.fanIn, opts);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const bias = this.hasParam('bias') ? this.param('bias') : undefined;
    return this.kind.apply(x, this.param('weight'), bias, this.params);
  }

  override extraRepr(): string {
    return `${convRepr(this)}, bias=${this.hasParam('bias')}`;
  }
}

/** The constructor of one kind's deterministic layers (torch's signature). */
export type ConvLayerClass<F extends ConvGeometryFn> = new (
  inChannels: number,
  outChannels: number,
  kernelSize: ConvKernelArg<F>,
  opts?: ConvLayerOptions<F>,
) => ConvNd<F>;

/**
 * The base class of one kind's deterministic layers, with the constructor torch's class has
 * (`new Conv1d(in, out, kernelSize, options)`): `class Conv1d extends convLayerOf(conv1dKind) {}`.
 */
export function convLayerOf<F extends ConvGeometryFn>(kind: ConvKind<F>): ConvLayerClass<F> {
  return class extends ConvNd<F> {
    constructor(
      inChannels: number,
      outChannels: number,
      kernelSize: ConvKernelArg<F>,
      opts: ConvLayerOptions<F> = {} as ConvLayerOptions<F>,
    ) {
      super(kind, inChannels, outChannels, kernelSize, opts);
    }
  };
}
