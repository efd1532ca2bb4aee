import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import type { SeedLike } from '../init.js';
import { conv2d, conv2dGeometry, type Pair, pair } from './conv.js';
import { type ConvKind, convLayerOf } from './conv-nd.js';
import { conv3d, conv3dGeometry, type Triple, triple } from './conv3d.js';
import { liftToWidth, widthGeometry } from './one-axis.js';

/** Hyper-parameters of a 2-D transposed convolution, PyTorch semantics. */
export interface ConvTranspose2dParams {
  stride?: Pair;
  /** Removed from both sides of the output (`dilation * (k - 1) - padding` zeros pad the input). */
  padding?: Pair;
  /** Added to one side of the output to pick among the sizes a strided convolution maps from. */
  outputPadding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/** Options of {@link ConvTranspose2d} and {@link ConvTranspose1d}. */
export interface ConvTransposeOptions {
  /** Learn an additive per-channel bias (default true). */
  bias?: boolean;
  /** Initialisation seed (default 0). */
  seed?: SeedLike;
}

/** The checked shape of a transposed convolution (shared by the deterministic and Bayesian layers). */
export interface ConvTranspose2dGeometry {
  kernelSize: [number, number];
  params: {
    stride: [number, number];
    padding: [number, number];
    outputPadding: [number, number];
    dilation: [number, number];
    groups: number;
  };
  /** `[in, out / groups, kh, kw]` (PyTorch's layout for transposed convolutions). */
  weightShape: [number, number, number, number];
  /** torch's fan-in of this weight: `(out / groups) * kh * kw`. */
  fanIn: number;
}

/** Checks a transposed convolution's channels, kernel and hyper-parameters (errors name `layer`). */
export function convTranspose2dGeometry(
  layer: string,
  inChannels: number,
  outChannels: number,
  kernelSize: Pair,
  p: ConvTranspose2dParams = {},
): ConvTranspose2dGeometry {
  // Channels, groups and kernel are checked as for a convolution.
  const { kernelSize: k, params: c } = conv2dGeometry(layer, inChannels, outChannels, kernelSize, {
    groups: p.groups,
  });
  const groups = c.groups;
  const stride = pair(`${layer} stride`, p.stride ?? 1, 1);
  const dilation = pair(`${layer} dilation`, p.dilation ?? 1, 1);
  const outputPadding = pair(`${layer} outputPadding`, p.outputPadding ?? 0, 0);
  checkOutputPadding(layer, outputPadding, stride, dilation);
  const og = outChannels / groups;
  return {
    kernelSize: k,
    params: { stride, padding: pair(`${layer} padding`, p.padding ?? 0, 0), outputPadding, dilation, groups },
    weightShape: [inChannels, og, k[0], k[1]],
    fanIn: og * k[0] * k[1],
  };
}

/** `t` (N, C, spatial...) with `s - 1` zeros inserted between elements along spatial axis `axis`. */
function spreadAxis(t: tf.Tensor, axis: number, s: number): tf.Tensor {
  if (s === 1) return t;
  const shape = t.shape;
  const len = shape[axis];
  // [.., len, 1, ..] padded to [.., len, s, ..], flattened to len * s, the trailing s - 1 cut.
  const lifted = tf.reshape(t, [...shape.slice(0, axis + 1), 1, ...shape.slice(axis + 1)]);
  const pads = lifted.shape.map((_, i) => [0, i === axis + 1 ? s - 1 : 0] as [number, number]);
  const full = tf.reshape(tf.pad(lifted, pads), [...shape.slice(0, axis), len * s, ...shape.slice(axis + 1)]);
  const size = [...shape];
  size[axis] = (len - 1) * s + 1;
  return tf.slice(
    full,
    shape.map(() => 0),
    size,
  );
}

/**
 * Pads (or, for negative amounts, crops) the spatial axes of `t` (N, C, spatial...):
 * `amounts[i]` is `[before, after]` for spatial axis i.
 */
function padOrCrop(op: string, t: tf.Tensor, amounts: [number, number][]): tf.Tensor {
  const pads = amounts.map(([a, b]) => [Math.max(a, 0), Math.max(b, 0)] as [number, number]);
  let y = t;
  if (pads.some(([a, b]) => a > 0 || b > 0)) y = tf.pad(y, [[0, 0], [0, 0], ...pads]);
  const crop = amounts.map(([a, b]) => [Math.max(-a, 0), Math.max(-b, 0)]);
  if (crop.some(([a, b]) => a > 0 || b > 0)) {
    const size = y.shape.map((len, i) => (i < 2 ? len : len - crop[i - 2][0] - crop[i - 2][1]));
    if (size.some((len) => len <= 0))
      throw new QbnnError('ERR_SHAPE', `${op}: padding leaves an empty output`);
    y = tf.slice(y, [0, 0, ...crop.map(([a]) => a)], size);
  }
  return y;
}

/**
 * The input of the stride-1 convolution a transposed convolution equals: `x` spread by the
 * strides, padded by `d (k - 1) - p` on each side (cropped where negative) plus the output
 * padding after the last element. `kernel`, `stride`, ... hold one entry per spatial axis.
 */
function adjointInput(
  op: string,
  x: tf.Tensor,
  kernel: number[],
  p: { stride: number[]; padding: number[]; outputPadding: number[]; dilation: number[] },
): tf.Tensor {
  let spread = x;
  p.stride.forEach((s, i) => {
    spread = spreadAxis(spread, 2 + i, s);
  });
  const amounts = kernel.map((k, i) => {
    const a = p.dilation[i] * (k - 1) - p.padding[i];
    return [a, a + p.outputPadding[i]] as [number, number];
  });
  return padOrCrop(op, spread, amounts);
}

/**
 * The transposed convolution's weight `[in, out/g, ...k]` as the equivalent convolution's
 * `[out, in/g, ...k]`: channel axes swapped per group, every spatial axis flipped (which is
 * reversing the flattened row-major kernel).
 */
function adjointKernel(weight: tf.Tensor, groups: number): tf.Tensor {
  const [inC, og, ...k] = weight.shape;
  const ig = inC / groups;
  const taps = k.reduce((a, b) => a * b, 1);
  const swapped = tf.transpose(tf.reshape(weight, [groups, ig, og, taps]), [0, 2, 1, 3]);
  const flipped = tf.reverse(tf.reshape(swapped, [groups * og * ig, taps]), 1);
  return tf.reshape(flipped, [groups * og, ig, ...k]);
}

/** Checks that each axis's output padding is below its stride or dilation, as torch requires. */
function checkOutputPadding(
  layer: string,
  outputPadding: number[],
  stride: number[],
  dilation: number[],
): void {
  outputPadding.forEach((op, i) => {
    if (op >= Math.max(stride[i], dilation[i])) {
      throw new QbnnError(
        'ERR_ARG',
        `${layer} outputPadding [${outputPadding}] must be smaller than the stride [${stride}] or the dilation [${dilation}]`,
      );
    }
  });
}

/**
 * Functional 2-D transposed convolution with PyTorch semantics: `x` NCHW, `weight`
 * `[in, out/groups, kh, kw]`, `bias` `[out]`. Output size per axis
 * `(H - 1) s - 2 p + d (k - 1) + output_padding + 1`. Computed as the adjoint it is: the input
 * spread by the stride, padded by `d (k - 1) - p`, convolved (stride 1, same dilation) with the
 * kernel flipped and its channel axes swapped, so it trains with {@link conv2d}'s gradients.
 */
export function convTranspose2d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  p: ConvTranspose2dParams = {},
): tf.Tensor {
  if (x.rank !== 4)
    throw new QbnnError('ERR_SHAPE', `convTranspose2d: expected NCHW input, got [${x.shape}]`);
  if (weight.rank !== 4)
    throw new QbnnError('ERR_SHAPE', `convTranspose2d: expected a 4-D weight, got [${weight.shape}]`);
  const [inC, , kh, kw] = weight.shape;
  const groups = p.groups ?? 1;
  if (x.shape[1] !== inC || inC % groups !== 0) {
    throw new QbnnError(
      'ERR_SHAPE',
      `convTranspose2d: input has ${x.shape[1]} channels, weight [${weight.shape}] expects ${inC}`,
    );
  }
  const stride = pair('convTranspose2d stride', p.stride ?? 1, 1);
  const padding = pair('convTranspose2d padding', p.padding ?? 0, 0);
  const outputPadding = pair('convTranspose2d outputPadding', p.outputPadding ?? 0, 0);
  const dilation = pair('convTranspose2d dilation', p.dilation ?? 1, 1);
  const xs = adjointInput('convTranspose2d', x, [kh, kw], { stride, padding, outputPadding, dilation });
  const w = adjointKernel(weight, groups);
  return conv2d(xs, w, bias, { stride: 1, padding: 0, dilation, groups });
}

/** Functional 1-D transposed convolution: `x` `[N, C, L]`, `weight` `[in, out/groups, k]` (a height-1 2-D one). */
export function convTranspose1d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  p: { stride?: number; padding?: number; outputPadding?: number; dilation?: number; groups?: number } = {},
): tf.Tensor {
  if (x.rank !== 3)
    throw new QbnnError('ERR_SHAPE', `convTranspose1d: expected [N, C, L] input, got [${x.shape}]`);
  if (weight.rank !== 3)
    throw new QbnnError('ERR_SHAPE', `convTranspose1d: expected a 3-D weight, got [${weight.shape}]`);
  const [n, c, l] = x.shape;
  const [i, og, k] = weight.shape;
  const { params } = liftToWidth('convTranspose1d', k, p);
  const y = convTranspose2d(tf.reshape(x, [n, c, 1, l]), tf.reshape(weight, [i, og, 1, k]), bias, params);
  return tf.reshape(y, [n, y.shape[1] as number, y.shape[3] as number]);
}

/** The 2-D transposed convolution kind (see {@link ConvKind}). */
export const convTranspose2dKind: ConvKind<typeof convTranspose2dGeometry> = {
  name: 'ConvTranspose2d',
  op: 'convTranspose2d',
  geometry: convTranspose2dGeometry,
  apply: convTranspose2d,
};

/**
 * 2-D transposed convolution ("deconvolution") over NCHW input with PyTorch semantics, names
 * (`weight` `[in, out/groups, kh, kw]`, `bias`) and initialisation.
 */
export class ConvTranspose2d extends convLayerOf(convTranspose2dKind) {}

/** Hyper-parameters of a 1-D transposed convolution (one number each). */
export interface ConvTranspose1dParams {
  stride?: number;
  padding?: number;
  outputPadding?: number;
  dilation?: number;
  groups?: number;
}

/** The 1-D transposed convolution kind (see {@link ConvKind}). */
export const convTranspose1dKind: ConvKind<typeof convTranspose1dGeometry> = {
  name: 'ConvTranspose1d',
  op: 'convTranspose1d',
  geometry: convTranspose1dGeometry,
  apply: convTranspose1d,
};

/** 1-D transposed convolution over `[N, C, L]`, weight `[in, out/groups, k]`, torch semantics. */
export class ConvTranspose1d extends convLayerOf(convTranspose1dKind) {}

/** {@link convTranspose2dGeometry} for one spatial axis. */
export function convTranspose1dGeometry(
  layer: string,
  inChannels: number,
  outChannels: number,
  kernelSize: number,
  p: ConvTranspose1dParams = {},
): {
  kernelSize: number;
  params: Required<ConvTranspose1dParams>;
  weightShape: [number, number, number];
  fanIn: number;
} {
  const lifted = liftToWidth(layer, kernelSize, p);
  const g = convTranspose2dGeometry(layer, inChannels, outChannels, lifted.kernel, lifted.params);
  return widthGeometry<Required<ConvTranspose1dParams>>(g, kernelSize);
}

/** Hyper-parameters of a 3-D transposed convolution, PyTorch semantics (see {@link ConvTranspose2dParams}). */
export interface ConvTranspose3dParams {
  stride?: Triple;
  padding?: Triple;
  outputPadding?: Triple;
  dilation?: Triple;
  groups?: number;
}

/** The checked shape of a 3-D transposed convolution layer. */
export interface ConvTranspose3dGeometry {
  kernelSize: [number, number, number];
  params: {
    stride: [number, number, number];
    padding: [number, number, number];
    outputPadding: [number, number, number];
    dilation: [number, number, number];
    groups: number;
  };
  /** `[in, out / groups, kd, kh, kw]` (PyTorch's layout for transposed convolutions). */
  weightShape: [number, number, number, number, number];
  /** torch's fan-in of this weight: `(out / groups) * kd * kh * kw`. */
  fanIn: number;
}

/** Checks a 3-D transposed convolution's channels, kernel and hyper-parameters (errors name `layer`). */
export function convTranspose3dGeometry(
  layer: string,
  inChannels: number,
  outChannels: number,
  kernelSize: Triple,
  p: ConvTranspose3dParams = {},
): ConvTranspose3dGeometry {
  // Channels, groups and kernel are checked as for a convolution.
  const { kernelSize: k, params: c } = conv3dGeometry(layer, inChannels, outChannels, kernelSize, {
    groups: p.groups,
  });
  const stride = triple(`${layer} stride`, p.stride ?? 1, 1);
  const dilation = triple(`${layer} dilation`, p.dilation ?? 1, 1);
  const outputPadding = triple(`${layer} outputPadding`, p.outputPadding ?? 0, 0);
  checkOutputPadding(layer, outputPadding, stride, dilation);
  const og = outChannels / c.groups;
  return {
    kernelSize: k,
    params: {
      stride,
      padding: triple(`${layer} padding`, p.padding ?? 0, 0),
      outputPadding,
      dilation,
      groups: c.groups,
    },
    weightShape: [inChannels, og, k[0], k[1], k[2]],
    fanIn: og * k[0] * k[1] * k[2],
  };
}

/**
 * Functional 3-D transposed convolution with PyTorch semantics: `x` NCDHW, `weight`
 * `[in, out/groups, kd, kh, kw]`, `bias` `[out]`; computed as the stride-1 {@link conv3d} it is
 * the adjoint of, like {@link convTranspose2d}.
 */
export function convTranspose3d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  p: ConvTranspose3dParams = {},
): tf.Tensor {
  if (x.rank !== 5)
    throw new QbnnError('ERR_SHAPE', `convTranspose3d: expected NCDHW input, got [${x.shape}]`);
  if (weight.rank !== 5)
    throw new QbnnError('ERR_SHAPE', `convTranspose3d: expected a 5-D weight, got [${weight.shape}]`);
  const [inC, , kd, kh, kw] = weight.shape;
  const groups = p.groups ?? 1;
  if (x.shape[1] !== inC || inC % groups !== 0) {
    throw new QbnnError(
      'ERR_SHAPE',
      `convTranspose3d: input has ${x.shape[1]} channels, weight [${weight.shape}] expects ${inC}`,
    );
  }
  const stride = triple('convTranspose3d stride', p.stride ?? 1, 1);
  const padding = triple('convTranspose3d padding', p.padding ?? 0, 0);
  const outputPadding = triple('convTranspose3d outputPadding', p.outputPadding ?? 0, 0);
  const dilation = triple('convTranspose3d dilation', p.dilation ?? 1, 1);
  const xs = adjointInput('convTranspose3d', x, [kd, kh, kw], { stride, padding, outputPadding, dilation });
  return conv3d(xs, adjointKernel(weight, groups), bias, { stride: 1, padding: 0, dilation, groups });
}

/** The 3-D transposed convolution kind (see {@link ConvKind}). */
export const convTranspose3dKind: ConvKind<typeof convTranspose3dGeometry> = {
  name: 'ConvTranspose3d',
  op: 'convTranspose3d',
  geometry: convTranspose3dGeometry,
  apply: convTranspose3d,
};

/** 3-D transposed convolution over NCDHW input, weight `[in, out/groups, kd, kh, kw]`, torch semantics. */
export class ConvTranspose3d extends convLayerOf(convTranspose3dKind) {}
