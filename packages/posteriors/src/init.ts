import { QbnnError, type Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { softplusInverse } from './math.js';
import type { PosteriorSpec } from './types.js';

/** Initial value of a location parameter. */
export type LocInit =
  /** U(-1/sqrt(fanIn), 1/sqrt(fanIn)), PyTorch's default for Linear and Conv2d. */
  | 'kaiming'
  /** N(mean, std^2) elementwise (Bayesian-Torch uses N(0, 0.1^2)). */
  | { mean: number; std: number }
  /** A constant. */
  | number;

/** Initial value of rho (sigma = softplus(rho)): a constant or N(mean, std^2) elementwise. */
export type RhoInit = number | { mean: number; std: number };

/**
 * Initialisation from a trained deterministic layer (MOPED, Krishnan et al. 2020): mu = w and
 * sigma = delta * |w|. Posteriors without a scale (MC Dropout, SGHMC) take w only.
 */
export interface InitFrom {
  weight: tf.Tensor;
  bias?: tf.Tensor | null;
  /** Default 0.1. */
  delta?: number;
}

/** Smallest sigma MOPED assigns (a weight of exactly 0 would give sigma 0, rho = -inf). */
export const MOPED_MIN_SIGMA = 1e-8;

/** Float32 values of a location parameter. */
export function locValues(init: LocInit, n: number, fanIn: number, rng: Rng): Float32Array {
  if (init === 'kaiming') {
    const b = 1 / Math.sqrt(Math.max(1, fanIn));
    const u = rng.uniform(n);
    for (let i = 0; i < n; i++) u[i] = (2 * u[i] - 1) * b;
    return u;
  }
  if (typeof init === 'number') return new Float32Array(n).fill(init);
  return gaussianValues(init.mean, init.std, n, rng);
}

/** Float32 values of rho. */
export function rhoValues(init: RhoInit, n: number, rng: Rng): Float32Array {
  if (typeof init === 'number') return new Float32Array(n).fill(init);
  return gaussianValues(init.mean, init.std, n, rng);
}

function gaussianValues(mean: number, std: number, n: number, rng: Rng): Float32Array {
  if (!(std >= 0) || !Number.isFinite(mean)) {
    throw new QbnnError('ERR_ARG', `initialiser needs finite mean and std >= 0, got ${mean}, ${std}`);
  }
  const z = rng.normal(n);
  for (let i = 0; i < n; i++) z[i] = mean + std * z[i];
  return z;
}

/** MOPED rho values: softplus^-1(max(delta |w|, MOPED_MIN_SIGMA)), in float64 then rounded. */
export function mopedRho(w: Float32Array, delta: number): Float32Array {
  if (!(delta > 0)) throw new QbnnError('ERR_ARG', `MOPED delta must be positive, got ${delta}`);
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++)
    out[i] = softplusInverse(Math.max(delta * Math.abs(w[i]), MOPED_MIN_SIGMA));
  return out;
}

/** The values of `t` as float32, checking its shape. */
export function valuesOf(t: tf.Tensor, shape: readonly number[], what: string): Float32Array {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new QbnnError('ERR_SHAPE', `${what}: expected shape [${shape}], got [${t.shape}]`);
  }
  return Float32Array.from(t.dataSync());
}

/**
 * A float32 variable of the given shape and values, allocated through `create` (a module's
 * `registerParameter`) or as a fresh `tf.variable`.
 */
export function makeVariable(
  values: Float32Array,
  shape: readonly number[],
  name: string,
  create?: (name: string, value: tf.Tensor) => tf.Variable,
  trainable = true,
): tf.Variable {
  const t = tf.tensor(values, shape as number[], 'float32');
  const v = create ? create(name, t) : tf.variable(t, trainable, uniqueName(name));
  t.dispose();
  return v;
}

let counter = 0;
/** tfjs variable names are global: suffix a counter so two layers never collide. */
function uniqueName(name: string): string {
  counter += 1;
  return `${name.replace(/[^A-Za-z0-9_.\-/]/g, '_')}_${counter}`;
}

/** Product of a shape's dimensions. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Options of a posterior whose parameters are one point in weight space (MC Dropout, SGHMC). */
export interface PointInitOptions {
  /** Initial weight. Default `kaiming`. */
  init?: LocInit;
  /** Initial bias. Default `kaiming` (as PyTorch). */
  biasInit?: LocInit;
  /** Start from a trained deterministic layer's weight and bias. */
  initFrom?: InitFrom;
}

/**
 * The `weight` (and `bias`, when the layer has one) variables of a point posterior, initialised
 * from `initFrom` or drawn from the spec's stream (fork 0), named `name.weight` when the layer
 * supplies no `createParameter`.
 */
export function pointParameters(
  spec: PosteriorSpec,
  options: PointInitOptions,
  name: string,
): { weight: tf.Variable; bias: tf.Variable | null } {
  const init = spec.rng.fork(0);
  const c = spec.createParameter;
  const from = options.initFrom;
  const w = from
    ? valuesOf(from.weight, spec.weightShape, `${name}: initFrom.weight`)
    : locValues(options.init ?? 'kaiming', sizeOf(spec.weightShape), spec.fanIn, init);
  const weight = makeVariable(w, spec.weightShape, c ? 'weight' : `${name}.weight`, c);
  if (!spec.biasShape) return { weight, bias: null };
  const b =
    from?.bias != null
      ? valuesOf(from.bias, spec.biasShape, `${name}: initFrom.bias`)
      : locValues(options.biasInit ?? 'kaiming', sizeOf(spec.biasShape), spec.fanIn, init);
  return { weight, bias: makeVariable(b, spec.biasShape, c ? 'bias' : `${name}.bias`, c) };
}
