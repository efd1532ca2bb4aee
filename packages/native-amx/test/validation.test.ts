import { referenceKernels } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { rejectionMismatches } from '../../core/test/kernel-cases.js';
import { nativeAvailable, nativeKernels } from '../src/index.js';

// Both providers validate with @qbnn/core's kernels/validate.ts: a bad call fails with the same
// code and message whichever provider runs it (only the bounds a provider tightens differ).
describe.skipIf(!nativeAvailable)('the same argument checks in both providers', () => {
  test('qgemm, qconv2d, qnormal, packWeights and the Gaussian sampler', () => {
    expect(rejectionMismatches(nativeKernels, referenceKernels)).toEqual([]);
  });
});
