import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import type { SeedLike } from '../init.js';
import { conv2d, conv2dGeometry } from './conv.js';
import { type ConvKind, ConvNd } from './conv-nd.js';

/** Hyper-parameters of a 1-D convolution, PyTorch semantics (one number each). */
export interface Conv1dParams {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}

/** Options of {@link Conv1d}. */
export interface Conv1dOptions extends Conv1dParams {
  /** Learn an additive per-channel bias (default true). */
  bias?: boolean;
  /** Initialisation seed (default 0). */
  seed?: SeedLike;
}

/** The checked shape of a 1-D convolution layer (shared by the deterministic and Bayesian ones). */
export interface Conv1dGeometry {
  kernelSize: number;
  params: Required<Conv1dParams>;
  /** `[out, in / groups, k]` (PyTorch layout). */
  weightShape: [number, number, number];
  fanIn: number;
}

function scalar(what: string, v: unknown): void {
  if (typeof v !== 'number' && v !== undefined)
    throw new QbnnError('ERR_ARG', `${what} must be a number, got ${v}`);
}

/** Checks a 1-D convolution's channels, kernel and hyper-parameters (errors name `layer`). */
export function conv1dGeometry(
  layer: string,
  inChannels: number,
  outChannels: number,
  kernelSize: number,
  p: Conv1dParams = {},
): Conv1dGeometry {
  for (const k of ['stride', 'padding', 'dilation'] as const) scalar(`${layer} ${k}`, p[k]);
  scalar(`${layer} kernelSize`, kernelSize);
  const g = conv2dGeometry(layer, inChannels, outChannels, [1, kernelSize], {
    stride: [1, p.stride ?? 1],
    padding: [0, p.padding ?? 0],
    dilation: [1, p.dilation ?? 1],
    groups: p.groups,
  });
  return {
    kernelSize,
    params: {
      stride: g.params.stride[1],
      padding: g.params.padding[1],
      dilation: g.params.dilation[1],
      groups: g.params.groups,
    },
    weightShape: [outChannels, inChannels / g.params.groups, kernelSize],
    fanIn: g.fanIn,
  };
}

/**
 * Functional 1-D convolution with PyTorch layouts: `x` `[N, C, L]`, `weight` `[out, in/groups, k]`,
 * `bias` `[out]`; returns `[N, out, L']`. Runs as a 2-D convolution over a height of 1, so it has
 * the same gradients and every combination of stride, padding, dilation and groups trains.
 */
export function conv1d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  p: Conv1dParams = {},
): tf.Tensor {
  if (x.rank !== 3) throw new QbnnError('ERR_SHAPE', `conv1d: expected [N, C, L] input, got [${x.shape}]`);
  if (weight.rank !== 3)
    throw new QbnnError('ERR_SHAPE', `conv1d: expected a 3-D weight, got [${weight.shape}]`);
  const [n, c, l] = x.shape;
  const [o, ig, k] = weight.shape;
  const y = conv2d(tf.reshape(x, [n, c, 1, l]), tf.reshape(weight, [o, ig, 1, k]), bias, {
    stride: [1, p.stride ?? 1],
    padding: [0, p.padding ?? 0],
    dilation: [1, p.dilation ?? 1],
    groups: p.groups ?? 1,
  });
  return tf.reshape(y, [n, o, y.shape[3] as number]);
}

/** The 1-D convolution kind (see {@link ConvKind}). */
export const conv1dKind: ConvKind<typeof conv1dGeometry> = {
  name: 'Conv1d',
  op: 'conv1d',
  geometry: conv1dGeometry,
  apply: conv1d,
};

/** 1-D convolution over `[N, C, L]` input with PyTorch semantics, names and initialisation. */
export class Conv1d extends ConvNd<typeof conv1dGeometry> {
  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: Conv1dOptions = {}) {
    super(conv1dKind, inChannels, outChannels, kernelSize, opts);
  }
}
