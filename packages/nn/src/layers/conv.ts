import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { kaimingUniformBound, type SeedLike, toRng, uniformInit } from '../init.js';
import { Module } from '../module.js';

/** A size given for both spatial axes or as `[height, width]`. */
export type Pair = number | [number, number];

/** Hyper-parameters of a 2-D convolution, PyTorch semantics. */
export interface Conv2dParams {
  /** Step between windows (default 1). */
  stride?: Pair;
  /** Zeros added on both sides of each spatial axis (default 0). */
  padding?: Pair;
  /** Spacing between kernel taps (default 1). */
  dilation?: Pair;
  /** Input and output channels are split into this many independent groups (default 1). */
  groups?: number;
}

/** Options of {@link Conv2d}. */
export interface Conv2dOptions extends Conv2dParams {
  /** Learn an additive per-channel bias (default true). */
  bias?: boolean;
  /** Initialisation seed (default 0). */
  seed?: SeedLike;
}

/** `[a, a]` for a number, the pair itself otherwise, checked to be integers >= `min`. */
export function pair(what: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  for (const n of p) {
    if (!Number.isSafeInteger(n) || n < min) {
      throw new QbnnError('ERR_ARG', `${what} must be an integer >= ${min} (or a pair of them), got ${v}`);
    }
  }
  return p;
}

/** Output spatial size of a convolution or pooling window, as PyTorch computes it. */
export function convOutSize(
  size: number,
  kernel: number,
  stride: number,
  padding: number,
  dilation = 1,
): number {
  return Math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Inserts `d - 1` zeros between taps along axis 0 of a `[kh, kw, ci, co]` kernel. */
function dilateAxis0(w: tf.Tensor4D, d: number): tf.Tensor4D {
  if (d === 1) return w;
  const [kh, kw, ci, co] = w.shape;
  const spaced = tf.pad(tf.reshape(w, [kh, 1, kw, ci, co]), [
    [0, 0],
    [0, d - 1],
    [0, 0],
    [0, 0],
    [0, 0],
  ]);
  return tf.slice(tf.reshape(spaced, [kh * d, kw, ci, co]), 0, (kh - 1) * d + 1) as tf.Tensor4D;
}

/**
 * Functional 2-D convolution with PyTorch layouts: `x` is NCHW, `weight` is
 * `[out, in/groups, kh, kw]`, `bias` is `[out]`; returns NCHW.
 *
 * Inside, activations are transposed to tfjs's NHWC and the kernel to HWIO. Padding is
 * explicit zero padding; dilation is applied by spreading the kernel with zeros (tfjs's
 * own dilated convolution has no gradient), so every combination of stride, padding,
 * dilation and groups trains. Groups run as separate convolutions concatenated on channels.
 */
export function conv2d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  p: Conv2dParams = {},
): tf.Tensor {
  const [sh, sw] = pair('Conv2d stride', p.stride ?? 1, 1);
  const [ph, pw] = pair('Conv2d padding', p.padding ?? 0, 0);
  const [dh, dw] = pair('Conv2d dilation', p.dilation ?? 1, 1);
  const groups = p.groups ?? 1;
  if (x.rank !== 4) throw new QbnnError('ERR_SHAPE', `conv2d: expected NCHW input, got [${x.shape}]`);
  if (weight.rank !== 4)
    throw new QbnnError('ERR_SHAPE', `conv2d: expected a 4-D weight, got [${weight.shape}]`);
  const [outC, inPerGroup] = weight.shape;
  const inC = x.shape[1];
  if (inC !== inPerGroup * groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `conv2d: input has ${inC} channels, weight [${weight.shape}] with groups=${groups} expects ${inPerGroup * groups}`,
    );
  }
  let xh = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  if (ph > 0 || pw > 0) {
    xh = tf.pad(xh, [
      [0, 0],
      [ph, ph],
      [pw, pw],
      [0, 0],
    ]);
  }
  let w = tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D; // [kh, kw, in/g, out]
  w = dilateAxis0(w, dh);
  if (dw > 1) w = tf.transpose(dilateAxis0(tf.transpose(w, [1, 0, 2, 3]), dw), [1, 0, 2, 3]) as tf.Tensor4D;
  let y: tf.Tensor4D;
  if (groups === 1) {
    y = tf.conv2d(xh, w, [sh, sw], 'valid');
  } else {
    const xs = tf.split(xh, groups, 3) as tf.Tensor4D[];
    const ws = tf.split(w, groups, 3);
    y = tf.concat(
      xs.map((xg, g) => tf.conv2d(xg, ws[g] as tf.Tensor4D, [sh, sw], 'valid')),
      3,
    ) as tf.Tensor4D;
  }
  let out: tf.Tensor = tf.transpose(y, [0, 3, 1, 2]);
  if (bias) out = tf.add(out, tf.reshape(bias, [1, outC, 1, 1]));
  return out;
}

/**
 * 2-D convolution over NCHW input with PyTorch semantics (weight `[out, in/groups, kh, kw]`,
 * bias `[out]`, torch's default initialisation). See {@link conv2d} for the NHWC detail.
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    if (!Number.isSafeInteger(groups) || groups < 1) {
      throw new QbnnError('ERR_ARG', `Conv2d groups must be a positive integer, got ${groups}`);
    }
    for (const [what, n] of [
      ['inChannels', inChannels],
      ['outChannels', outChannels],
    ] as const) {
      if (!Number.isSafeInteger(n) || n <= 0 || n % groups !== 0) {
        throw new QbnnError(
          'ERR_ARG',
          `Conv2d ${what} must be a positive multiple of groups=${groups}, got ${n}`,
        );
      }
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair('Conv2d kernelSize', kernelSize, 1);
    this.stride = pair('Conv2d stride', opts.stride ?? 1, 1);
    this.padding = pair('Conv2d padding', opts.padding ?? 0, 0);
    this.dilation = pair('Conv2d dilation', opts.dilation ?? 1, 1);
    this.groups = groups;
    const [kh, kw] = this.kernelSize;
    const fanIn = (inChannels / groups) * kh * kw;
    const bound = kaimingUniformBound(fanIn);
    const rng = toRng(opts.seed);
    tf.tidy(() => {
      this.registerParameter('weight', uniformInit([outChannels, inChannels / groups, kh, kw], bound, rng));
      if (opts.bias ?? true) this.registerParameter('bias', uniformInit([outChannels], bound, rng));
    });
  }

  /** The hyper-parameters, for functional calls with other weights (Bayesian layers). */
  get params(): Required<Conv2dParams> {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups };
  }

  forward(x: tf.Tensor): tf.Tensor {
    return conv2d(
      x,
      this.param('weight'),
      this.hasParam('bias') ? this.param('bias') : undefined,
      this.params,
    );
  }

  override extraRepr(): string {
    return (
      `${this.inChannels}, ${this.outChannels}, kernel=[${this.kernelSize}], stride=[${this.stride}], ` +
      `padding=[${this.padding}], dilation=[${this.dilation}], groups=${this.groups}, bias=${this.hasParam('bias')}`
    );
  }
}
