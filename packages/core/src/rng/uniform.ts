/**
 * A faster implementation of `Rng.uniform` over a stream's blocks: fills `out` with the uniforms
 * (top 24 bits of each word times 2^-24) of the words of blocks firstBlock, firstBlock + 1, ... of
 * key (k0, k1), bit for bit what the reference gives. @qbnn/native-amx registers one (dropout
 * masks draw hundreds of thousands a training step; Philox in JavaScript runs ~100 M words/s).
 */
export type UniformFill = (k0: number, k1: number, firstBlock: number, out: Float32Array) => void;

/** Below this many uniforms the reference runs (a native call costs more than it saves). */
export const UNIFORM_FILL_MIN = 1024;

let registered: UniformFill | null = null;

/** Registers (or with null removes) the fill `Rng.uniform` uses for large draws. */
export function setUniformFill(fill: UniformFill | null): void {
  registered = fill;
}

/** The registered fill, or null when `Rng.uniform` computes in JS. */
export function uniformFill(): UniformFill | null {
  return registered;
}
