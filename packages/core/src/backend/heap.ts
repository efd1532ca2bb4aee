// What qbnn's own tfjs-backend-wasm kernels use of the backend: outputs are allocated in the wasm
// heap and every tensor (input or output) is read and written through a typed-array view of it.
// Take views after the last allocation of a kernel: an allocation may grow (move) the heap.
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.backend_util.TypedArray;
}

/** Reads float32 data of either backend and allocates float32 outputs (also readable). */
export interface FloatIo {
  read(t: tf.TensorInfo): Float32Array;
  alloc(shape: number[]): tf.TensorInfo;
}

/** {@link FloatIo} of tfjs-backend-wasm (views of its heap). */
export function wasmFloatIo(backend: unknown): FloatIo {
  const wasm = backend as WasmHeapBackend;
  return {
    read: (t) => wasm.typedArrayFromHeap(t) as Float32Array,
    alloc: (shape) => wasm.makeOutput(shape, 'float32'),
  };
}

/** {@link FloatIo} of tfjs-backend-cpu (its arrays). */
export function cpuFloatIo(backend: unknown): FloatIo {
  const cpu = backend as MathBackendCPU;
  return {
    read: (t) => cpu.data.get(t.dataId)!.values as Float32Array,
    alloc: (shape) =>
      cpu.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((x, y) => x * y, 1))),
  };
}

/**
 * Registers `kernelName` for 'wasm' and 'cpu' with the kernel `make` builds over each backend's
 * {@link FloatIo}, unless one is registered already (another copy of qbnn, or a native one).
 */
export function registerFloatKernel(
  kernelName: string,
  make: (io: (backend: unknown) => FloatIo) => tf.KernelFunc,
): void {
  for (const [backendName, io] of [
    ['wasm', wasmFloatIo],
    ['cpu', cpuFloatIo],
  ] as const)
    if (tf.getKernel(kernelName, backendName) === undefined)
      tf.registerKernel({ kernelName, backendName, kernelFunc: make(io) });
}
