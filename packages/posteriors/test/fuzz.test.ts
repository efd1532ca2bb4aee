// Property-based fuzzing (issue 17) of the Monte Carlo predict's options and inputs: any value
// gives probabilities of the right shape (rows summing to 1, no NaN from finite input) or a
// typed QbnnError; no tensor leaks and the model's modes are restored.
// QBNN_FUZZ_RUNS / QBNN_FUZZ_SEED lengthen the campaign (scripts/fuzz.mjs).
import { QbnnError } from '@qbnn/core';
import { Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { dnnToBnn, predict } from '../src/index.js';
import { setup } from './helpers.js';

beforeAll(setup);

const params = {
  numRuns: Number(process.env.QBNN_FUZZ_RUNS ?? 100),
  seed: Number(process.env.QBNN_FUZZ_SEED ?? 17),
};

describe('fuzz: MC predict options and inputs', () => {
  it('probabilities or a QbnnError, for every posterior and option', () => {
    const models = (['gaussian', 'mcdropout', 'radial'] as const).map(
      (posterior) =>
        dnnToBnn(new Sequential(new Linear(3, 6, { seed: 1 }), new ReLU(), new Linear(6, 4, { seed: 2 })), {
          posterior,
          seed: 3,
        }).model,
    );
    const option = fc.oneof(
      fc.integer({ min: -1, max: 7 }),
      fc.constantFrom<unknown>(undefined, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 40, '3', null),
    );
    const value = fc.oneof(
      fc.double({ min: -5, max: 5, noNaN: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 1e38),
    );
    fc.assert(
      fc.property(
        fc.nat(2),
        fc.integer({ min: 0, max: 4 }),
        fc.array(value, { minLength: 12, maxLength: 12 }),
        option,
        option,
        fc.constantFrom<unknown>(undefined, 'local', 'weights', 'mean', 'flipout', 'bogus'),
        (which, n, values, samples, maxBatch, mode) => {
          const model = models[which];
          const before = tf.memory().numTensors;
          const x = tf.tensor2d(values.slice(0, 3 * n), [n, 3]);
          try {
            const { probs } = predict(model, x, { samples, maxBatch, mode } as never);
            const L = samples === undefined || samples === null ? 10 : (samples as number);
            expect(probs.shape).toEqual([L, n, 4]);
            if (values.slice(0, 3 * n).every(Number.isFinite)) {
              const sums = tf.sum(probs, 2);
              expect(sums.dataSync().every((s) => Math.abs(s - 1) < 1e-4)).toBe(true);
              sums.dispose();
            }
            probs.dispose();
          } catch (e) {
            if (!(e instanceof QbnnError)) throw new Error(`untyped error: ${String(e)}`);
            expect(['ERR_ARG', 'ERR_NAN', 'ERR_SHAPE', 'ERR_UNSUPPORTED']).toContain(e.code);
          }
          x.dispose();
          expect(tf.memory().numTensors).toBe(before);
          expect(model.training).toBe(true);
        },
      ),
      params,
    );
    for (const m of models) m.dispose();
  });
});
