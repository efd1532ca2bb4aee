import type { QuantizedModel } from '@qbnn/qat';
import { compareWithReference } from '@qbnn/qat/testing';
import { expect } from 'vitest';

/**
 * The integer engine against the float64 reference of @qbnn/qat/testing (same seed, same draws):
 * every u8 activation within one quantisation step, fewer than 1% differing at all, most logits
 * within 1e-4. Returns the engine's logits.
 */
export function expectEngineMatchesReference(
  qm: QuantizedModel,
  x: Float32Array,
  opts: { samples: number; seed: number; mode?: 'weights' | 'local' },
): Float32Array {
  const c = compareWithReference(qm, x, opts);
  expect(c.activations).toBeGreaterThan(0);
  expect(c.maxSteps).toBeLessThanOrEqual(1.0000001);
  expect(c.differing).toBeLessThan(0.01);
  expect(c.logitsClose).toBeGreaterThan(0.9);
  return c.logits;
}
