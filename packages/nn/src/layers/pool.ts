import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';
import { checkWindowFits, type Pair, pair } from './conv.js';
import { nativeFloatKernels } from './native-float.js';

/** Options of the pooling layers. */
export interface Pool2dOptions {
  /** Window step (default: the kernel size, like torch). */
  stride?: Pair;
  /** Padding on both sides of each spatial axis (at most half the kernel, default 0). */
  padding?: Pair;
}

function poolArgs(what: string, kernel: Pair, opts: Pool2dOptions) {
  const k = pair(`${what} kernelSize`, kernel, 1);
  const s = pair(`${what} stride`, opts.stride ?? k, 1);
  const p = pair(`${what} padding`, opts.padding ?? 0, 0);
  if (2 * p[0] > k[0] || 2 * p[1] > k[1]) {
    throw new QbnnError('ERR_ARG', `${what}: padding [${p}] must be at most half the kernel [${k}]`);
  }
  return { k, s, p };
}

/** An NCHW input the pool's window fits (an empty output is refused, as PyTorch does). */
function checkPoolInput(what: string, x: tf.Tensor, k: [number, number], p: [number, number]): void {
  if (x.rank !== 4) throw new QbnnError('ERR_SHAPE', `${what}: expected NCHW input, got [${x.shape}]`);
  checkWindowFits(what, x.shape, k, p);
}

function toNhwcPadded(x: tf.Tensor, p: [number, number], value: number): tf.Tensor4D {
  if (x.rank !== 4) throw new QbnnError('ERR_SHAPE', `pooling: expected NCHW input, got [${x.shape}]`);
  const xh = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  if (p[0] === 0 && p[1] === 0) return xh;
  return tf.pad(
    xh,
    [
      [0, 0],
      [p[0], p[0]],
      [p[1], p[1]],
      [0, 0],
    ],
    value,
  );
}

/**
 * Pools NCHW `x` as `[N * C, H, W, 1]` (every channel an image of one channel), so no transpose
 * runs: used when an installed fp32 kernel set serves the pooling kernels and their gradients.
 * Returns null otherwise.
 */
function poolChannelsAsImages(
  x: tf.Tensor,
  p: [number, number],
  value: number,
  kernels: [string, string],
  pool: (x4: tf.Tensor4D) => tf.Tensor4D,
): tf.Tensor | null {
  if (x.rank !== 4 || !nativeFloatKernels(...kernels)) return null;
  const [n, c, h, w] = x.shape;
  let xi = tf.reshape(x, [n * c, h, w, 1]) as tf.Tensor4D;
  if (p[0] > 0 || p[1] > 0)
    xi = tf.pad(
      xi,
      [
        [0, 0],
        [p[0], p[0]],
        [p[1], p[1]],
        [0, 0],
      ],
      value,
    );
  const y = pool(xi);
  return tf.reshape(y, [n, c, y.shape[1], y.shape[2]]);
}

/**
 * Backward of a valid max pool on NHWC data: each output's gradient goes to the first maximum
 * of its window in row-major order (PyTorch's rule). Computed in JS: tfjs-backend-wasm 4.22's
 * MaxPoolGrad kernel drops gradients for some shapes (seen on [1, 6, 5, 2], 2x2 windows).
 */
function maxPoolBackward(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  k: [number, number],
  s: [number, number],
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = dy.shape;
  const xv = x.dataSync();
  const gv = dy.dataSync();
  const dx = new Float32Array(x.size);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let ch = 0; ch < c; ch++) {
          let best = -1;
          let bestV = Number.NEGATIVE_INFINITY;
          for (let u = 0; u < k[0]; u++) {
            const row = (b * h + i * s[0] + u) * w;
            for (let v = 0; v < k[1]; v++) {
              const idx = (row + j * s[1] + v) * c + ch;
              const val = xv[idx];
              if (val > bestV || best < 0) {
                bestV = val;
                best = idx;
              }
            }
          }
          dx[best] += gv[((b * oh + i) * ow + j) * c + ch];
        }
  return tf.tensor4d(dx, x.shape);
}

/** Valid NHWC max pool: tfjs forward, {@link maxPoolBackward} gradient. */
export function maxPoolNhwc(x: tf.Tensor4D, k: [number, number], s: [number, number]): tf.Tensor4D {
  // Native fp32 kernels include a MaxPoolGrad with the same first-maximum rule.
  if (nativeFloatKernels('MaxPoolGrad')) return tf.maxPool(x, k, s, 'valid');
  const f = tf.customGrad((xi: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const xt = xi as tf.Tensor4D;
    (save as tf.GradSaveFunc)([xt]);
    return {
      value: tf.maxPool(xt, k, s, 'valid'),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => maxPoolBackward(saved[0] as tf.Tensor4D, dy, k, s),
    };
  });
  return f(x) as tf.Tensor4D;
}

/**
 * Max pooling over NCHW input (torch semantics, floor mode; padding counts as -infinity).
 * Runs tfjs's NHWC max pool between transposes; the gradient goes to the first maximum of each
 * window (computed in JS, see {@link maxPoolNhwc}).
 */
export class MaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: Pair, opts: Pool2dOptions = {}) {
    super();
    const { k, s, p } = poolArgs('MaxPool2d', kernelSize, opts);
    this.kernelSize = k;
    this.stride = s;
    this.padding = p;
  }

  forward(x: tf.Tensor): tf.Tensor {
    checkPoolInput('MaxPool2d', x, this.kernelSize, this.padding);
    const direct = poolChannelsAsImages(
      x,
      this.padding,
      Number.NEGATIVE_INFINITY,
      ['MaxPool', 'MaxPoolGrad'],
      (xi) => tf.maxPool(xi, this.kernelSize, this.stride, 'valid'),
    );
    if (direct) return direct;
    const xh = toNhwcPadded(x, this.padding, Number.NEGATIVE_INFINITY);
    return tf.transpose(maxPoolNhwc(xh, this.kernelSize, this.stride), [0, 3, 1, 2]);
  }

  override extraRepr(): string {
    return `kernel=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
}

/**
 * Average pooling over NCHW input (torch semantics with `count_include_pad = true`: padded
 * zeros count in the average; floor mode).
 */
export class AvgPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: Pair, opts: Pool2dOptions = {}) {
    super();
    const { k, s, p } = poolArgs('AvgPool2d', kernelSize, opts);
    this.kernelSize = k;
    this.stride = s;
    this.padding = p;
  }

  forward(x: tf.Tensor): tf.Tensor {
    checkPoolInput('AvgPool2d', x, this.kernelSize, this.padding);
    const direct = poolChannelsAsImages(x, this.padding, 0, ['AvgPool', 'AvgPoolGrad'], (xi) =>
      tf.avgPool(xi, this.kernelSize, this.stride, 'valid'),
    );
    if (direct) return direct;
    const xh = toNhwcPadded(x, this.padding, 0);
    return tf.transpose(tf.avgPool(xh, this.kernelSize, this.stride, 'valid'), [0, 3, 1, 2]);
  }

  override extraRepr(): string {
    return `kernel=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
}

/** Mean over the spatial axes: NCHW `[N, C, H, W]` to `[N, C]` (AdaptiveAvgPool2d(1) + flatten). */
export class GlobalAvgPool2d extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank !== 4)
      throw new QbnnError('ERR_SHAPE', `GlobalAvgPool2d: expected NCHW input, got [${x.shape}]`);
    return tf.mean(x, [2, 3]);
  }
}
