import type { Rng } from '@qbnn/core';
import { toRng } from '../init.js';
import { ReLU } from '../layers/basic.js';
import { Conv2d, type Conv2dOptions, type Pair } from '../layers/conv.js';
import { Linear, type LinearOptions } from '../layers/linear.js';
import { BatchNorm2d, type BatchNorm2dOptions } from '../layers/norm.js';
import type { Module } from '../module.js';

/** Where a layer sits in the model being built, passed to every factory call. */
export interface LayerContext {
  /** The dotted path the layer will have in the model (`'layer1.0.conv1'`). */
  path: string;
  /** A stream for this layer's initialisation, forked from the model seed by layer index. */
  rng: Rng;
}

/**
 * How a model builder makes its layers. Each zoo model calls these instead of `new Linear` /
 * `new Conv2d`, so Bayesian or quantised layers swap in without copying the architecture.
 * Pass a partial factory: missing entries use {@link defaultFactory}.
 */
export interface LayerFactory {
  linear(inFeatures: number, outFeatures: number, opts: LinearOptions & LayerContext): Module;
  conv2d(
    inChannels: number,
    outChannels: number,
    kernelSize: Pair,
    opts: Conv2dOptions & LayerContext,
  ): Module;
  batchNorm2d(numFeatures: number, opts: BatchNorm2dOptions & LayerContext): Module;
  relu(opts: LayerContext): Module;
}

/** The deterministic layers of this package, seeded by `opts.rng`. */
export const defaultFactory: LayerFactory = {
  linear: (i, o, opts) => new Linear(i, o, { bias: opts.bias, seed: opts.rng }),
  conv2d: (i, o, k, opts) =>
    new Conv2d(i, o, k, {
      stride: opts.stride,
      padding: opts.padding,
      dilation: opts.dilation,
      groups: opts.groups,
      bias: opts.bias,
      seed: opts.rng,
    }),
  batchNorm2d: (c, opts) =>
    new BatchNorm2d(c, { eps: opts.eps, momentum: opts.momentum, affine: opts.affine }),
  relu: () => new ReLU(),
};

/** Options every zoo builder takes. */
export interface BuildOptions {
  /** Seed of the initialisation (default 0); layer i gets `new Rng(seed).fork(i)`. */
  seed?: number;
  /** Layer implementations (default {@link defaultFactory}); partial factories are completed. */
  factory?: Partial<LayerFactory>;
}

/** Hands out per-layer contexts in construction order. */
export class Builder {
  readonly f: LayerFactory;
  private readonly root: Rng;
  private index = 0;

  constructor(opts: BuildOptions) {
    this.f = { ...defaultFactory, ...opts.factory };
    this.root = toRng(opts.seed ?? 0);
  }

  ctx(path: string): LayerContext {
    return { path, rng: this.root.fork(this.index++) };
  }

  linear(path: string, i: number, o: number, opts: LinearOptions = {}): Module {
    return this.f.linear(i, o, { ...opts, ...this.ctx(path) });
  }

  conv2d(path: string, i: number, o: number, k: Pair, opts: Conv2dOptions = {}): Module {
    return this.f.conv2d(i, o, k, { ...opts, ...this.ctx(path) });
  }

  batchNorm2d(path: string, c: number, opts: BatchNorm2dOptions = {}): Module {
    return this.f.batchNorm2d(c, { ...opts, ...this.ctx(path) });
  }

  relu(path: string): Module {
    return this.f.relu(this.ctx(path));
  }
}
