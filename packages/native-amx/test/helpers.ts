// The ISA paths the native tests run on. (Test data, case generators and byte comparison are
// shared with every kernel provider: packages/core/test/kernel-cases.ts.)
import { nativeInfo } from '../src/index.js';

/** Every path this machine can run (real AMX when the CPU has it, the emulated tiles always). */
export function paths(): string[] {
  return nativeInfo()?.available ?? [];
}

/** Whether two float32 arrays hold the same bits (NaN payloads and signed zeros included). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((w, i) => w === y[i]);
}
