// Mean softmax cross-entropy of logits [N, C] against class indices [N] as two tfjs kernels:
// 'QbnnSoftmaxCrossEntropy' (the mean, one pass) and 'QbnnSoftmaxCrossEntropyGrad' (dy times its
// gradient). Composed of tfjs ops (oneHot, logSoftmax, multiply, sum, mean, neg) the loss of a
// training step took about a dozen kernels forward and fifteen backward, each a dispatch costing
// more than the arithmetic on a [64, 10] batch. Per row, in float64 with lse = log sum exp(x):
//
//   loss = -(1/N) sum_rows (x_y - lse)          (a label outside [0, C) is a row of zeros, as oneHot)
//   dx_c = (dy/N) (softmax(x)_c [y valid] - [c = y])
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import { type FloatIo, registerFloatKernel } from './heap.js';

export const SOFTMAX_CROSS_ENTROPY = 'QbnnSoftmaxCrossEntropy';
export const SOFTMAX_CROSS_ENTROPY_GRAD = 'QbnnSoftmaxCrossEntropyGrad';

/** log sum exp of row r of x [n, c], in float64 (NaN in, NaN out). */
function logSumExp(x: Float32Array, r: number, c: number): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < c; j++) m = Math.max(m, x[r * c + j]);
  let s = 0;
  for (let j = 0; j < c; j++) s += Math.exp(x[r * c + j] - m);
  return m + Math.log(s);
}

/** The mean cross-entropy of logits x [n, c] and labels [n], in float64. */
export function softmaxCrossEntropyMean(x: Float32Array, labels: Int32Array, n: number, c: number): number {
  let sum = 0;
  for (let r = 0; r < n; r++) {
    const y = labels[r];
    if (y >= 0 && y < c) sum += x[r * c + y] - logSumExp(x, r, c);
  }
  return -sum / n;
}

/** dx = dy times the gradient of {@link softmaxCrossEntropyMean} with respect to x. */
export function softmaxCrossEntropyGrad(
  x: Float32Array,
  labels: Int32Array,
  n: number,
  c: number,
  dy: number,
  dx: Float32Array,
): void {
  const k = dy / n;
  for (let r = 0; r < n; r++) {
    const y = labels[r];
    const valid = y >= 0 && y < c;
    const lse = logSumExp(x, r, c);
    for (let j = 0; j < c; j++)
      dx[r * c + j] = k * ((valid ? Math.exp(x[r * c + j] - lse) : 0) - (j === y ? 1 : 0));
  }
}

/** Checks the kernels' inputs; returns [n, c]. */
export function checkSoftmaxCrossEntropy(
  inputs: tf.NamedTensorInfoMap,
  name = SOFTMAX_CROSS_ENTROPY,
): [number, number] {
  const { logits, labels } = inputs;
  if (logits === undefined || logits.dtype !== 'float32' || logits.shape.length !== 2)
    throw new QbnnError('ERR_ARG', `${name}: logits must be a float32 [N, C] tensor`);
  const [n, c] = logits.shape as [number, number];
  if (labels === undefined || labels.dtype !== 'int32' || labels.shape.length !== 1 || labels.shape[0] !== n)
    throw new QbnnError('ERR_ARG', `${name}: labels must be int32 [${n}] class indices`);
  if (n === 0 || c === 0) throw new QbnnError('ERR_ARG', `${name}: logits [${n}, ${c}] are empty`);
  return [n, c];
}

/** An int32 tensor's data (FloatIo reads bytes; reinterpret them). */
function readInts(io: FloatIo, t: tf.TensorInfo): Int32Array {
  const f = io.read(t);
  return new Int32Array(f.buffer, f.byteOffset, f.length);
}

function lossKernel(io: (b: unknown) => FloatIo): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const [n, c] = checkSoftmaxCrossEntropy(inputs);
    const b = io(backend);
    const out = b.alloc([]);
    const { logits, labels } = inputs as Record<string, tf.TensorInfo>;
    b.read(out)[0] = softmaxCrossEntropyMean(b.read(logits), readInts(b, labels), n, c);
    return out;
  };
}

function gradKernel(io: (b: unknown) => FloatIo): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const [n, c] = checkSoftmaxCrossEntropy(inputs, SOFTMAX_CROSS_ENTROPY_GRAD);
    const { logits, labels, dy } = inputs as Record<string, tf.TensorInfo>;
    if (dy === undefined || dy.shape.length !== 0)
      throw new QbnnError('ERR_ARG', `${SOFTMAX_CROSS_ENTROPY_GRAD}: input dy must be a scalar`);
    const b = io(backend);
    const out = b.alloc([n, c]);
    softmaxCrossEntropyGrad(b.read(logits), readInts(b, labels), n, c, b.read(dy)[0], b.read(out));
    return out;
  };
}

/** Registers the JS kernels for 'wasm' and 'cpu' (unless someone already did). */
export function registerSoftmaxCrossEntropyKernels(): void {
  registerFloatKernel(SOFTMAX_CROSS_ENTROPY, lossKernel);
  registerFloatKernel(SOFTMAX_CROSS_ENTROPY_GRAD, gradKernel);
}

/**
 * The mean softmax cross-entropy of `logits` [N, C] against int32 class indices [N], as one
 * kernel forward and one backward (no gradient for the labels); null when the backend lacks the
 * kernels or the inputs are not of that form (the caller composes tfjs ops).
 */
export function softmaxCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar | null {
  if (
    tf.getKernel(SOFTMAX_CROSS_ENTROPY, tf.getBackend()) === undefined ||
    logits.rank !== 2 ||
    logits.dtype !== 'float32' ||
    labels.rank !== 1 ||
    labels.dtype !== 'int32' ||
    labels.shape[0] !== logits.shape[0] ||
    logits.size === 0
  )
    return null;
  const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    // the labels are saved too: a tensor made for this call (a cast) is gone by backprop otherwise
    save([x, labels]);
    return {
      value: tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY, { logits: x, labels }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf
          .engine()
          .runKernel(SOFTMAX_CROSS_ENTROPY_GRAD, { logits: saved[0], labels: saved[1], dy }) as tf.Tensor,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (x: tf.Tensor) => tf.Scalar)(logits);
}
