// A scaled squared distance to a scalar, scale * sum((x - center)^2), as two tfjs kernels:
// 'QbnnSquaredDistance' (the sum, one pass) and 'QbnnSquaredDistanceGrad' (dy times its gradient,
// 2 scale (x - center), one pass). It is the L2 penalty of a Gaussian prior on point weights
// (MC Dropout's KL in Gal's form, weight decay as a loss term): composed of tfjs ops it takes five
// element-wise kernels forward and six backward over every weight. The JS kernels compute in
// float64 and are the reference; @qbnn/native-amx replaces the wasm ones (float64 sums).
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import { type FloatIo, registerFloatKernel } from './heap.js';

export const SQUARED_DISTANCE = 'QbnnSquaredDistance';
export const SQUARED_DISTANCE_GRAD = 'QbnnSquaredDistanceGrad';

/** Attributes of {@link SQUARED_DISTANCE}: the center and the factor of the sum. */
export interface SquaredDistanceAttrs {
  center: number;
  scale: number;
}

/** scale * sum((x - center)^2), in float64. */
export function squaredDistanceSum(x: Float32Array, a: SquaredDistanceAttrs): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - a.center;
    sum += d * d;
  }
  return a.scale * sum;
}

/** dy times the gradient of {@link squaredDistanceSum}: dx = (2 scale dy) (x - center). */
export function squaredDistanceGrad(
  x: Float32Array,
  dy: number,
  dx: Float32Array,
  a: SquaredDistanceAttrs,
): void {
  const k = 2 * a.scale * dy;
  for (let i = 0; i < x.length; i++) dx[i] = k * (x[i] - a.center);
}

/** Checks the kernels' input and attributes; returns the element count. */
export function checkSquaredDistance(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
  name = SQUARED_DISTANCE,
): number {
  const { x } = inputs;
  if (x === undefined || x.dtype !== 'float32')
    throw new QbnnError('ERR_ARG', `${name}: input x must be a float32 tensor`);
  for (const k of ['center', 'scale']) {
    const v = attrs[k];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new QbnnError('ERR_ARG', `${name}: attribute ${k} must be a finite number, got ${String(v)}`);
  }
  return x.shape.reduce((a, b) => a * b, 1);
}

function sumKernel(io: (b: unknown) => FloatIo): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    checkSquaredDistance(inputs, attrs);
    const b = io(backend);
    const out = b.alloc([]);
    b.read(out)[0] = squaredDistanceSum(
      b.read(inputs.x as tf.TensorInfo),
      attrs as unknown as SquaredDistanceAttrs,
    );
    return out;
  };
}

function gradKernel(io: (b: unknown) => FloatIo): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    checkSquaredDistance(inputs, attrs, SQUARED_DISTANCE_GRAD);
    const { x, dy } = inputs as Record<string, tf.TensorInfo>;
    if (dy === undefined || dy.shape.length !== 0)
      throw new QbnnError('ERR_ARG', `${SQUARED_DISTANCE_GRAD}: input dy must be a scalar`);
    const b = io(backend);
    const out = b.alloc([...x.shape]);
    squaredDistanceGrad(b.read(x), b.read(dy)[0], b.read(out), attrs as unknown as SquaredDistanceAttrs);
    return out;
  };
}

/** Registers the JS kernels for 'wasm' and 'cpu' (unless someone already did). */
export function registerSquaredDistanceKernels(): void {
  registerFloatKernel(SQUARED_DISTANCE, sumKernel);
  registerFloatKernel(SQUARED_DISTANCE_GRAD, gradKernel);
}

/**
 * scale * sum((x - center)^2) as one kernel forward and one backward, on a backend that has the
 * kernels (wasm and cpu through @qbnn/core, natively with @qbnn/native-amx); null otherwise (the
 * caller composes tfjs ops).
 */
export function squaredDistance(x: tf.Tensor, center: number, scale: number): tf.Scalar | null {
  if (tf.getKernel(SQUARED_DISTANCE, tf.getBackend()) === undefined) return null;
  const attrs = { center, scale } as unknown as tf.NamedAttrMap;
  const op = tf.customGrad(((v: tf.Tensor, save: tf.GradSaveFunc) => {
    save([v]);
    return {
      value: tf.engine().runKernel(SQUARED_DISTANCE, { x: v }, attrs) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(SQUARED_DISTANCE_GRAD, { x: saved[0], dy }, attrs) as tf.Tensor,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (a: tf.Tensor) => tf.Scalar)(x);
}
