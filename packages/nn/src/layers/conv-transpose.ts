import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import type { SeedLike } from '../init.js';
import { conv2d, conv2dGeometry, type Pair, pair } from './conv.js';
import { type ConvKind, convLayerOf } from './conv-nd.js';
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
  for (let i = 0; i < 2; i++) {
    if (outputPadding[i] >= Math.max(stride[i], dilation[i])) {
      throw new QbnnError(
        'ERR_ARG',
        `${layer} outputPadding [${outputPadding}] must be smaller than the stride [${stride}] or the dilation [${dilation}]`,
      );
    }
  }
  const og = outChannels / groups;
  return {
    kernelSize: k,
    params: { stride, padding: pair(`${layer} padding`, p.padding ?? 0, 0), outputPadding, dilation, groups },
    weightShape: [inChannels, og, k[0], k[1]],
    fanIn: og * k[0] * k[1],
  };
}

/** NCHW `t` with `s - 1` zeros inserted between elements along H and W. */
function spread(t: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return t;
  const [n, c, h, w] = t.shape;
  const padded = tf.pad(tf.reshape(t, [n, c, h, 1, w, 1]), [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
  ]);
  const full = tf.reshape(padded, [n, c, h * sh, w * sw]) as tf.Tensor4D;
  return tf.slice(full, [0, 0, 0, 0], [n, c, (h - 1) * sh + 1, (w - 1) * sw + 1]);
}

/** Pads (or, for negative amounts, crops) the spatial axes of NCHW `t`: [[top, bottom], [left, right]]. */
function padOrCrop(t: tf.Tensor4D, amounts: [[number, number], [number, number]]): tf.Tensor4D {
  const pads = amounts.map(([a, b]) => [Math.max(a, 0), Math.max(b, 0)] as [number, number]);
  let y = t;
  if (pads.some(([a, b]) => a > 0 || b > 0)) y = tf.pad(y, [[0, 0], [0, 0], pads[0], pads[1]]);
  const crop = amounts.map(([a, b]) => [Math.max(-a, 0), Math.max(-b, 0)]);
  if (crop.some(([a, b]) => a > 0 || b > 0)) {
    const [n, c, h, w] = y.shape;
    const size = [n, c, h - crop[0][0] - crop[0][1], w - crop[1][0] - crop[1][1]];
    if (size[2] <= 0 || size[3] <= 0)
      throw new QbnnError('ERR_SHAPE', 'convTranspose2d: padding leaves an empty output');
    y = tf.slice(y, [0, 0, crop[0][0], crop[1][0]], size);
  }
  return y;
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
  const [inC, og, kh, kw] = weight.shape;
  const groups = p.groups ?? 1;
  if (x.shape[1] !== inC || inC % groups !== 0) {
    throw new QbnnError(
      'ERR_SHAPE',
      `convTranspose2d: input has ${x.shape[1]} channels, weight [${weight.shape}] expects ${inC}`,
    );
  }
  const [sh, sw] = pair('convTranspose2d stride', p.stride ?? 1, 1);
  const [ph, pw] = pair('convTranspose2d padding', p.padding ?? 0, 0);
  const [oph, opw] = pair('convTranspose2d outputPadding', p.outputPadding ?? 0, 0);
  const [dh, dw] = pair('convTranspose2d dilation', p.dilation ?? 1, 1);
  const ah = dh * (kh - 1) - ph;
  const aw = dw * (kw - 1) - pw;
  const xs = padOrCrop(spread(x as tf.Tensor4D, sh, sw), [
    [ah, ah + oph],
    [aw, aw + opw],
  ]);
  // [in, out/g, kh, kw] -> per group [out/g, in/g, kh, kw], spatially flipped
  const ig = inC / groups;
  const w = tf.reverse(
    tf.reshape(tf.transpose(tf.reshape(weight, [groups, ig, og, kh, kw]), [0, 2, 1, 3, 4]), [
      groups * og,
      ig,
      kh,
      kw,
    ]),
    [2, 3],
  );
  return conv2d(xs, w, bias, { stride: 1, padding: 0, dilation: [dh, dw], groups });
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
