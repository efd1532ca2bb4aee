import { QbnnError } from '../src/errors.js';
import { Rng } from '../src/rng/rng.js';

/** Independent rounding reference: floor plus an explicit tie rule. */
export function refRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The QbnnError code a call throws, or undefined when it returns. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof QbnnError) return e.code;
    throw e;
  }
  return undefined;
}

/** Deterministic random integers in [lo, hi]. */
export function randInts(rng: Rng, n: number, lo: number, hi: number): number[] {
  const u = rng.uniform(n);
  return Array.from(u, (v) => lo + Math.floor(v * (hi - lo + 1)));
}

export function randU8(rng: Rng, n: number, lo = 0, hi = 255): Uint8Array {
  return Uint8Array.from(randInts(rng, n, lo, hi));
}

export function randS8(rng: Rng, n: number, lo = -128, hi = 127): Int8Array {
  return Int8Array.from(randInts(rng, n, lo, hi));
}

export { Rng };
