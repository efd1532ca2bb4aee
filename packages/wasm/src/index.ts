/**
 * @qbnn/wasm: the int8 kernels of @qbnn/core's contract in WebAssembly SIMD, for browsers (and
 * any JavaScript engine with WebAssembly SIMD128). Importing this module compiles the kernels and
 * registers the provider 'wasm' in @qbnn/core's kernel registry with priority 50: above the JS
 * reference (0), below the native addon (100). Where the engine computes relaxed-SIMD integer dot
 * products exactly (checked at load), the GEMM runs on them; otherwise on plain SIMD128. Either
 * way every result is bit-identical to the JS reference. If the kernels cannot run here, importing
 * still works: the provider is registered as unavailable and `wasmLoadError()` says why.
 *
 * @packageDocumentation
 */
import { registerKernelProvider } from '@qbnn/core';
import { loadKernels, type WasmVariant } from './module.js';
import {
  activeVariant,
  availableVariants,
  installKernels,
  loadError,
  loadResult,
  setVariant,
  wasmKernels,
} from './provider.js';

export type { WasmVariant } from './module.js';
export {
  unpackWeights,
  WASM_PRIORITY,
  WASM_PROVIDER,
  WasmPackedWeights,
  wasmKernels,
  wasmPhilox,
  wasmQnormalFromWords,
} from './provider.js';

/** What loading found on this engine. */
export interface WasmInfo {
  /** The build in use: relaxed-SIMD dot products, or plain SIMD128. */
  variant: WasmVariant;
  /** Every build that can run here, best first. */
  available: WasmVariant[];
  /** The engine accepts relaxed-SIMD modules. */
  relaxedSupported: boolean;
  /** Its relaxed integer dot product computes unsigned bytes exactly (the probe at load). */
  relaxedExact: boolean;
  /** Compiler and module sizes of the build. */
  build: string;
}

installKernels(await loadKernels());
// override: a second copy of this module (e.g. src and dist in one process) replaces the first.
registerKernelProvider(wasmKernels, { override: true });

/** True when the kernels loaded and the provider is usable. */
export function wasmAvailable(): boolean {
  return activeVariant() !== undefined;
}

/** Why the provider is unavailable (undefined when it runs). */
export function wasmLoadError(): string | undefined {
  return loadError();
}

/** What loading found, or undefined when the provider is unavailable. */
export function wasmInfo(): WasmInfo | undefined {
  const variant = activeVariant();
  if (variant === undefined) return undefined;
  const r = loadResult();
  return {
    variant,
    available: availableVariants(),
    relaxedSupported: r.relaxedSupported,
    relaxedExact: r.relaxedExact,
    build: r.buildInfo ?? '',
  };
}

/**
 * Forces a build ('relaxed' or 'simd128'), or 'best' to restore the default; for tests and
 * benchmarks. Throws if it cannot run here. Returns the build now in use.
 */
export function setWasmVariant(name: WasmVariant | 'best'): WasmVariant {
  return setVariant(name);
}
