// tfjs bootstrap: backend choice, gradient registration, kernels the wasm backend lacks.
//
// One tfjs-core instance: this module, the generated gradient file, tfjs-backend-cpu and
// tfjs-backend-wasm all import the bare specifier '@tensorflow/tfjs-core'. In Node (plain ESM or
// under vitest, which leaves node_modules to Node) that is tfjs-core's CommonJS main, loaded once;
// in a browser bundle it is the package's ESM build, also once. Code using qbnn must import tfjs
// the same way: `import * as tf from '@tensorflow/tfjs-core'`.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfWasm from '@tensorflow/tfjs-backend-wasm';
import { QbnnError } from '../errors.js';
import './chained-ops.gen.js';
import './gradients.gen.js';
import { registerConvReluMaxPoolGradient } from './conv-relu-pool.js';
import { registerDropoutKernels } from './dropout.js';
import { type FloatKernelSet, floatKernelSet } from './float-kernels.js';
import { registerFusedAdamKernels } from './fused-adam.js';
import { registerFusedConvGradient } from './fused-conv-grad.js';
import { registerGaussianKlKernels } from './gaussian-kl.js';
import { registerGaussianSampleKlGradient } from './gaussian-sample-kl.js';
import { registerReduceGradients } from './reduce-grad.js';
import { registerReluGradient } from './relu-grad.js';
import { registerSoftmaxCrossEntropyKernels } from './softmax-cross-entropy.js';
import { registerSquaredDistanceKernels } from './squared-distance.js';
import { registerWasmTrainingSupport, type WasmTrainingSupport } from './wasm-kernels.js';

export {
  CONV_RELU_MAX_POOL,
  CONV_RELU_MAX_POOL_GRAD,
  CONV_RELU_MAX_POOL_OIHW,
  type ConvReluMaxPoolAttrs,
  convReluMaxPool,
  convReluMaxPoolInfo,
  packedTapCount,
} from './conv-relu-pool.js';
export {
  checkDropout,
  DROPOUT,
  type DropoutAttrs,
  dropout,
  dropoutApply,
  dropoutMaskValues,
} from './dropout.js';
export {
  type FloatKernelSet,
  floatKernelFeature,
  floatKernelSet,
  setFloatKernelSet,
} from './float-kernels.js';
export {
  type AdamEntry,
  type AdamManyFill,
  adamStepMany,
  adamUpdate,
  checkFusedAdam,
  FUSED_ADAM,
  type FusedAdamAttrs,
  setAdamManyFill,
} from './fused-adam.js';
export {
  checkGaussianKl,
  GAUSSIAN_KL,
  GAUSSIAN_KL_GRAD,
  type GaussianKlAttrs,
  gaussianKlGrad,
  gaussianKlSum,
  LOG_SOFTPLUS_LINEAR_BELOW,
} from './gaussian-kl.js';
export {
  checkGaussianSampleKl,
  GAUSSIAN_SAMPLE_KL,
  GAUSSIAN_SAMPLE_KL_GRAD,
  type GaussianSampleKlAttrs,
  type GaussianSampleKlPart,
  gaussianSampleKl,
  gaussianSampleKlFused,
  gaussianSampleKlMany,
  sampleKlStride,
} from './gaussian-sample-kl.js';
export {
  checkLocScaleSample,
  LOCSCALE_SAMPLE,
  LOCSCALE_SAMPLE_GRAD,
  locScaleSample,
  locScaleSampleFused,
} from './locscale-sample.js';
export {
  checkNormalLocScale,
  NORMAL_LOCSCALE,
  type NormalLocScaleAttrs,
  normalLocScale,
  normalLocScaleFused,
} from './normal-locscale.js';
export { RELU_GRAD } from './relu-grad.js';
export {
  checkSoftmaxCrossEntropy,
  SOFTMAX_CROSS_ENTROPY,
  SOFTMAX_CROSS_ENTROPY_GRAD,
  softmaxCrossEntropy,
  softmaxCrossEntropyGrad,
  softmaxCrossEntropyMean,
} from './softmax-cross-entropy.js';
export {
  checkSquaredDistance,
  SQUARED_DISTANCE,
  SQUARED_DISTANCE_GRAD,
  type SquaredDistanceAttrs,
  squaredDistance,
  squaredDistanceGrad,
  squaredDistanceSum,
} from './squared-distance.js';

export {
  DELEGATED_KERNELS,
  NATIVE_KERNELS,
  REPLACED_KERNELS,
  REROUTED_KERNELS,
  UNTRANSPOSED_KERNELS,
  ZERO_GRADIENT_KERNELS,
} from './wasm-kernels.js';

/** Name of a tfjs backend qbnn can run on. */
export type BackendName = 'wasm' | 'cpu';

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /**
   * Backend wanted. `'auto'` (the default) takes wasm and falls back to cpu, logging why;
   * `'wasm'` throws instead of falling back; `'cpu'` never tries wasm.
   */
  backend?: 'auto' | BackendName;
  /**
   * Where the tfjs-backend-wasm `.wasm` binaries are (a URL prefix, or in Node a directory, ending
   * in '/'), passed to tfjs-backend-wasm's `setWasmPaths` before the backend starts. Needed in
   * browsers whose bundler does not serve the binaries beside the script; by default Node reads
   * them from the installed package.
   */
  wasmPath?: string;
  /** Receives the fallback message. Defaults to `console.warn`. */
  log?: (message: string) => void;
}

/** What {@link initBackend} set up. */
export interface BackendInfo {
  /** The active tfjs backend. */
  backend: BackendName;
  /** Why wasm is not the active backend, when it was wanted but failed; null otherwise. */
  fallbackReason: string | null;
  /** Kernels qbnn added for the wasm backend, which lacks them (empty if another copy did it). */
  kernelsAdded: readonly string[];
  /** Wasm kernels qbnn replaced or wrapped (`REPLACED_KERNELS`, `UNTRANSPOSED_KERNELS`, `REROUTED_KERNELS`). */
  kernelsReplaced: readonly string[];
  /** Zero gradients qbnn registered for comparison and logic kernels (see `ZERO_GRADIENT_KERNELS`). */
  gradientsAdded: readonly string[];
  /** Number of kernels that have a gradient registered in tfjs-core's global registry. */
  gradientCount: number;
  /** Whether the wasm binary in use has SIMD; null on the cpu backend. */
  simd: boolean | null;
  /**
   * Accelerated fp32 kernels installed for the wasm backend when initBackend ran (e.g. by importing
   * `@qbnn/native-amx`), or null. `floatKernelSet()` tells the current state at any time.
   */
  floatKernels: FloatKernelSet | null;
}

const WASM_PRIORITY = 2;
// Registered on import, like the gradients, so that code which sets the wasm backend up by itself
// (tf.setBackend('wasm')) still trains; initBackend only reports what was done.
const support: WasmTrainingSupport = registerWasmTrainingSupport();
registerFusedAdamKernels();
registerDropoutKernels();
registerGaussianKlKernels();
registerGaussianSampleKlGradient();
registerSquaredDistanceKernels();
registerSoftmaxCrossEntropyKernels();
registerReluGradient();
registerFusedConvGradient();
registerConvReluMaxPoolGradient();
registerReduceGradients();
const pending = new Map<string, Promise<BackendInfo>>();

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Kernel names whose gradient is registered; counted by probing the kernels any backend knows. */
function countGradients(): number {
  const names = new Set<string>();
  for (const b of ['cpu', 'wasm']) for (const k of tf.getKernelsForBackend(b)) names.add(k.kernelName);
  let n = 0;
  for (const name of names) if (tf.getGradient(name) !== undefined) n++;
  return n;
}

/**
 * Creates the wasm backend by calling tfjs-backend-wasm's own factory, so that a failure is caught
 * with its reason (tfjs's setBackend would only log it and return false), then installs the
 * instance and makes it active.
 */
async function activateWasm(wasmPath: string | undefined): Promise<void> {
  if (typeof WebAssembly !== 'object') throw new Error('this JavaScript engine has no WebAssembly');
  // Not tf.findBackend('wasm'): for a registered but uninitialised backend it starts the
  // initialisation itself, leaving the engine with a pending init.
  if (!initialisedBackends().has('wasm')) {
    if (wasmPath !== undefined) tfWasm.setWasmPaths(wasmPath);
    const factory = tf.findBackendFactory('wasm');
    if (factory == null) throw new Error('tfjs-backend-wasm did not register its backend');
    const instance = await factory();
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', () => instance, WASM_PRIORITY);
  }
  if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') returned false");
}

/** Backends the engine has instantiated (tfjs-core 4.x keeps them in `engine().registry`). */
function initialisedBackends(): Set<string> {
  const registry = (tf.engine() as unknown as { registry?: Record<string, unknown> }).registry ?? {};
  return new Set(Object.keys(registry));
}

/**
 * tfjs-backend-cpu logs a "use tfjs-node" hint on its first use in Node, which does not apply to
 * qbnn (it runs on wasm, or says why not). Its factory is synchronous, so instantiating it here is
 * cheap and starts no pending initialisation.
 */
function quietCpu(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu != null) cpu.firstUse = false;
}

async function activateCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) {
    throw new QbnnError(
      'ERR_BACKEND',
      "initBackend: tf.setBackend('cpu') failed; tfjs-backend-cpu is unusable",
    );
  }
}

async function init(wanted: 'auto' | BackendName, options: InitBackendOptions): Promise<BackendInfo> {
  quietCpu();
  let fallbackReason: string | null = null;
  if (wanted !== 'cpu') {
    try {
      await activateWasm(options.wasmPath);
    } catch (err) {
      if (wanted === 'wasm') {
        throw new QbnnError('ERR_BACKEND', `initBackend: the wasm backend failed to start: ${message(err)}`);
      }
      fallbackReason = `tfjs-backend-wasm failed to start (${message(err)}); using tfjs-backend-cpu`;
      (options.log ?? console.warn)(`qbnn: ${fallbackReason}`);
    }
  }
  if (wanted === 'cpu' || fallbackReason !== null) await activateCpu();
  const backend = tf.getBackend() as BackendName;
  const simd = backend === 'wasm' ? Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) : null;
  const floatKernels = backend === 'wasm' ? floatKernelSet() : null;
  return { backend, fallbackReason, ...support, gradientCount: countGradients(), simd, floatKernels };
}

/**
 * Sets tfjs up for qbnn: makes tfjs-backend-wasm the active backend (in Node and in browsers),
 * falling back to tfjs-backend-cpu with a logged reason; every tfjs-core gradient is registered
 * (importing `@qbnn/core` does that; tfjs-core alone registers none in Node), and the kernels
 * tfjs-backend-wasm lacks for training (Conv2DBackpropFilter, the depthwise conv backprops,
 * UnsortedSegmentSum, Einsum) are added for wasm, its faulty MaxPoolGrad is replaced, and
 * comparison/logic kernels get a zero gradient so masks built from differentiated values work.
 * Chained ops (`x.square()`) are registered at run time too, though tfjs-core's types do not
 * declare them: in TypeScript write `tf.square(x)`.
 *
 * Idempotent: later calls with the same `backend` option return the first call's result at once
 * (re-activating that backend if something else switched it meanwhile).
 *
 * Use tfjs through `import * as tf from '@tensorflow/tfjs-core'`, the instance qbnn sets up.
 *
 * @example
 * ```ts
 * import { initBackend } from '@qbnn/core';
 * import * as tf from '@tensorflow/tfjs-core';
 * const info = await initBackend(); // { backend: 'wasm', fallbackReason: null, ... }
 * const g = tf.grad((x: tf.Tensor) => x.square().sum())(tf.tensor1d([1, 2]));
 * ```
 * @throws QbnnError `ERR_BACKEND` when `backend: 'wasm'` is forced and wasm cannot start, or when
 * not even the cpu backend can start.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const wanted = options.backend ?? 'auto';
  if (wanted !== 'auto' && wanted !== 'wasm' && wanted !== 'cpu') {
    throw new QbnnError(
      'ERR_ARG',
      `initBackend: backend must be 'auto', 'wasm' or 'cpu', got ${String(wanted)}`,
    );
  }
  const cached = pending.get(wanted);
  if (cached !== undefined) {
    const info = await cached;
    if (tf.getBackend() !== info.backend && !(await tf.setBackend(info.backend))) {
      throw new QbnnError('ERR_BACKEND', `initBackend: could not re-activate the ${info.backend} backend`);
    }
    return info;
  }
  const p = init(wanted, options);
  pending.set(wanted, p);
  try {
    return await p;
  } catch (err) {
    pending.delete(wanted);
    throw err;
  }
}

export { gradientError, numericGradient } from './gradcheck.js';
