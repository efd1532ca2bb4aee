// What qbnn's own tfjs-backend-wasm kernels use of the backend: outputs are allocated in the wasm
// heap and every tensor (input or output) is read and written through a typed-array view of it.
// Take views after the last allocation of a kernel: an allocation may grow (move) the heap.
import type * as tf from '@tensorflow/tfjs-core';

export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.backend_util.TypedArray;
}
