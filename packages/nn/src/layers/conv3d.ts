import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { conv2d, conv2dGeometry } from './conv.js';
import { type ConvKind, type ConvLayerOptions, convLayerOf } from './conv-nd.js';

/** A size for the three spatial axes (depth, height, width) or one number for all. */
export type Triple = number | [number, number, number];

/** Hyper-parameters of a 3-D convolution, PyTorch semantics. */
export interface Conv3dParams {
  stride?: Triple;
  padding?: Triple;
  dilation?: Triple;
  groups?: number;
}

/** Options of {@link Conv3d}: its hyper-parameters, bias and seed. */
export type Conv3dOptions = ConvLayerOptions<typeof conv3dGeometry>;

/** `[a, a, a]` for a number, the triple itself otherwise, checked to be integers >= `min`. */
export function triple(what: string, v: Triple, min: number): [number, number, number] {
  const t: [number, number, number] = typeof v === 'number' ? [v, v, v] : [v[0], v[1], v[2]];
  if (!Array.isArray(v) && typeof v !== 'number')
    throw new QbnnError('ERR_ARG', `${what} must be a number or a triple`);
  for (const n of t) {
    if (!Number.isSafeInteger(n) || n < min) {
      throw new QbnnError('ERR_ARG', `${what} must be an integer >= ${min} (or a triple of them), got ${v}`);
    }
  }
  return t;
}

/** The checked shape of a 3-D convolution layer. */
export interface Conv3dGeometry {
  kernelSize: [number, number, number];
  params: {
    stride: [number, number, number];
    padding: [number, number, number];
    dilation: [number, number, number];
    groups: number;
  };
  /** `[out, in / groups, kd, kh, kw]`. */
  weightShape: [number, number, number, number, number];
  fanIn: number;
}

/** Checks a 3-D convolution's channels, kernel and hyper-parameters (errors name `layer`). */
export function conv3dGeometry(
  layer: string,
  inChannels: number,
  outChannels: number,
  kernelSize: Triple,
  p: Conv3dParams = {},
): Conv3dGeometry {
  const k = triple(`${layer} kernelSize`, kernelSize, 1);
  const g = conv2dGeometry(layer, inChannels, outChannels, [k[1], k[2]], { groups: p.groups });
  const cin = inChannels / g.params.groups;
  return {
    kernelSize: k,
    params: {
      stride: triple(`${layer} stride`, p.stride ?? 1, 1),
      padding: triple(`${layer} padding`, p.padding ?? 0, 0),
      dilation: triple(`${layer} dilation`, p.dilation ?? 1, 1),
      groups: g.params.groups,
    },
    weightShape: [outChannels, cin, k[0], k[1], k[2]],
    fanIn: cin * k[0] * k[1] * k[2],
  };
}

/** Depths `start, start + step, ...` (`count` of them) of NCDHW `x`, by slicing and reshaping. */
function depthSlices(x: tf.Tensor, start: number, step: number, count: number): tf.Tensor {
  const [n, c, , h, w] = x.shape;
  const run = tf.slice(x, [0, 0, start, 0, 0], [n, c, (count - 1) * step + 1, h, w]);
  if (step === 1) return run;
  const padded = tf.pad(run, [
    [0, 0],
    [0, 0],
    [0, step - 1],
    [0, 0],
    [0, 0],
  ]);
  return tf.squeeze(
    tf.slice(tf.reshape(padded, [n, c, count, step, h, w]), [0, 0, 0, 0, 0, 0], [n, c, count, 1, h, w]),
    [3],
  );
}

/**
 * Functional 3-D convolution with PyTorch layouts: `x` NCDHW, `weight` `[out, in/groups, kd, kh, kw]`,
 * `bias` `[out]`. Each depth tap of the kernel is a 2-D convolution over the depth slices it
 * touches (folded into the batch), summed over taps, so it trains with {@link conv2d}'s gradients.
 */
export function conv3d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  p: Conv3dParams = {},
): tf.Tensor {
  if (x.rank !== 5) throw new QbnnError('ERR_SHAPE', `conv3d: expected NCDHW input, got [${x.shape}]`);
  if (weight.rank !== 5)
    throw new QbnnError('ERR_SHAPE', `conv3d: expected a 5-D weight, got [${weight.shape}]`);
  const [sd, sh, sw] = triple('conv3d stride', p.stride ?? 1, 1);
  const [pd, ph, pw] = triple('conv3d padding', p.padding ?? 0, 0);
  const [dd, dh, dw] = triple('conv3d dilation', p.dilation ?? 1, 1);
  const groups = p.groups ?? 1;
  const [n, c, d, h, w] = x.shape;
  const [o, ig, kd, kh, kw] = weight.shape;
  if (c !== ig * groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `conv3d: input has ${c} channels, weight [${weight.shape}] with groups=${groups} expects ${ig * groups}`,
    );
  }
  const od = Math.floor((d + 2 * pd - dd * (kd - 1) - 1) / sd) + 1;
  if (od <= 0) throw new QbnnError('ERR_SHAPE', `conv3d: depth ${d} is smaller than the kernel's reach`);
  const xp =
    pd > 0
      ? tf.pad(x, [
          [0, 0],
          [0, 0],
          [pd, pd],
          [0, 0],
          [0, 0],
        ])
      : x;
  const taps = tf.split(weight, kd, 2);
  let sum: tf.Tensor | undefined;
  for (let a = 0; a < kd; a++) {
    const slab = depthSlices(xp, a * dd, sd, od); // [N, C, OD, H, W]
    const flat = tf.reshape(tf.transpose(slab, [0, 2, 1, 3, 4]), [n * od, c, h, w]);
    const y = conv2d(flat, tf.reshape(taps[a], [o, ig, kh, kw]), undefined, {
      stride: [sh, sw],
      padding: [ph, pw],
      dilation: [dh, dw],
      groups,
    });
    sum = sum ? tf.add(sum, y) : y;
  }
  const y = sum as tf.Tensor;
  const [, , oh, ow] = y.shape;
  let out = tf.transpose(tf.reshape(y, [n, od, o, oh, ow]), [0, 2, 1, 3, 4]);
  if (bias) out = tf.add(out, tf.reshape(bias, [1, o, 1, 1, 1]));
  return out;
}

/** The 3-D convolution kind (see {@link ConvKind}). */
export const conv3dKind: ConvKind<typeof conv3dGeometry> = {
  name: 'Conv3d',
  op: 'conv3d',
  geometry: conv3dGeometry,
  apply: conv3d,
};

/** 3-D convolution over NCDHW input with PyTorch semantics, names and initialisation. */
export class Conv3d extends convLayerOf(conv3dKind) {}
