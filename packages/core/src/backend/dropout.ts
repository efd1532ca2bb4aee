// Inverted dropout drawn and applied in one tfjs kernel ('QbnnDropout'): y = x * mask, the mask
// keep / (1 - p) or 0 from the Philox stream (key, firstBlock) exactly as `Rng.uniform` draws it
// (element j keeps iff its uniform u_j >= p), repeated over the leading rows when the mask is
// smaller than x (one mask shared by a batch). The gradient is the same kernel on dy: the mask is
// drawn again from the same positions, never stored. Composed of tfjs ops this was a JS loop, a
// mask upload and two Multiply kernels a step. The JS kernels are the reference; @qbnn/native-amx
// replaces the wasm one natively, bit for bit.
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import { philoxFill } from '../rng/philox.js';
import type { Rng } from '../rng/rng.js';
import { type FloatIo, registerFloatKernel } from './heap.js';

export const DROPOUT = 'QbnnDropout';

/** Attributes of {@link DROPOUT}: the stream, the drop probability and the mask's length. */
export interface DropoutAttrs {
  k0: number;
  k1: number;
  firstBlock: number;
  p: number;
  maskSize: number;
}

const INV_2_24 = 2 ** -24;

/** The mask values: keep / (1 - p) rounded to float32 where u_j >= p, else 0. */
export function dropoutMaskValues(a: DropoutAttrs): Float32Array {
  const words = new Uint32Array(a.maskSize);
  philoxFill(a.k0, a.k1, a.firstBlock, words);
  const keep = Math.fround(1 / (1 - a.p));
  const mask = new Float32Array(a.maskSize);
  for (let j = 0; j < a.maskSize; j++) mask[j] = (words[j] >>> 8) * INV_2_24 >= a.p ? keep : 0;
  return mask;
}

/** out[i] = x[i] * mask[i mod maskSize], in float32. */
export function dropoutApply(x: Float32Array, out: Float32Array, a: DropoutAttrs): void {
  const mask = dropoutMaskValues(a);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * mask[i % a.maskSize];
}

/** Checks the kernel's input and attributes; returns the element count. */
export function checkDropout(inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): number {
  const { x } = inputs;
  if (x === undefined || x.dtype !== 'float32')
    throw new QbnnError('ERR_ARG', `${DROPOUT}: input x must be a float32 tensor`);
  const n = x.shape.reduce((a, b) => a * b, 1);
  const { k0, k1, firstBlock, p, maskSize } = attrs as unknown as DropoutAttrs;
  for (const [name, v] of [
    ['k0', k0],
    ['k1', k1],
  ] as const)
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw new QbnnError('ERR_ARG', `${DROPOUT}: attribute ${name} must be a uint32, got ${String(v)}`);
  if (!Number.isSafeInteger(firstBlock) || firstBlock < 0)
    throw new QbnnError(
      'ERR_ARG',
      `${DROPOUT}: firstBlock must be a non-negative safe integer, got ${String(firstBlock)}`,
    );
  if (typeof p !== 'number' || !(p >= 0 && p < 1))
    throw new QbnnError('ERR_ARG', `${DROPOUT}: p must be a number in [0, 1), got ${String(p)}`);
  if (!Number.isSafeInteger(maskSize) || maskSize < 1 || n % maskSize !== 0)
    throw new QbnnError(
      'ERR_ARG',
      `${DROPOUT}: maskSize must be >= 1 and divide the ${n} elements of x, got ${String(maskSize)}`,
    );
  return n;
}

function kernel(io: (b: unknown) => FloatIo): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    checkDropout(inputs, attrs);
    const x = inputs.x as tf.TensorInfo;
    const b = io(backend);
    const out = b.alloc([...x.shape]);
    dropoutApply(b.read(x), b.read(out), attrs as unknown as DropoutAttrs);
    return out;
  };
}

/** Registers the JS kernels for 'wasm' and 'cpu' (unless someone already did). */
export function registerDropoutKernels(): void {
  registerFloatKernel(DROPOUT, kernel);
}

/**
 * x times an inverted-dropout mask of `maskSize` elements (x's size, or one row shared by x's
 * leading rows) drawn from `rng` as `Rng.uniform(maskSize)` would (the stream advances the same),
 * as one kernel forward and one backward; null when the backend lacks the kernel.
 */
export function dropout(x: tf.Tensor, rng: Rng, p: number, maskSize: number): tf.Tensor | null {
  if (tf.getKernel(DROPOUT, tf.getBackend()) === undefined) return null;
  const attrs = { k0: rng.key[0], k1: rng.key[1], firstBlock: 0, p, maskSize };
  checkDropout({ x }, attrs as unknown as tf.NamedAttrMap);
  attrs.firstBlock = rng.take(Math.ceil(maskSize / 4));
  const a = attrs as unknown as tf.NamedAttrMap;
  const op = tf.customGrad(((v: tf.Tensor) => ({
    value: tf.engine().runKernel(DROPOUT, { x: v }, a) as tf.Tensor,
    gradFunc: (dy: tf.Tensor) => tf.engine().runKernel(DROPOUT, { x: dy }, a) as tf.Tensor,
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (t: tf.Tensor) => tf.Tensor)(x);
}
