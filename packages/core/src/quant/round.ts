/**
 * Rounds to the nearest integer, ties to even (IEEE 754 roundTiesToEven, C's `nearbyint` in the
 * default mode). Every quantisation and requantisation step in qbnn rounds this way, so the JS
 * reference and native kernels (which use `nearbyint` / `vcvtps2dq`-style conversions) agree.
 *
 * Exact for every float64: `Math.round` rounds ties up, so a tie whose rounded value is odd is
 * moved down by one. `r - x` is exact here because r and x are within 1/2 of each other.
 * A primitive of the hot loops: like `Math.round`, it passes NaN and infinities through
 * unchecked; every entry point that takes values (quantize, computeQuantParams, ...) refuses
 * them before rounding.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Normalise -0 to 0: a -0 stored in an integer array is 0 anyway, and tests compare with toBe.
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r === 0 ? 0 : r;
}

/** Clamps an integer to [lo, hi]. */
export function clampInt(q: number, lo: number, hi: number): number {
  return Math.min(Math.max(q, lo), hi);
}
