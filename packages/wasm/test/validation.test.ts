import { QbnnError, referenceKernels } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { errorOf, rejectionMismatches } from '../../core/test/kernel-cases.js';
import { wasmAvailable, wasmKernels, wasmPhilox } from '../src/index.js';

// Both providers validate with @qbnn/core's kernels/validate.ts: a bad call fails with the same
// code and message whichever provider runs it (only the bounds a provider tightens differ).
describe.skipIf(!wasmAvailable())('the same argument checks as the JS reference', () => {
  test('qgemm, qconv2d, qnormal, packWeights and the Gaussian sampler', () => {
    expect(rejectionMismatches(wasmKernels, referenceKernels)).toEqual([]);
  });

  test('packs of another provider are refused by name', () => {
    const foreign = referenceKernels.packWeights(new Int8Array(8), 2, 4, 0);
    expect(
      errorOf(() =>
        wasmKernels.qgemm({
          a: new Uint8Array(4),
          m: 1,
          aScale: 1,
          aZeroPoint: 0,
          w: foreign,
          wScale: 1,
          output: { kind: 'i32' },
        }),
      ),
    ).toMatch(/^ERR_ARG: qgemm: w was packed by provider 'js'; the 'wasm' provider needs/);
    const copy = { ...wasmKernels.packWeights(new Int8Array(8), 2, 4, 0) };
    expect(
      errorOf(() =>
        wasmKernels.qgemm({
          a: new Uint8Array(4),
          m: 1,
          aScale: 1,
          aZeroPoint: 0,
          w: copy,
          wScale: 1,
          output: { kind: 'i32' },
        }),
      ),
    ).toMatch(/its own packWeights/);
  });

  test('wasmPhilox refuses keys and positions the wasm call would coerce', () => {
    // a position of -1 or NaN gave position 0's words, a key of -1 key 2^32 - 1's: silently another stream
    const out = new Uint32Array(4);
    const cases: [readonly [number, number], number, RegExp][] = [
      [[1, 2], -1, /wasmPhilox: position must be an integer/],
      [[1, 2], Number.NaN, /wasmPhilox: position/],
      [[1, 2], 1.5, /wasmPhilox: position/],
      [[1, 2], 2 ** 53, /wasmPhilox: position/],
      [[-1, 2], 0, /wasmPhilox: key\[0\]/],
      [[1, 2 ** 32], 0, /wasmPhilox: key\[1\]/],
    ];
    const thrown = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    for (const [key, position, what] of cases) {
      const err = thrown(() => wasmPhilox(key, position, out));
      expect(err, String(what)).toBeInstanceOf(QbnnError);
      expect((err as Error).message).toMatch(what);
    }
    expect(thrown(() => wasmPhilox([1, 2], 0, new Int32Array(4) as never))).toBeInstanceOf(QbnnError);
    expect(wasmPhilox([1, 2], 2 ** 40, out)).toHaveLength(4);
  });
});
