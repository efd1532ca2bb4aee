// The WebAssembly kernels (@qbnn/wasm), loaded once. Benchmarks run without them and say so.
type WasmModule = typeof import('@qbnn/wasm');

let cached: Promise<WasmModule | undefined> | undefined;

export function loadWasm(): Promise<WasmModule | undefined> {
  cached ??= import('@qbnn/wasm').then((m) => (m.wasmAvailable() ? m : undefined)).catch(() => undefined);
  return cached;
}
