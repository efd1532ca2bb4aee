import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { checkConvOperands, conv2d, conv2dGeometry, pair } from './conv.js';
import { type ConvKind, type ConvLayerOptions, convLayerOf } from './conv-nd.js';
import { liftToWidth, widthGeometry } from './one-axis.js';

/** Hyper-parameters of a 1-D convolution, PyTorch semantics (one number each). */
export interface Conv1dParams {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}

/** Options of {@link Conv1d}: its hyper-parameters, bias and seed. */
export type Conv1dOptions = ConvLayerOptions<typeof conv1dGeometry>;

/** The checked shape of a 1-D convolution layer (shared by the deterministic and Bayesian ones). */
export interface Conv1dGeometry {
  kernelSize: number;
  params: Required<Conv1dParams>;
  /** `[out, in / groups, k]` (PyTorch layout). */
  weightShape: [number, number, number];
  fanIn: number;
}

/** Checks a 1-D convolution's channels, kernel and hyper-parameters (errors name `layer`). */
export function conv1dGeometry(
  layer: string,
  inChannels: number,
  outChannels: number,
  kernelSize: number,
  p: Conv1dParams = {},
): Conv1dGeometry {
  const lifted = liftToWidth(layer, kernelSize, p);
  const g = conv2dGeometry(layer, inChannels, outChannels, lifted.kernel, lifted.params);
  return widthGeometry<Required<Conv1dParams>>(g, kernelSize);
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
  const { params } = liftToWidth('conv1d', k, p);
  // Checked here on the user's [N, C, L] shapes, so errors name conv1d and its length (conv2d
  // checks the lifted shapes again; they pass).
  const padding = pair('conv1d padding', params.padding ?? 0, 0)[1];
  const dilation = pair('conv1d dilation', params.dilation ?? 1, 1)[1];
  checkConvOperands('conv1d', x.shape, weight.shape, p.groups ?? 1, [padding], [dilation]);
  const y = conv2d(tf.reshape(x, [n, c, 1, l]), tf.reshape(weight, [o, ig, 1, k]), bias, params);
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
export class Conv1d extends convLayerOf(conv1dKind) {}
