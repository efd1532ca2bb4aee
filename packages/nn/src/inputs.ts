import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

// Checks of what callers hand to inference and evaluation (predict, evaluate, and the Monte
// Carlo predict of @qbnn/posteriors), so bad input is a typed error naming it, never a loop
// that does not end or a NaN in the result.

/**
 * Returns `v` if it is a positive safe integer (a batch size, a sample count); otherwise throws
 * an ERR_ARG QbnnError naming `name`. Zero, negatives, fractions, NaN and infinities are
 * refused: a batch loop stepping by them would never end or never start.
 */
export function checkPositiveInteger(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new QbnnError('ERR_ARG', `${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

/**
 * Checks that `x` is a live tensor whose values are all finite: a NaN or infinite pixel would
 * give NaN or meaningless probabilities. Throws a QbnnError naming `name` (ERR_ARG if `x` is
 * not a live tensor, ERR_NAN with the flat index and value of the first non-finite element).
 * Integer tensors are always finite. Reads the values once (a copy from the backend).
 */
export function checkFiniteTensor(name: string, x: unknown): tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new QbnnError('ERR_ARG', `${name} must be a tensor, got ${String(x)}`);
  if (x.isDisposed) throw new QbnnError('ERR_ARG', `${name} is a disposed tensor`);
  if (x.dtype !== 'float32') return x;
  const v = x.dataSync() as Float32Array;
  for (let i = 0; i < v.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and +-Infinity: one comparison per element.
    if (v[i] - v[i] !== 0) {
      throw new QbnnError(
        'ERR_NAN',
        `${name} must be finite, got ${v[i]} at flat index ${i} (shape [${x.shape}])`,
      );
    }
  }
  return x;
}

/**
 * Checks a batch handed to inference: a live tensor of rank >= 1 with at least one example
 * (first axis) and only finite values (see {@link checkFiniteTensor}). Throws a QbnnError
 * naming `name`. Returns `x`.
 */
export function checkInputBatch(name: string, x: unknown): tf.Tensor {
  const t = checkFiniteTensor(name, x);
  if (t.rank < 1 || t.shape[0] < 1) {
    throw new QbnnError('ERR_SHAPE', `${name} must be a batch [N, ...] with N >= 1, got shape [${t.shape}]`);
  }
  return t;
}

/**
 * Checks classification targets against `classes` (the model's output width) and `n` examples:
 * class indices `[n]` must be integers in [0, classes); target rows `[n, classes]` (one-hot or
 * probabilities) must be finite. Throws a QbnnError naming `name` and the first bad entry: a
 * label 99 of 10 classes would otherwise count as a loss of 0 (its one-hot row is all zeros).
 */
export function checkClassLabels(name: string, y: unknown, n: number, classes: number): void {
  if (!(y instanceof tf.Tensor)) throw new QbnnError('ERR_ARG', `${name} must be a tensor, got ${String(y)}`);
  if (y.isDisposed) throw new QbnnError('ERR_ARG', `${name} is a disposed tensor`);
  if (y.shape[0] !== n || (y.rank === 2 && y.shape[1] !== classes) || (y.rank !== 1 && y.rank !== 2)) {
    throw new QbnnError(
      'ERR_SHAPE',
      `${name} must be [${n}] class indices or [${n}, ${classes}] target rows, got [${y.shape}]`,
    );
  }
  if (y.rank === 2) {
    checkFiniteTensor(name, y);
    return;
  }
  const v = y.dataSync();
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      throw new QbnnError(
        'ERR_ARG',
        `${name}[${i}] must be a class index, an integer in [0, ${classes - 1}], got ${c}`,
      );
    }
  }
}
