// Which accelerated fp32 kernel set, if any, replaces tfjs-backend-wasm kernels. A package such
// as @qbnn/native-amx installs the kernels itself (tfjs's kernel registry) and records them here,
// so that initBackend and the tools report what training and float inference run on.

/** An installed set of fp32 kernels for the wasm backend. */
export interface FloatKernelSet {
  /** Who provides them, e.g. 'native-amx'. */
  name: string;
  /** tfjs kernel names now served by the set. */
  kernels: readonly string[];
  /** Threads the set runs on. */
  threads: number;
  /** One human line, e.g. 'AVX-512 fp32 GEMM, 2 threads'. */
  description: string;
  /**
   * Optional abilities of the kernels beyond tfjs's contract, e.g.
   * {@link CONV_RELU_MAX_POOL_OIHW} (see conv-relu-pool.ts).
   */
  features?: readonly string[];
}

/** Whether the installed set declares `feature` (see {@link FloatKernelSet.features}). */
export function floatKernelFeature(feature: string): boolean {
  return active?.features?.includes(feature) ?? false;
}

let active: FloatKernelSet | null = null;

/** Records (or with null clears) the installed fp32 kernel set. Called by the providing package. */
export function setFloatKernelSet(set: FloatKernelSet | null): void {
  active =
    set === null
      ? null
      : { ...set, kernels: [...set.kernels], ...(set.features ? { features: [...set.features] } : {}) };
}

/** The installed fp32 kernel set for the wasm backend, or null when tfjs's own kernels run. */
export function floatKernelSet(): FloatKernelSet | null {
  return active;
}
