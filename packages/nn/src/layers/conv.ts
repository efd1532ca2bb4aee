import { CONV_RELU_MAX_POOL, CONV_RELU_MAX_POOL_GRAD, convReluMaxPool, QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { kaimingUniformBound, type SeedLike, toRng, uniformInit } from '../init.js';
import { Module } from '../module.js';
import { nativeFloatKernels } from './native-float.js';

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

/** The checked shape of a 2-D convolution layer, shared by every conv layer class. */
export interface Conv2dGeometry {
  kernelSize: [number, number];
  /** Stride, padding and dilation as `[height, width]` pairs, and the group count. */
  params: { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number };
  /** `[out, in / groups, kh, kw]` (PyTorch layout). */
  weightShape: [number, number, number, number];
  /** Inputs feeding one output: `(in / groups) * kh * kw`. */
  fanIn: number;
}

/**
 * Checks a conv layer's channels, kernel and hyper-parameters (errors name `layer`) and returns
 * them normalised: what a deterministic, Bayesian or quantised conv layer needs to build itself.
 */
export function conv2dGeometry(
  layer: string,
  inChannels: number,
  outChannels: number,
  kernelSize: Pair,
  p: Conv2dParams = {},
): Conv2dGeometry {
  const groups = p.groups ?? 1;
  if (!Number.isSafeInteger(groups) || groups < 1) {
    throw new QbnnError('ERR_ARG', `${layer} groups must be a positive integer, got ${groups}`);
  }
  for (const [what, n] of [
    ['inChannels', inChannels],
    ['outChannels', outChannels],
  ] as const) {
    if (!Number.isSafeInteger(n) || n <= 0 || n % groups !== 0) {
      throw new QbnnError(
        'ERR_ARG',
        `${layer} ${what} must be a positive multiple of groups=${groups}, got ${n}`,
      );
    }
  }
  const [kh, kw] = pair(`${layer} kernelSize`, kernelSize, 1);
  const params: Conv2dGeometry['params'] = {
    stride: pair(`${layer} stride`, p.stride ?? 1, 1),
    padding: pair(`${layer} padding`, p.padding ?? 0, 0),
    dilation: pair(`${layer} dilation`, p.dilation ?? 1, 1),
    groups,
  };
  const cin = inChannels / groups;
  return { kernelSize: [kh, kw], params, weightShape: [outChannels, cin, kh, kw], fanIn: cin * kh * kw };
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

/**
 * Throws ERR_SHAPE when a window of `kernel` (dilated by `dilation`) does not fit the input's
 * spatial axes (those after N and C: one for 1-D, two for NCHW) padded by `padding` (PyTorch
 * refuses it too): the convolution failed deep in a kernel ('geometry[4] must be >= 0',
 * 'Invalid typed array length: -4') and a pool returned an empty tensor.
 */
export function checkWindowFits(
  what: string,
  shape: readonly number[],
  kernel: readonly number[],
  padding: readonly number[],
  dilation: readonly number[] = kernel.map(() => 1),
): void {
  const dims = shape.slice(2);
  const ek = kernel.map((k, i) => dilation[i] * (k - 1) + 1);
  if (dims.some((d, i) => d + 2 * padding[i] < ek[i]))
    throw new QbnnError(
      'ERR_SHAPE',
      `${what}: the input's ${dims.join(' x ')} padded by [${padding}] is smaller than the ${dilation.some((d) => d > 1) ? 'dilated ' : ''}kernel ${ek.join(' x ')} (input [${shape}])`,
    );
}

/**
 * The checks of a convolution's operands shared by its 1-D and 2-D functions, errors naming
 * `op` (the function the user called) with the user's shapes: the input's channels must be the
 * weight's in-channels times `groups`, and the (dilated) kernel must fit the padded input.
 */
export function checkConvOperands(
  op: string,
  xShape: readonly number[],
  weightShape: readonly number[],
  groups: number,
  padding: readonly number[],
  dilation: readonly number[],
): void {
  const inPerGroup = weightShape[1];
  const inC = xShape[1];
  if (inC !== inPerGroup * groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `${op}: input has ${inC} channels, weight [${weightShape}] with groups=${groups} expects ${inPerGroup * groups}`,
    );
  }
  checkWindowFits(op, xShape, weightShape.slice(2), padding, dilation);
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

/** Spreads the spatial axes of NHWC `t` by inserting `s - 1` zeros between elements. */
function dilateNhwc(t: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return t;
  const [n, h, w, c] = t.shape;
  const spread = tf.pad(tf.reshape(t, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  const full = tf.reshape(spread, [n, h * sh, w * sw, c]) as tf.Tensor4D;
  return tf.slice(full, [0, 0, 0, 0], [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c]);
}

/** Gradient of a valid strided convolution with respect to its input, as a forward convolution. */
function convInputGrad(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  xShape: number[],
  sh: number,
  sw: number,
): tf.Tensor4D {
  const [, h, wd] = xShape;
  const [kh, kw] = w.shape;
  const [, oh, ow] = dy.shape;
  const rh = h - ((oh - 1) * sh + kh);
  const rw = wd - ((ow - 1) * sw + kw);
  const padded = tf.pad(dilateNhwc(dy, sh, sw), [
    [0, 0],
    [kh - 1, kh - 1 + rh],
    [kw - 1, kw - 1 + rw],
    [0, 0],
  ]);
  const flipped = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  return tf.conv2d(padded, flipped, 1, 'valid');
}

/** Gradient of a valid strided convolution with respect to its kernel, as a forward convolution. */
function convFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  wShape: number[],
  sh: number,
  sw: number,
): tf.Tensor4D {
  const [kh, kw, ci, co] = wShape;
  const xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [Ci, H, W, N]
  const ft = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [OH, OW, N, Co]
  const full = tf.conv2d(xt, ft, 1, 'valid', 'NHWC', [sh, sw]); // [Ci, >= KH, >= KW, Co]
  return tf.transpose(tf.slice(full, [0, 0, 0, 0], [ci, kh, kw, co]), [1, 2, 0, 3]) as tf.Tensor4D;
}

/**
 * Valid NHWC convolution with a custom gradient: both backward passes are themselves forward
 * convolutions (flipped kernel over the dilated output gradient; input-by-gradient correlation),
 * which run several times faster on tfjs-backend-wasm than its Conv2DBackpropInput /
 * Conv2DBackpropFilter kernels.
 */
export function conv2dValid(x: tf.Tensor4D, w: tf.Tensor4D, stride: [number, number]): tf.Tensor4D {
  const [sh, sw] = stride;
  // Native fp32 kernels serve tfjs's own backprop kernels fast, and tfjs then skips the input
  // gradient of the first layer (its input needs none), which this custom gradient cannot.
  if (nativeFloatKernels('Conv2DBackpropInput', 'Conv2DBackpropFilter'))
    return tf.conv2d(x, w, stride, 'valid');
  const f = tf.customGrad((xi: tf.Tensor | tf.GradSaveFunc, wi: tf.Tensor | tf.GradSaveFunc, save) => {
    const xt = xi as tf.Tensor4D;
    const wt = wi as tf.Tensor4D;
    (save as tf.GradSaveFunc)([xt, wt]);
    return {
      value: tf.conv2d(xt, wt, [sh, sw], 'valid'),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as tf.Tensor4D[];
        return [convInputGrad(dy, ws, xs.shape, sh, sw), convFilterGrad(xs, dy, ws.shape, sh, sw)];
      },
    };
  });
  return f(x, w) as tf.Tensor4D;
}

/** tfjs kernels that, served by an installed fp32 kernel set, run NCHW convolutions directly. */
const NCHW_CONV_KERNELS = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'];

/**
 * Functional 2-D convolution with PyTorch layouts: `x` is NCHW, `weight` is
 * `[out, in/groups, kh, kw]`, `bias` is `[out]`; returns NCHW.
 *
 * With an installed fp32 kernel set (e.g. @qbnn/native-amx), tfjs's NCHW convolution runs as it
 * is (dilation 1, one group). Otherwise activations are transposed to tfjs's NHWC and the kernel to HWIO. Padding is
 * explicit zero padding; dilation is applied by spreading the kernel with zeros (tfjs's
 * own dilated convolution has no gradient), so every combination of stride, padding,
 * dilation and groups trains. Groups run as separate convolutions concatenated on channels.
 * Gradients are computed by {@link conv2dValid}.
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
  const outC = weight.shape[0];
  checkConvOperands('conv2d', x.shape, weight.shape, groups, [ph, pw], [dh, dw]);
  if (dh === 1 && dw === 1 && groups === 1 && nativeFloatKernels(...NCHW_CONV_KERNELS)) {
    // Native kernels take NCHW as it is: no transposes or padded copies of the activations.
    const w = tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D; // [kh, kw, in, out]
    const pad: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [0, 0],
      [ph, ph],
      [pw, pw],
    ];
    if (bias && nativeFloatKernels('FusedConv2D') && tf.getGradient(tf.FusedConv2D) !== undefined) {
      // The bias in the convolution's own pass (@qbnn/core registers this kernel's gradient).
      const attrs = { strides: [sh, sw], pad, dataFormat: 'NCHW', dilations: [1, 1], activation: 'linear' };
      return tf
        .engine()
        .runKernel(tf.FusedConv2D, { x, filter: w, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    }
    const y = tf.conv2d(x as tf.Tensor4D, w, [sh, sw], pad, 'NCHW');
    return bias ? tf.add(y, tf.reshape(bias, [1, outC, 1, 1])) : y;
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
    y = conv2dValid(xh, w, [sh, sw]);
  } else {
    const xs = tf.split(xh, groups, 3) as tf.Tensor4D[];
    const ws = tf.split(w, groups, 3);
    y = tf.concat(
      xs.map((xg, g) => conv2dValid(xg, ws[g] as tf.Tensor4D, [sh, sw])),
      3,
    ) as tf.Tensor4D;
  }
  let out: tf.Tensor = tf.transpose(y, [0, 3, 1, 2]);
  if (bias) out = tf.add(out, tf.reshape(bias, [1, outC, 1, 1]));
  return out;
}

/**
 * Whether {@link conv2dReluMaxPool} runs `x` with a weight of `weightShape` as one fused kernel:
 * NCHW input, dilation 1, one group, an output of at least 2 x 2, and an fp32 kernel set serving
 * the fused kernel and its gradient.
 */
export function canConv2dReluMaxPool(
  x: tf.Tensor,
  weightShape: readonly number[],
  p: Conv2dParams = {},
): boolean {
  const [sh, sw] = pair('Conv2d stride', p.stride ?? 1, 1);
  const [ph, pw] = pair('Conv2d padding', p.padding ?? 0, 0);
  const [dh, dw] = pair('Conv2d dilation', p.dilation ?? 1, 1);
  if (x.rank !== 4 || weightShape.length !== 4 || dh !== 1 || dw !== 1 || (p.groups ?? 1) !== 1) return false;
  const [, inC, h, w] = x.shape;
  const [, wIn, kh, kw] = weightShape;
  return (
    inC === wIn &&
    convOutSize(h, kh, sh, ph) >= 2 &&
    convOutSize(w, kw, sw, pw) >= 2 &&
    nativeFloatKernels(CONV_RELU_MAX_POOL, CONV_RELU_MAX_POOL_GRAD)
  );
}

/**
 * `relu(maxPool2d(conv2d(x, weight, bias, p), 2))` as one kernel (see @qbnn/core's
 * convReluMaxPool): the convolution's output never goes to memory and the ReLU and the pool run
 * in its epilogue. The same values as the three ops on the native kernels (a zero may differ in
 * sign) and the same gradients. Only where {@link canConv2dReluMaxPool} holds; throws otherwise.
 */
export function conv2dReluMaxPool(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  p: Conv2dParams = {},
): tf.Tensor {
  if (!canConv2dReluMaxPool(x, weight.shape, p))
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `conv2dReluMaxPool: input [${x.shape}] with weight [${weight.shape}] cannot run fused here (see canConv2dReluMaxPool)`,
    );
  const [sh, sw] = pair('Conv2d stride', p.stride ?? 1, 1);
  const [ph, pw] = pair('Conv2d padding', p.padding ?? 0, 0);
  // the weight as it is (OIHW): the kernel reads it in place, or @qbnn/core transposes it
  const y = convReluMaxPool(x as tf.Tensor4D, weight as tf.Tensor4D, bias as tf.Tensor1D | undefined, {
    strides: [sh, sw],
    pad: [
      [0, 0],
      [0, 0],
      [ph, ph],
      [pw, pw],
    ],
    dataFormat: 'NCHW',
    dilations: [1, 1],
    filterLayout: 'OIHW',
  });
  if (y === null)
    throw new QbnnError('ERR_UNSUPPORTED', 'conv2dReluMaxPool: the backend has no fused kernel');
  return y;
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
    const g = conv2dGeometry('Conv2d', inChannels, outChannels, kernelSize, opts);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = g.kernelSize;
    this.stride = g.params.stride;
    this.padding = g.params.padding;
    this.dilation = g.params.dilation;
    this.groups = g.params.groups;
    const bound = kaimingUniformBound(g.fanIn);
    const rng = toRng(opts.seed);
    tf.tidy(() => {
      this.registerParameter('weight', uniformInit(g.weightShape, bound, rng));
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

  /** relu(maxPool2x2(forward(x))) as one kernel where it can run so, else null (see Sequential). */
  forwardReluMaxPool(x: tf.Tensor): tf.Tensor | null {
    const weight = this.param('weight');
    if (!canConv2dReluMaxPool(x, weight.shape, this.params)) return null;
    return conv2dReluMaxPool(x, weight, this.hasParam('bias') ? this.param('bias') : undefined, this.params);
  }

  override extraRepr(): string {
    return (
      `${this.inChannels}, ${this.outChannels}, kernel=[${this.kernelSize}], stride=[${this.stride}], ` +
      `padding=[${this.padding}], dilation=[${this.dilation}], groups=${this.groups}, bias=${this.hasParam('bias')}`
    );
  }
}
