// The builds of the wasm kernels this engine can run (both are tested where both load).
import { setWasmVariant, type WasmVariant, wasmInfo } from '../src/index.js';

export function variants(): WasmVariant[] {
  return wasmInfo()?.available ?? [];
}

/** Runs `fn` on one build, restoring the default after. */
export function onVariant(v: WasmVariant, fn: () => void): void {
  setWasmVariant(v);
  try {
    fn();
  } finally {
    setWasmVariant('best');
  }
}
