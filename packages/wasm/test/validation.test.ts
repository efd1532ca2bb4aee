import { referenceKernels } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { errorOf, rejectionMismatches } from '../../core/test/kernel-cases.js';
import { wasmAvailable, wasmKernels } from '../src/index.js';

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
});
