import { JS_PROVIDER } from '@qbnn/core';
import { NATIVE_PROVIDER, nativeAvailable } from '@qbnn/native-amx';
import { describe, expect, it } from 'vitest';
import type { QuantizedModel } from '../src/engine/quantized-model.js';
import { tinyMlp } from './tiny-models.js';

// Long-running use (issue 17, item 3 and D19): 10^4 integer-engine forwards in a synchronous loop
// (nothing lets the event loop turn, so nothing freed only by a finalizer is freed) must keep the
// resident set flat. Before the fix, the default (weights) mode of an MLP with a 784 x 256
// Gaussian layer grew by ~1.3 GB in 6,000 calls on the native provider.

const MB = 2 ** 20;
const rss = () => process.memoryUsage().rss;

/** RSS growth over `calls` synchronous forwards, after a warm-up; checks each output. */
function soak(m: QuantizedModel, provider: string, inputs: number, calls: number): number {
  const x = Float32Array.from({ length: 4 * inputs }, (_, i) => ((i * 37) % 101) / 101);
  const run = (i: number) => {
    const o = m.forward(x, { samples: 2, seed: i, provider });
    if (!Number.isFinite(o.logits[0])) throw new Error(`call ${i}: logits not finite`);
  };
  for (let i = 0; i < 300; i++) run(i);
  const before = rss();
  for (let i = 0; i < calls; i++) run(i);
  return rss() - before;
}

describe('soak: synchronous integer-engine loops keep memory flat', () => {
  it.skipIf(!nativeAvailable)(
    'native provider: 10^4 weights-mode forwards of a 784-256-10 Bayesian MLP (batch 4, 2 samples)',
    () => {
      const m = tinyMlp({ inputs: 784, hidden: 256, classes: 10 });
      const grown = soak(m, NATIVE_PROVIDER, 784, 10_000);
      console.log(`native soak: RSS grew by ${(grown / MB).toFixed(1)} MB over 10^4 calls`);
      expect(grown / MB).toBeLessThan(64);
      // reusing one destination pack per layer changes no result: native equals the JS reference
      const x = Float32Array.from({ length: 2 * 784 }, (_, i) => (i % 13) / 13);
      const a = m.forward(x, { samples: 3, seed: 77, provider: NATIVE_PROVIDER }).logits;
      const b = m.forward(x, { samples: 3, seed: 77, provider: JS_PROVIDER }).logits;
      expect(Array.from(a)).toEqual(Array.from(b));
    },
    120_000,
  );

  it('JS reference: 10^4 weights-mode forwards of a 16-32-4 Bayesian MLP (batch 4, 2 samples)', () => {
    const grown = soak(tinyMlp(), JS_PROVIDER, 16, 10_000);
    expect(grown / MB).toBeLessThan(64);
  }, 120_000);
});
