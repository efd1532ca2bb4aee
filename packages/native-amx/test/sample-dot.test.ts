// Batch 1's fused sample + dot (what a plan runs for a Gaussian linear layer on one example, and
// what the benchmarks' limit at batch 1 times): each row drawn and dotted with x at once. The dots
// must be the sums of x times the contract's weights (core's sampleGaussianWeights, the JS
// reference) and the pack's row sums theirs.
import { sampleGaussianWeights } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { int, rng, sampleCase } from '../../core/test/kernel-cases.js';
import {
  type NativePackedWeights,
  nativeAvailable,
  nativeKernels,
  sampleGaussianDot,
  setIsa,
  unpackWeights,
} from '../src/index.js';

describe.skipIf(!nativeAvailable)('sampleGaussianDot (batch 1: rows dotted as they are drawn)', () => {
  afterAll(() => setIsa('best'));

  test('dots and row sums of the reference weights; partial 64-byte steps, 4 and 8 bits', () => {
    setIsa('best');
    // position (in Philox blocks) 2^32 - 7001: the block counter's low word carries inside the
    // draw (33 x 2450 weights = 20,213 blocks), inside a vector of blocks
    for (const [seed, n, k, bits, position] of [
      [1, 17, 500, 8, 9],
      [2, 40, 65, 8, 9],
      [3, 1, 1, 8, 9],
      [4, 20, 63, 4, 9],
      [5, 33, 2450, 8, 9],
      [6, 33, 2450, 8, 2 ** 32 - 7001],
    ]) {
      const a = sampleCase(seed, n, k, bits);
      const r = rng(seed + 100);
      const x = Uint8Array.from({ length: k }, () => int(r, 0, 255));
      const w = sampleGaussianWeights({ ...a, position });
      const want = Int32Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let j = 0; j < k; j++) s += x[j] * w[i * k + j];
        return s;
      });
      const sums = Int32Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let j = 0; j < k; j++) s += w[i * k + j];
        return s;
      });
      const out = nativeKernels.sampleGaussianPacked({ ...a, position });
      expect(unpackWeights(out), `packed weights ${seed}`).toEqual(w);
      const dots = new Int32Array(n);
      if (!sampleGaussianDot({ ...a, position, out }, x, dots)) continue; // no AVX-512 sampler here
      expect([...dots], `case ${seed}`).toEqual([...want]);
      expect([...(out as NativePackedWeights).rowSums], `row sums ${seed}`).toEqual([...sums]);
    }
  });

  test('false (nothing written) on a path without the AVX-512 sampler; argument errors', () => {
    const a = sampleCase(6, 5, 30, 8);
    const out = nativeKernels.sampleGaussianPacked({ ...a, position: 0 });
    setIsa('scalar');
    const dots = new Int32Array(5).fill(7);
    expect(sampleGaussianDot({ ...a, position: 0, out }, new Uint8Array(30), dots)).toBe(false);
    expect([...dots]).toEqual([7, 7, 7, 7, 7]);
    setIsa('best');
    expect(() => sampleGaussianDot({ ...a, position: 0 }, new Uint8Array(30), dots)).toThrow(/args.out/);
    expect(() => sampleGaussianDot({ ...a, position: 0, out }, new Uint8Array(29), dots)).toThrow(/k = 30/);
    expect(() =>
      sampleGaussianDot({ ...a, position: 0, out }, new Uint8Array(30), new Int32Array(4)),
    ).toThrow(/n = 5/);
  });
});
