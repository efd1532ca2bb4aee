import { QbnnError, type Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { type SeedLike, toRng } from '../init.js';
import { Module } from '../module.js';

/** Returns its input unchanged (the same tensor). */
export class Identity extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}

/** `max(x, 0)` elementwise. */
export class ReLU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
}

/** Flattens every axis from `startDim` (default 1) on: NCHW `[N, C, H, W]` to `[N, C*H*W]` in torch order. */
export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank <= this.startDim) return x;
    const lead = x.shape.slice(0, this.startDim);
    const rest = x.shape.slice(this.startDim).reduce((a, b) => a * b, 1);
    return tf.reshape(x, [...lead, rest]);
  }
}

/** Options of {@link Dropout}. */
export interface DropoutOptions {
  /** Seed of the mask stream (default 0); {@link Module.seedAll} replaces it. */
  seed?: SeedLike;
}

/**
 * Inverted dropout: in training mode each element is zeroed with probability `p` and the
 * survivors are scaled by `1 / (1 - p)`; identity in eval mode. Masks come from a counter-based
 * {@link Rng} stream, so runs are reproducible from the seed. `alwaysOn` keeps it active in
 * eval mode (MC Dropout inference).
 */
export class Dropout extends Module {
  readonly p: number;
  /** Sample masks in eval mode too (MC Dropout). */
  alwaysOn = false;
  private rng: Rng;

  constructor(p = 0.5, opts: DropoutOptions = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new QbnnError('ERR_ARG', `Dropout p must be in [0, 1], got ${p}`);
    this.p = p;
    this.rng = toRng(opts.seed);
  }

  override reseed(rng: Rng): void {
    this.rng = rng;
  }

  /** A mask of the given size: 0 with probability p, 1/(1-p) otherwise. */
  sampleMask(n: number): Float32Array {
    const u = this.rng.uniform(n);
    const scale = this.p < 1 ? 1 / (1 - this.p) : 0;
    for (let i = 0; i < n; i++) u[i] = u[i] >= this.p ? scale : 0;
    return u;
  }

  forward(x: tf.Tensor): tf.Tensor {
    if ((!this.training && !this.alwaysOn) || this.p === 0) return x;
    return tf.mul(x, tf.tensor(this.sampleMask(x.size), x.shape, 'float32'));
  }

  override extraRepr(): string {
    return `p=${this.p}`;
  }
}
