import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, Linear, predict, ReLU, Sequential } from '../src/index.js';
import { ready } from './setup.js';

beforeAll(ready);

/** Asserts that `fn` throws a QbnnError with `code` whose message matches `message`. */
function expectQbnn(fn: () => unknown, code: string, message: RegExp): void {
  expect(fn).toThrow(
    expect.objectContaining({ name: 'QbnnError', code, message: expect.stringMatching(message) }),
  );
}

const model = () => new Sequential(new Linear(4, 8, { seed: 1 }), new ReLU(), new Linear(8, 10, { seed: 2 }));

describe('predict and evaluate refuse bad options and inputs (issue 17 D5, D6)', () => {
  const bad = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '4' as unknown as number];

  it('a batch size that is not a positive integer is an ERR_ARG naming batchSize (D5: 0 looped forever)', () => {
    const m = model();
    const x = tf.ones([6, 4]);
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
    const before = tf.memory().numTensors;
    for (const batchSize of bad) {
      expectQbnn(
        () => predict(m, x, { batchSize }),
        'ERR_ARG',
        /^predict: batchSize must be a positive integer/,
      );
      expectQbnn(() => evaluate(m, { x, y }, { batchSize }), 'ERR_ARG', /^evaluate: batchSize must be/);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('a NaN or infinite input is an ERR_NAN naming the input and the flat index (D6)', () => {
    const m = model();
    for (const [value, index] of [
      [Number.NaN, 5],
      [Number.POSITIVE_INFINITY, 0],
      [Number.NEGATIVE_INFINITY, 23],
    ]) {
      const v = new Float32Array(24).fill(0.5);
      v[index] = value;
      const x = tf.tensor2d(v, [6, 4]);
      const y = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
      const shown = String(value).replace('+', '\\+');
      expectQbnn(
        () => predict(m, x),
        'ERR_NAN',
        new RegExp(`^predict: x must be finite, got ${shown} at flat index ${index}`),
      );
      expectQbnn(
        () => evaluate(m, { x, y }),
        'ERR_NAN',
        new RegExp(`^evaluate: data.x must be finite.* index ${index}`),
      );
      tf.dispose([x, y]);
    }
    m.dispose();
  });

  it('labels that are not class indices of the model output are refused (D6: label 99 of 10 gave a loss)', () => {
    const m = model();
    const x = tf.ones([3, 4]);
    const cases: [tf.Tensor, string, RegExp][] = [
      [
        tf.tensor1d([1, 99, 2], 'int32'),
        'ERR_ARG',
        /^evaluate: data.y\[1\] must be a class index, an integer in \[0, 9\], got 99/,
      ],
      [tf.tensor1d([1, 2, -1], 'int32'), 'ERR_ARG', /data.y\[2\] .* got -1/],
      [tf.tensor1d([1.5, 2, 3]), 'ERR_ARG', /data.y\[0\] .* got 1.5/],
      [
        tf.tensor1d([1, 2], 'int32'),
        'ERR_SHAPE',
        /data.y must be \[3\] class indices or \[3, 10\] target rows, got \[2\]/,
      ],
      [tf.oneHot(tf.tensor1d([1, 2, 3], 'int32'), 9), 'ERR_SHAPE', /got \[3,9\]/],
      [tf.tensor2d(new Float32Array(30).fill(Number.NaN), [3, 10]), 'ERR_NAN', /data.y must be finite/],
    ];
    for (const [y, code, message] of cases) {
      expectQbnn(() => evaluate(m, { x, y }), code, message);
      y.dispose();
    }
    expectQbnn(() => evaluate(m, null as never), 'ERR_ARG', /evaluate: data must be/);
    expectQbnn(() => predict(m, null as never), 'ERR_ARG', /predict: x must be a tensor/);
    expectQbnn(() => predict(m, tf.zeros([0, 4])), 'ERR_SHAPE', /N >= 1/);
    tf.dispose(x);
    m.dispose();
  });

  it('valid labels still evaluate: accuracy and loss equal a float64 computation from the logits', () => {
    const m = model();
    const x = tf.tensor2d(
      Float32Array.from({ length: 28 }, (_, i) => Math.sin(i)),
      [7, 4],
    );
    const labels = [3, 1, 4, 1, 5, 9, 2];
    const logits = predict(m, x, { batchSize: 3 }).arraySync() as number[][];
    let hits = 0;
    let loss = 0;
    logits.forEach((row, i) => {
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      loss += lse - row[labels[i]];
      if (row.indexOf(max) === labels[i]) hits++;
    });
    for (const y of [tf.tensor1d(labels, 'int32'), tf.oneHot(tf.tensor1d(labels, 'int32'), 10)]) {
      const r = evaluate(m, { x, y }, { batchSize: 2 });
      expect(r.accuracy).toBe(hits / 7);
      expect(r.loss).toBeCloseTo(loss / 7, 5);
      y.dispose();
    }
    tf.dispose(x);
    m.dispose();
  });
});
