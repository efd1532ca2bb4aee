import { loadNative } from './native.js';

/** Which native path is in use, or why none is: the `isa` field of the machine line. */
export async function detectIsa(): Promise<{ isa: string }> {
  const native = await loadNative();
  return { isa: native?.isa() ?? 'js (native addon not loaded)' };
}
