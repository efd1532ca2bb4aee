import { initBackend } from '@qbnn/core';

let ready: Promise<unknown> | undefined;

/** tfjs backend with gradients registered (core's bootstrap). */
export function useCpu(): Promise<unknown> {
  ready ??= initBackend({ log: () => {} });
  return ready;
}
