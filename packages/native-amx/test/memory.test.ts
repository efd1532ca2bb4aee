import { type JsPackedWeights, QbnnError, referenceKernels } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { errorOf, int, rng, sameBytes, sampleCase } from '../../core/test/kernel-cases.js';
import { nativeKernels as nat, nativeAvailable, unpackWeights } from '../src/index.js';

const MB = 2 ** 20;

// Native memory is freed when the caller says so, not when garbage collection runs (issue 17,
// D19): a synchronous loop (the event loop never turns, so no finalizer runs) must stay flat.
describe.skipIf(!nativeAvailable)('native memory is freed deterministically', () => {
  test('2,500 pack + dispose of a 784 x 256 layer in a synchronous loop keep the resident set flat', () => {
    const r = rng(5);
    const w = Int8Array.from({ length: 256 * 784 }, () => int(r, -128, 127));
    for (let i = 0; i < 100; i++) nat.packWeights(w, 256, 784, 0).dispose?.();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 2500; i++) nat.packWeights(w, 256, 784, 3).dispose?.();
    // before the fix (packs through malloc): +400 MB per 5,000 packs, 2.5 GB after 20,000 (this loop: +500 MB)
    expect((process.memoryUsage().rss - before) / MB).toBeLessThan(48);
  });

  test('sampling into an existing pack (GaussianSampleArgs.out) writes the reference bytes over it', () => {
    for (const [n, k, bits] of [
      [300, 500, 8],
      [17, 33, 4],
      [1, 1, 2],
    ]) {
      const a0 = sampleCase(11 + n, n, k, bits);
      const out = nat.sampleGaussianPacked(a0);
      for (let l = 1; l <= 3; l++) {
        const a = { ...a0, position: l * Math.ceil((n * k) / 4) };
        const got = nat.sampleGaussianPacked({ ...a, out });
        expect(got).toBe(out);
        const want = referenceKernels.sampleGaussianPacked(a);
        sameBytes(unpackWeights(got), (want as JsPackedWeights).data, `[${n}, ${k}] sample ${l}`);
        sameBytes(got.rowSums, want.rowSums, `row sums [${n}, ${k}] sample ${l}`);
        sameBytes(got.zeroPoint, want.zeroPoint, `zero points [${n}, ${k}] sample ${l}`);
        // and the overwritten pack feeds a GEMM as the reference's does
        const x = Uint8Array.from({ length: 3 * k }, (_, i) => (i * 29) % 256);
        const g = { a: x, m: 3, aScale: 0.1, aZeroPoint: 9, wScale: 0.01, output: { kind: 'i32' } as const };
        sameBytes(nat.qgemm({ ...g, w: got }), referenceKernels.qgemm({ ...g, w: want }), 'gemm');
      }
      out.dispose?.();
    }
  });

  test('a destination of the wrong shape, a disposed one or a foreign one is refused', () => {
    const a = sampleCase(3, 8, 12, 8);
    const other = nat.sampleGaussianPacked(sampleCase(4, 8, 13, 8));
    expect(errorOf(() => nat.sampleGaussianPacked({ ...a, out: other }))).toBe(
      'ERR_SHAPE: sampleGaussian: out is packed [8, 13], expected [8, 12]',
    );
    const gone = nat.sampleGaussianPacked(a);
    gone.dispose?.();
    expect(errorOf(() => nat.sampleGaussianPacked({ ...a, out: gone }))).toBe(
      'ERR_ARG: sampleGaussian: out was disposed',
    );
    const js = referenceKernels.sampleGaussianPacked(a);
    expect(() => nat.sampleGaussianPacked({ ...a, out: js })).toThrow(QbnnError);
  });
});
