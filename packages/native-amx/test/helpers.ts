// Shared helpers of the native tests: a seeded generator for test data (independent of the
// code under test) and the list of ISA paths that can run here.
import { nativeInfo } from '../src/index.js';

/** xorshift32: deterministic test data. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Every path this machine can run (real AMX when the CPU has it, the emulated tiles always). */
export function paths(): string[] {
  return nativeInfo()?.available ?? [];
}

type Typed = Int8Array | Uint8Array | Int32Array | Uint32Array | Float32Array;

/**
 * Asserts two typed arrays are identical byte for byte (fast, unlike a deep equality on large
 * arrays), naming the first differing element.
 */
export function sameBytes(actual: Typed, expected: Typed, what = ''): void {
  if (actual.constructor !== expected.constructor || actual.length !== expected.length) {
    throw new Error(
      `${what}: got ${actual.constructor.name}(${actual.length}), expected ${expected.constructor.name}(${expected.length})`,
    );
  }
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) return;
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(actual[i] === expected[i])) {
      throw new Error(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
  throw new Error(`${what}: bytes differ`);
}
