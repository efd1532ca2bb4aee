import { floatKernelSet } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * True when the active backend is wasm and an installed fp32 kernel set (e.g. @qbnn/native-amx)
 * serves every named kernel: layers then use tfjs's plain ops and gradients instead of the
 * custom gradients that work around slow tfjs-backend-wasm kernels.
 */
export function nativeFloatKernels(...kernels: string[]): boolean {
  const set = floatKernelSet();
  return set !== null && tf.getBackend() === 'wasm' && kernels.every((k) => set.kernels.includes(k));
}
