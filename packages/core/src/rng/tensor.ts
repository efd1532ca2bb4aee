// Tensors of standard normals written straight into the backend's memory. On tfjs-backend-wasm
// the normals are drawn into a fresh output buffer of the wasm heap (natively when a fill is
// registered): no JS array is allocated and nothing is copied, which matters for the ~1.3 M
// weight-noise draws of a Bayesian LeNet-5 training step.
import * as tf from '@tensorflow/tfjs-core';
import type { WasmHeapBackend } from '../backend/heap.js';
import { NORMAL_FILL_MIN } from './normal.js';
import type { Rng } from './rng.js';

/**
 * A float32 tensor of `shape` holding `rng.normal(size)`: the same values and the same stream
 * advance on every backend.
 */
export function normalTensor(rng: Rng, shape: readonly number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (tf.getBackend() === 'wasm' && n >= NORMAL_FILL_MIN) {
    const wasm = tf.backend() as unknown as WasmHeapBackend;
    const info = wasm.makeOutput([...shape], 'float32');
    // No wasm allocation happens between makeOutput and the fill, so the heap view stays valid.
    rng.normal(n, wasm.typedArrayFromHeap(info) as Float32Array<ArrayBuffer>);
    return tf.engine().makeTensorFromTensorInfo(info);
  }
  return tf.tensor(rng.normal(n), [...shape], 'float32');
}
