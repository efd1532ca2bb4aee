// Installing the native fp32 kernels into tfjs's kernel registry for the 'wasm' backend, and
// taking them out again. Each replaced kernel keeps the one registered before as its fallback.
import {
  CONV_RELU_MAX_POOL_OIHW,
  setAdamManyFill,
  setFloatKernelSet,
  setNormalFill,
  setUniformFill,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { addon, loadError } from '../binding.js';
import { floatKernelImpls } from './kernels.js';

/** What {@link enableNativeFloatKernels} did. */
export interface NativeFloatKernels {
  /** True when the kernels serve the wasm backend now. */
  active: boolean;
  /** Kernel names served natively (empty when not active). */
  kernels: string[];
  /** Why they are not active, when they are not. */
  reason: string | null;
}

const replaced = new Map<string, tf.KernelConfig>();
const ours = new WeakSet<tf.KernelFunc>();

function threads(): number {
  return addon?.info().threads ?? 1;
}

function describe(): string {
  return `native fp32 kernels active (AVX-512 GEMM/conv, ${threads()} thread${threads() === 1 ? '' : 's'})`;
}

/**
 * Draws `Rng.normal`'s and `Rng.uniform`'s large requests natively (bit for bit the JS values) and serves
 * tfjs-backend-wasm's heavy fp32 kernels (BatchMatMul, _FusedMatMul, Conv2D, FusedConv2D,
 * Conv2DBackpropInput, Conv2DBackpropFilter, MaxPool, AvgPool and their gradients, Transpose)
 * from the addon, on its thread pool (`setThreads`). Importing `@qbnn/native-amx` calls this
 * unless `QBNN_NATIVE_FP32=0`. Needs the addon and an AVX-512 CPU; otherwise nothing changes and
 * `reason` says why. Idempotent. Results for a given input are identical for any thread count.
 */
export function enableNativeFloatKernels(): NativeFloatKernels {
  if (addon === undefined)
    return { active: false, kernels: [], reason: `native addon not available: ${loadError}` };
  const native = addon.fp32;
  // Rng.normal's and Rng.uniform's large draws: the same values as the JS reference, in native code.
  setNormalFill((k0, k1, first, out) => native.normal(k0, k1, first, out));
  setUniformFill((k0, k1, first, out) => native.uniform(k0, k1, first, out));
  if (!native.info().avx512) {
    return { active: false, kernels: [], reason: 'the CPU has no AVX-512 (the fp32 kernels need it)' };
  }
  // Adam of every parameter in one call (FusedAdamOptimizer), bit for bit adamUpdate's.
  setAdamManyFill((p, m, v, g, outP, a) =>
    native.adamMany(
      p,
      m,
      v,
      g,
      outP,
      Float64Array.of(a.learningRate, a.beta1, a.beta2, a.epsilon, a.correction1, a.correction2),
    ),
  );
  const impls = floatKernelImpls(native);
  for (const [name, impl] of Object.entries(impls)) {
    const existing = tf.getKernel(name, 'wasm');
    if (existing !== undefined && ours.has(existing.kernelFunc)) continue;
    const fallback: tf.KernelFunc =
      existing?.kernelFunc ??
      (() => {
        throw new Error(`${name}: this case has no native fp32 kernel and tfjs-backend-wasm has none either`);
      });
    const kernelFunc: tf.KernelFunc = (args) => impl(args, fallback);
    ours.add(kernelFunc);
    if (existing !== undefined) {
      replaced.set(name, existing);
      tf.unregisterKernel(name, 'wasm');
    }
    // The original's setup/dispose (tfjs-backend-wasm's own binding of its wasm function) stay
    // attached, so the fallback works whether the backend starts before or after this call.
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc,
      setupFunc: existing?.setupFunc,
      disposeFunc: existing?.disposeFunc,
    });
  }
  const kernels = Object.keys(impls);
  report(kernels);
  return { active: true, kernels, reason: null };
}

function report(kernels: string[]): void {
  setFloatKernelSet({
    name: 'native-amx',
    kernels,
    threads: threads(),
    description: describe(),
    // the fused convolution reads qbnn's OIHW weights in place (no transpose op per call)
    features: [CONV_RELU_MAX_POOL_OIHW],
  });
}

/** Re-records the installed set after the thread count changed (called by setThreads). */
export function refreshFloatKernelReport(): void {
  if (replaced.size > 0 || installed()) report(Object.keys(floatKernelImpls(addon!.fp32)));
}

function installed(): boolean {
  const k = tf.getKernel('Conv2D', 'wasm');
  return k !== undefined && ours.has(k.kernelFunc);
}

/** Puts back the kernels {@link enableNativeFloatKernels} replaced (tests, comparisons). */
export function disableNativeFloatKernels(): void {
  setAdamManyFill(null);
  setNormalFill(null);
  setUniformFill(null);
  for (const name of Object.keys(addon === undefined ? {} : floatKernelImpls(addon.fp32))) {
    const current = tf.getKernel(name, 'wasm');
    if (current === undefined || !ours.has(current.kernelFunc)) continue;
    tf.unregisterKernel(name, 'wasm');
    const previous = replaced.get(name);
    if (previous !== undefined) tf.registerKernel(previous);
    replaced.delete(name);
  }
  setFloatKernelSet(null);
}
