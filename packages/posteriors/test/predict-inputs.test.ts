import { Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { dnnToBnn, predict } from '../src/index.js';
import { setup } from './helpers.js';

beforeAll(setup);

/** Asserts that `fn` throws a QbnnError with `code` whose message matches `message`. */
function expectQbnn(fn: () => unknown, code: string, message: RegExp): void {
  expect(fn).toThrow(
    expect.objectContaining({ name: 'QbnnError', code, message: expect.stringMatching(message) }),
  );
}

const bayesMlp = (posterior: 'gaussian' | 'mcdropout') =>
  dnnToBnn(new Sequential(new Linear(3, 8, { seed: 1 }), new ReLU(), new Linear(8, 4, { seed: 2 })), {
    posterior,
    seed: 3,
  }).model;

describe('MC predict refuses bad options and inputs (issue 17 D5, D6)', () => {
  it('maxBatch and samples that are not positive integers are ERR_ARG naming them (D5: maxBatch 0 looped forever)', () => {
    const model = bayesMlp('gaussian');
    const x = tf.ones([5, 3]);
    const before = tf.memory().numTensors;
    for (const v of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '8' as unknown as number]) {
      for (const mode of ['local', 'weights'] as const) {
        expectQbnn(
          () => predict(model, x, { maxBatch: v, mode }),
          'ERR_ARG',
          /^predict: maxBatch must be a positive integer/,
        );
        expectQbnn(() => predict(model, x, { samples: v, mode }), 'ERR_ARG', /^predict: samples must be/);
      }
    }
    expectQbnn(() => predict(model, x, { task: 'bogus' as never }), 'ERR_ARG', /task must be/);
    expect(tf.memory().numTensors).toBe(before);
    // The model is left as it was: training mode and sampling modes restored.
    expect(model.training).toBe(true);
    tf.dispose(x);
    model.dispose();
  });

  it('a NaN or infinite input is an ERR_NAN naming the input and the flat index (D6)', () => {
    for (const posterior of ['gaussian', 'mcdropout'] as const) {
      const model = bayesMlp(posterior);
      for (const [value, index] of [
        [Number.NaN, 4],
        [Number.POSITIVE_INFINITY, 14],
      ]) {
        const v = new Float32Array(15).fill(0.25);
        v[index] = value;
        const x = tf.tensor2d(v, [5, 3]);
        expectQbnn(
          () => predict(model, x, { samples: 3 }),
          'ERR_NAN',
          new RegExp(`^predict: x must be finite, got ${String(value)} at flat index ${index}`),
        );
        x.dispose();
      }
      model.dispose();
    }
  });

  it('a sample count whose output cannot fit is refused before the passes run', () => {
    const model = bayesMlp('gaussian');
    const x = tf.ones([4, 3]);
    let calls = 0;
    model.registerForwardHook(() => {
      calls++;
    });
    for (const mode of ['local', 'weights'] as const) {
      calls = 0;
      // 4 examples x 4 classes x 2^25 samples = 2^29 values > 2^28: refused after one pass at most.
      expectQbnn(() => predict(model, x, { samples: 2 ** 25, mode }), 'ERR_ARG', /samples = 33554432/);
      expect(calls).toBeLessThanOrEqual(1);
      expectQbnn(() => predict(model, x, { samples: 1e9, mode }), 'ERR_ARG', /samples = 1000000000/);
    }
    tf.dispose(x);
    model.dispose();
  });
});
