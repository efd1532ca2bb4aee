// The ISA paths the native tests run on. (Test data, case generators and byte comparison are
// shared with every kernel provider: packages/core/test/kernel-cases.ts.)
import { nativeInfo } from '../src/index.js';

/** Every path this machine can run (real AMX when the CPU has it, the emulated tiles always). */
export function paths(): string[] {
  return nativeInfo()?.available ?? [];
}
