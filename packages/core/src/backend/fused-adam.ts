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
 * m' = b1 m + (1 - b1) g; v' = b2 v + (1 - b2) g^2; p' = p - (a m') / (sqrt(v') b + eps), with the
 * step's constants a = lr / c1 and b = 1 / sqrt(c2) (tfjs's lr (m' / c1) / (sqrt(v' / c2) + eps):
 * one division and one square root an element instead of three and one, which bounded the native
 * step by the divider). Outputs may alias nothing; inputs are float32 arrays of one length.
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
  const lrOverC1 = a.learningRate / a.correction1;
  const invSqrtC2 = 1 / Math.sqrt(a.correction2);
  const eps = a.epsilon;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = m[i] * b1 + gi * nb1;
    const vi = v[i] * b2 + gi * gi * nb2;
    outM[i] = mi;
    outV[i] = vi;
    outP[i] = p[i] - (lrOverC1 * mi) / (Math.sqrt(vi) * invSqrtC2 + eps);
  }
}

/** Checks a step's inputs (unless withInputs is false) and attributes; returns the element count. */
export function checkFusedAdam(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
  withInputs = true,
): number {
  let n = 0;
  if (withInputs) {
    const first = inputs.param;
    if (first === undefined) throw new QbnnError('ERR_ARG', `${FUSED_ADAM}: input param is missing`);
    n = first.shape.reduce((x, y) => x * y, 1);
    for (const name of ['param', 'm', 'v', 'grad'] as const) {
      const t = inputs[name];
      if (t === undefined || t.dtype !== 'float32')
        throw new QbnnError('ERR_ARG', `${FUSED_ADAM}: input ${name} must be a float32 tensor`);
      if (t.shape.reduce((x, y) => x * y, 1) !== n)
        throw new QbnnError('ERR_ARG', `${FUSED_ADAM}: input ${name} must have ${n} elements like param`);
    }
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

/** One tensor of {@link adamStepMany}: the parameter, its moments and its gradient. */
export interface AdamEntry {
  param: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  grad: tf.Tensor;
}

/**
 * Adam steps of many tensors at once: `m[k]` and `v[k]` rewritten where they lie from `g[k]`, the
 * new parameter values written to `outP[k]` (read from `p[k]`). @qbnn/native-amx registers one
 * native call for all of them.
 */
export type AdamManyFill = (
  p: Float32Array[],
  m: Float32Array[],
  v: Float32Array[],
  g: Float32Array[],
  outP: Float32Array[],
  attrs: FusedAdamAttrs,
) => void;

/** adamUpdate of each tensor in turn, the moments in place (an element is read before it is written). */
const adamManyJs: AdamManyFill = (p, m, v, g, outP, a) => {
  for (let k = 0; k < p.length; k++) adamUpdate(p[k], m[k], v[k], g[k], outP[k], m[k], v[k], a);
};

let adamMany: AdamManyFill = adamManyJs;

/** Registers (or with null removes) the implementation {@link adamStepMany} calls. */
export function setAdamManyFill(fill: AdamManyFill | null): void {
  adamMany = fill ?? adamManyJs;
}

interface RefCountedWasm extends WasmHeapBackend {
  refCount(dataId: object): number;
}

/**
 * One Adam step ({@link adamUpdate}'s arithmetic) of every entry it can take, in one call: on
 * tfjs-backend-wasm, float32 tensors of matching sizes whose moments no other tensor shares
 * (buffer reference count 1; the optimizer's own). The moments are rewritten where they lie; the
 * parameter's new values go to a new buffer, returned for the caller to assign (rewriting a
 * parameter in place would leave stale the weights tfjs-wasm's XNNPACK kernels cache by tensor).
 * Returns, per entry, that buffer, or null for an entry left to the caller.
 */
export function adamStepMany(entries: AdamEntry[], attrs: FusedAdamAttrs): (tf.TensorInfo | null)[] {
  const out: (tf.TensorInfo | null)[] = entries.map(() => null);
  if (tf.getBackend() !== 'wasm') return out;
  const wasm = tf.backend() as unknown as RefCountedWasm;
  if (typeof wasm.refCount !== 'function') return out;
  checkFusedAdam({}, attrs as unknown as tf.NamedAttrMap, false);
  const taken = entries.filter((e, k) => {
    const ts = [e.param, e.m, e.v, e.grad];
    const n = e.param.size;
    if (!ts.every((t) => t.dtype === 'float32' && t.size === n && !t.isDisposed)) return false;
    if (![e.m, e.v].every((t) => wasm.refCount(t.dataId) === 1)) return false;
    // the moments must not be read as other inputs while they are rewritten
    if ([e.param, e.grad].some((t) => t.dataId === e.m.dataId || t.dataId === e.v.dataId)) return false;
    out[k] = wasm.makeOutput([...e.param.shape], 'float32');
    return true;
  });
  if (taken.length === 0) return out;
  // views after the last allocation (an allocation may move the heap)
  const view = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t) as Float32Array;
  adamMany(
    taken.map((e) => view(e.param)),
    taken.map((e) => view(e.m)),
    taken.map((e) => view(e.v)),
    taken.map((e) => view(e.grad)),
    out.filter((t): t is tf.TensorInfo => t !== null).map(view),
    attrs,
  );
  return out;
}

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
