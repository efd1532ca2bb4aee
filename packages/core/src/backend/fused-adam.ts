// One Adam step of a parameter tensor as a single tfjs kernel ('QbnnAdam'): inputs param, m, v,
// grad; outputs the new param, m and v. tfjs's AdamOptimizer runs 14 element-wise kernels per
// parameter (each a pass over memory); this is one pass. The JS versions below (wasm heap views,
// cpu backend arrays) are the reference; @qbnn/native-amx replaces the wasm one natively with the
// same float64 arithmetic, bit for bit.
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import type { WasmHeapBackend } from './heap.js';

/** The kernel's name in tfjs's registry. */
export const FUSED_ADAM = 'QbnnAdam';

/** Attributes of one step; correction1 = 1 - beta1^t and correction2 = 1 - beta2^t at step t >= 1. */
export interface FusedAdamAttrs {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  correction1: number;
  correction2: number;
}

/**
 * The update, per element in float64 (rounded to float32 on store):
 * m' = b1 m + (1 - b1) g; v' = b2 v + (1 - b2) g^2; p' = p - lr (m' / c1) / (sqrt(v' / c2) + eps).
 * Outputs may alias nothing; inputs are float32 arrays of one length.
 */
export function adamUpdate(
  p: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  outP: Float32Array,
  outM: Float32Array,
  outV: Float32Array,
  a: FusedAdamAttrs,
): void {
  const b1 = a.beta1;
  const nb1 = 1 - b1;
  const b2 = a.beta2;
  const nb2 = 1 - b2;
  const c1 = a.correction1;
  const c2 = a.correction2;
  const lr = a.learningRate;
  const eps = a.epsilon;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = m[i] * b1 + gi * nb1;
    const vi = v[i] * b2 + gi * gi * nb2;
    outM[i] = mi;
    outV[i] = vi;
    outP[i] = p[i] - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
  }
}

/** Checks a step's inputs and attributes; returns the element count. */
export function checkFusedAdam(inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): number {
  const names = ['param', 'm', 'v', 'grad'] as const;
  const first = inputs.param;
  if (first === undefined) throw new QbnnError('ERR_ARG', `${FUSED_ADAM}: input param is missing`);
  const n = first.shape.reduce((x, y) => x * y, 1);
  for (const name of names) {
    const t = inputs[name];
    if (t === undefined || t.dtype !== 'float32')
      throw new QbnnError('ERR_ARG', `${FUSED_ADAM}: input ${name} must be a float32 tensor`);
    if (t.shape.reduce((x, y) => x * y, 1) !== n)
      throw new QbnnError('ERR_ARG', `${FUSED_ADAM}: input ${name} must have ${n} elements like param`);
  }
  for (const k of ['learningRate', 'beta1', 'beta2', 'epsilon', 'correction1', 'correction2']) {
    const x = attrs[k];
    if (typeof x !== 'number' || !Number.isFinite(x))
      throw new QbnnError(
        'ERR_ARG',
        `${FUSED_ADAM}: attribute ${k} must be a finite number, got ${String(x)}`,
      );
  }
  const a = attrs as unknown as FusedAdamAttrs;
  if (!(a.correction1 > 0 && a.correction2 > 0))
    throw new QbnnError('ERR_ARG', `${FUSED_ADAM}: correction1 and correction2 must be > 0`);
  return n;
}

const wasmKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  checkFusedAdam(inputs, attrs);
  const wasm = backend as unknown as WasmHeapBackend;
  const { param, m, v, grad } = inputs as Record<string, tf.TensorInfo>;
  const outs = [param, m, v].map((t) => wasm.makeOutput([...t.shape], 'float32'));
  // views after the last allocation (the heap may have grown)
  const f = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t) as Float32Array;
  adamUpdate(
    f(param),
    f(m),
    f(v),
    f(grad),
    f(outs[0]),
    f(outs[1]),
    f(outs[2]),
    attrs as unknown as FusedAdamAttrs,
  );
  return outs;
};

const cpuKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  checkFusedAdam(inputs, attrs);
  const cpu = backend as unknown as MathBackendCPU;
  const { param, m, v, grad } = inputs as Record<string, tf.TensorInfo>;
  const f = (t: tf.TensorInfo) => cpu.data.get(t.dataId)!.values as Float32Array;
  const outs = [param, m, v].map((t) => new Float32Array(t.shape.reduce((x, y) => x * y, 1)));
  adamUpdate(f(param), f(m), f(v), f(grad), outs[0], outs[1], outs[2], attrs as unknown as FusedAdamAttrs);
  return outs.map((values, i) => cpu.makeTensorInfo([...[param, m, v][i].shape], 'float32', values));
};

/** Registers the JS kernels for the 'wasm' and 'cpu' backends (unless someone already did). */
export function registerFusedAdamKernels(): void {
  for (const [backendName, kernelFunc] of [
    ['wasm', wasmKernel],
    ['cpu', cpuKernel],
  ] as const) {
    if (tf.getKernel(FUSED_ADAM, backendName) === undefined)
      tf.registerKernel({ kernelName: FUSED_ADAM, backendName, kernelFunc });
  }
}
