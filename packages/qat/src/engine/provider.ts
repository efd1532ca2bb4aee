import type { KernelProvider } from '@qbnn/core';
import * as core from '@qbnn/core';

/** The kernel provider of core's registry (highest priority available, or the named one). */
export function getKernelProvider(name?: string): KernelProvider {
  const reg = (core as unknown as { getKernelProvider?: (n?: string) => KernelProvider }).getKernelProvider;
  if (reg) return reg(name);
  return core.referenceKernels;
}
