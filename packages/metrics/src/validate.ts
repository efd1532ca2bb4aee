import { MetricsError } from './errors.js';

/** @internal The accumulators' batch method that names its caller in errors (not part of the public API). */
export const ADD_BATCH: unique symbol = Symbol('addBatch');

/** Probabilities, means, variances: any float array (float64 accumulation is used regardless). */
export type FloatArray = Float32Array | Float64Array | ArrayLike<number>;

/** @internal */
export function checkInt(fn: string, name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    const what = min === 1 ? 'a positive integer' : `an integer >= ${min}`;
    throw new MetricsError('ERR_ARG', `${fn}: ${name} must be ${what}, got ${String(v)}`);
  }
  return v;
}

/**
 * @internal An Array or a typed array. Other objects with a `length` are refused: their length
 * is not backed by data, so `{ length: 2 ** 32 }` must not size an allocation.
 */
export function checkArray(fn: string, name: string, a: unknown): void {
  if (!Array.isArray(a) && !(ArrayBuffer.isView(a) && !(a instanceof DataView))) {
    throw new MetricsError('ERR_ARG', `${fn}: ${name} must be a typed array or array, got ${describe(a)}`);
  }
}

function describe(a: unknown): string {
  if (a === null || typeof a !== 'object') return String(a);
  return a.constructor?.name ?? 'an object';
}

/** @internal */
export function checkLength(
  fn: string,
  name: string,
  a: ArrayLike<unknown>,
  expected: number,
  how: string,
): void {
  checkArray(fn, name, a);
  if (a.length !== expected) {
    throw new MetricsError(
      'ERR_SHAPE',
      `${fn}: ${name} has length ${a.length}, expected ${how} = ${expected}`,
    );
  }
}

/** @internal Every value finite. */
export function checkFinite(fn: string, name: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new MetricsError('ERR_NAN', `${fn}: ${name}[${i}] is ${String(v)}, expected a finite number`);
    }
  }
}

/** @internal Every value finite and >= 0. */
export function checkNonNegative(fn: string, name: string, a: ArrayLike<number>): void {
  checkFinite(fn, name, a);
  for (let i = 0; i < a.length; i++) {
    if (a[i] < 0) throw new MetricsError('ERR_ARG', `${fn}: ${name}[${i}] is ${a[i]}, expected >= 0`);
  }
}

/**
 * @internal `rows` rows of `classes` probabilities: each finite, in [0, 1], each row summing
 * to 1 within `tolerance`.
 */
export function checkProbRows(
  fn: string,
  name: string,
  p: ArrayLike<number>,
  rows: number,
  classes: number,
  tolerance: number,
): void {
  for (let r = 0; r < rows; r++) {
    const off = r * classes;
    let s = 0;
    for (let c = 0; c < classes; c++) {
      const v = p[off + c];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new MetricsError(
          'ERR_NAN',
          `${fn}: ${name}[${off + c}] is ${String(v)}, expected a finite probability`,
        );
      }
      if (v < 0 || v > 1) {
        throw new MetricsError(
          'ERR_ARG',
          `${fn}: ${name}[${off + c}] is ${v}, expected a probability in [0, 1]`,
        );
      }
      s += v;
    }
    if (!(Math.abs(s - 1) <= tolerance)) {
      throw new MetricsError(
        'ERR_ARG',
        `${fn}: row ${r} of ${name} (elements ${off}..${off + classes - 1}) sums to ${s}, expected 1 within tolerance ${tolerance}`,
      );
    }
  }
}

/** @internal Integer labels in [0, classes). */
export function checkLabels(fn: string, labels: ArrayLike<number>, n: number, classes: number): void {
  checkLength(fn, 'labels', labels, n, 'n');
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (typeof y !== 'number' || !Number.isInteger(y) || y < 0 || y >= classes) {
      throw new MetricsError(
        'ERR_ARG',
        `${fn}: labels[${i}] is ${String(y)}, expected an integer class index in [0, ${classes - 1}]`,
      );
    }
  }
}

/** @internal A boolean-like mask (booleans or numbers; nonzero/true is positive) as a Uint8Array. */
export function toMask(fn: string, name: string, a: ArrayLike<boolean | number>, n: number): Uint8Array {
  checkLength(fn, name, a, n, 'the number of scores');
  const m = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (typeof v === 'boolean') m[i] = v ? 1 : 0;
    else if (typeof v === 'number' && (v === 0 || v === 1)) m[i] = v;
    else throw new MetricsError('ERR_ARG', `${fn}: ${name}[${i}] is ${String(v)}, expected a boolean or 0/1`);
  }
  return m;
}

/** @internal A tolerance: finite and >= 0. */
export function checkTolerance(fn: string, tol: unknown): number {
  if (typeof tol !== 'number' || !(tol >= 0) || !Number.isFinite(tol)) {
    throw new MetricsError(
      'ERR_ARG',
      `${fn}: opts.tolerance must be a finite number >= 0, got ${String(tol)}`,
    );
  }
  return tol;
}
