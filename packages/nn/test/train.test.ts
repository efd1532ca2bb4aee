import { Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AvgPool2d,
  BatchNorm2d,
  Conv2d,
  cosineAnnealing,
  crossEntropy,
  Dropout,
  evaluate,
  Flatten,
  fit,
  gaussianNll,
  type IndexedData,
  Linear,
  type LossFn,
  MaxPool2d,
  type ProgressEvent,
  permutation,
  predict,
  ReLU,
  regressionMlp,
  Sequential,
} from '../src/index.js';
import { ready } from './setup.js';

beforeAll(ready);

/** Three Gaussian blobs in 2-D, labels int32. */
function blobs(n: number, seed: number) {
  const rng = new Rng(seed);
  const z = rng.normal(2 * n);
  const xs = new Float32Array(2 * n);
  const ys = new Int32Array(n);
  const centres = [
    [0, 2],
    [2, -1],
    [-2, -1],
  ];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    ys[i] = c;
    xs[2 * i] = centres[c][0] + 0.5 * z[2 * i];
    xs[2 * i + 1] = centres[c][1] + 0.5 * z[2 * i + 1];
  }
  return { x: tf.tensor2d(xs, [n, 2]), y: tf.tensor1d(ys, 'int32') };
}

const mlp = (seed: number, p = 0) =>
  new Sequential(
    new Linear(2, 16, { seed }),
    new ReLU(),
    new Dropout(p),
    new Linear(16, 3, { seed: seed + 1 }),
  );

describe('losses', () => {
  it('crossEntropy equals the float64 formula for indices and one-hot', () => {
    const logits = tf.tensor2d([
      [1, 2, 0.5],
      [-1, 0, 3],
    ]);
    const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
    const ref = (lse([1, 2, 0.5]) - 2 + lse([-1, 0, 3]) - -1) / 2;
    expect(crossEntropy(logits, tf.tensor1d([1, 0], 'int32')).dataSync()[0]).toBeCloseTo(ref, 5);
    expect(crossEntropy(logits, tf.oneHot(tf.tensor1d([1, 0], 'int32'), 3)).dataSync()[0]).toBeCloseTo(
      ref,
      5,
    );
  });

  it('gaussianNll equals the float64 formula', () => {
    const out = tf.tensor2d([
      [0.5, -1],
      [2, 0.3],
    ]);
    const y = tf.tensor1d([1, 1.5]);
    const term = (m: number, lv: number, t: number) =>
      0.5 * (Math.log(2 * Math.PI) + lv + (t - m) ** 2 * Math.exp(-lv));
    expect(gaussianNll(out, y).dataSync()[0]).toBeCloseTo((term(0.5, -1, 1) + term(2, 0.3, 1.5)) / 2, 5);
  });
});

describe('fit', () => {
  it('learns blobs with Adam; evaluate and predict agree', async () => {
    const train = blobs(300, 1);
    const test = blobs(150, 2);
    const m = mlp(1);
    const events: ProgressEvent[] = [];
    const res = await fit(m, train, {
      epochs: 15,
      batchSize: 32,
      lr: 0.02,
      onProgress: (e) => {
        events.push(e);
      },
      validate: (model) => ({ accuracy: evaluate(model, test).accuracy }),
    });
    expect(res.stopped).toBe('completed');
    expect(res.steps).toBe(15 * 10);
    expect(res.epochLoss[14]).toBeLessThan(res.epochLoss[0]);
    const ev = evaluate(m, test);
    expect(ev.accuracy).toBeGreaterThan(0.95);
    expect(res.metrics[14].accuracy).toBe(ev.accuracy);
    const steps = events.filter((e) => e.type === 'step');
    expect(steps).toHaveLength(150);
    expect(steps[0]).toMatchObject({ epoch: 0, step: 0, stepsPerEpoch: 10, totalSteps: 150, epochs: 15 });
    expect(steps[0].examplesPerSec).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === 'epoch')).toHaveLength(15);
    const logits = predict(m, test.x, { batchSize: 40 });
    expect(logits.shape).toEqual([150, 3]);
    m.dispose();
    tf.dispose([train.x, train.y, test.x, test.y, logits]);
  });

  it('is deterministic given a seed (with dropout), and the seed matters', async () => {
    const data = blobs(90, 3);
    const run = async (seed: number) => {
      const m = mlp(5, 0.3);
      await fit(m, data, { epochs: 2, batchSize: 16, seed, optimizer: 'sgd', lr: 0.05 });
      const w = Array.from(m.stateDict()['0.weight'].dataSync());
      m.dispose();
      return w;
    };
    const a = await run(11);
    expect(await run(11)).toEqual(a);
    expect(await run(12)).not.toEqual(a);
    tf.dispose([data.x, data.y]);
  });

  it('leaks no tensors over many steps (Adam, clipping, weight decay, cosine)', async () => {
    const data = blobs(64, 4);
    const m = mlp(2, 0.2);
    const counts: number[] = [];
    await fit(m, data, {
      epochs: 10,
      batchSize: 8,
      clipGradNorm: 0.5,
      weightDecay: 1e-4,
      lrSchedule: 'cosine',
      onProgress: (e) => {
        if (e.type === 'step') counts.push(tf.memory().numTensors);
      },
    });
    expect(counts).toHaveLength(80);
    expect(new Set(counts.slice(1)).size).toBe(1);
    const before = tf.memory().numTensors;
    evaluate(m, data);
    predict(m, data.x).dispose();
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('conv, batch-norm and pooling training steps leak nothing either', async () => {
    const x = tf.randomNormal([24, 2, 9, 9], 0, 1, 'float32', 1);
    const y = tf.tensor1d(
      Array.from({ length: 24 }, (_, i) => i % 3),
      'int32',
    );
    const m = new Sequential(
      new Conv2d(2, 4, 3, { stride: 2, padding: 1, seed: 1 }),
      new BatchNorm2d(4),
      new ReLU(),
      new Conv2d(4, 4, 3, { dilation: 2, padding: 2, groups: 2, seed: 2 }),
      new MaxPool2d(2),
      new AvgPool2d(1),
      new Flatten(),
      new Dropout(0.2),
      new Linear(16, 3, { seed: 3 }),
    );
    const counts: number[] = [];
    const res = await fit(
      m,
      { x, y },
      {
        epochs: 6,
        batchSize: 8,
        onProgress: (e) => {
          if (e.type === 'step') counts.push(tf.memory().numTensors);
        },
      },
    );
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(res.epochLoss[5]).toBeLessThan(res.epochLoss[0]);
    m.dispose();
    tf.dispose([x, y]);
  });

  it('clips the global gradient norm and reports it', async () => {
    const data = blobs(32, 5);
    const m = mlp(3);
    const before = m.stateDict()['3.bias'].dataSync().slice();
    const norms: number[] = [];
    await fit(m, data, {
      epochs: 1,
      batchSize: 32,
      optimizer: 'sgd',
      momentum: 0,
      lr: 1,
      clipGradNorm: 1e-3,
      onProgress: (e) => {
        if (e.gradNorm !== undefined) norms.push(e.gradNorm);
      },
    });
    expect(norms[0]).toBeGreaterThan(1e-3);
    // With lr 1 and a clipped norm of 1e-3, no parameter moves by more than 1e-3.
    const after = m.stateDict()['3.bias'].dataSync();
    for (let i = 0; i < 3; i++) expect(Math.abs(after[i] - before[i])).toBeLessThanOrEqual(1.0001e-3);
    m.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('cosine annealing, early stop, abort, NaN, and a loss with an extra term', async () => {
    const cos = cosineAnnealing({ minLr: 0.1 });
    expect(cos(0, 100, 1)).toBeCloseTo(1);
    expect(cos(50, 100, 1)).toBeCloseTo(0.55);
    expect(cos(100, 100, 1)).toBeCloseTo(0.1);
    const warm = cosineAnnealing({ warmupSteps: 4 });
    expect(warm(0, 10, 1)).toBeCloseTo(0.25);
    const data = blobs(30, 6);
    const m = mlp(4);
    const lrs: number[] = [];
    const stop = await fit(m, data, {
      epochs: 10,
      batchSize: 10,
      lrSchedule: 'cosine',
      earlyStop: (e) => e.epoch === 2,
      onProgress: (e) => {
        if (e.type === 'step') lrs.push(e.lr);
      },
    });
    expect(stop.stopped).toBe('earlyStop');
    expect(stop.epochs).toBe(3);
    expect(lrs[0]).toBeCloseTo(1e-3);
    expect(lrs[1]).toBeLessThan(lrs[0]);
    const ac = new AbortController();
    const ab = await fit(m, data, {
      epochs: 5,
      batchSize: 10,
      signal: ac.signal,
      onProgress: (e) => {
        if (e.globalStep === 4) ac.abort();
      },
    });
    expect(ab).toMatchObject({ stopped: 'aborted', steps: 4 });
    // Extra terms: an L2 penalty read from the model, with the step context.
    const seen: number[] = [];
    const elbo: LossFn = (model, x, y, ctx) => {
      seen.push(ctx.datasetSize);
      const penalty = tf.div(tf.sum(tf.square(model.parameters()[0])), ctx.datasetSize);
      return tf.add(crossEntropy(model.apply(x), y), penalty) as tf.Scalar;
    };
    await fit(m, data, { epochs: 1, batchSize: 15, loss: elbo });
    expect(seen).toEqual([30, 30]);
    const bad: LossFn = () => tf.scalar(Number.NaN);
    await expect(
      fit(m, data, {
        loss: (mm, x, y, c) => tf.add(bad(mm, x, y, c), tf.sum(mm.parameters()[0])) as tf.Scalar,
      }),
    ).rejects.toThrow(/loss is NaN/);
    m.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('trains the regression MLP with the Gaussian NLL', async () => {
    const n = 200;
    const rng = new Rng(9);
    const xs = rng.uniform(n);
    const noise = rng.normal(n);
    const x = tf.tensor2d(
      Array.from(xs, (v) => 4 * v - 2),
      [n, 1],
    );
    const y = tf.tensor1d(Array.from(xs, (v, i) => Math.sin(4 * v - 2) + 0.1 * noise[i]));
    const m = regressionMlp({ inFeatures: 1, hidden: 32 }, { seed: 1 });
    const res = await fit(
      m,
      { x, y },
      { epochs: 60, batchSize: 50, lr: 0.01, loss: (mm, xb, yb) => gaussianNll(mm.apply(xb), yb) },
    );
    expect(res.epochLoss[39]).toBeLessThan(res.epochLoss[0] - 0.5);
    m.dispose();
    tf.dispose([x, y]);
  });

  it('trains from an indexed (lazy) dataset; every example is served once per epoch', async () => {
    const data = blobs(50, 8);
    const served: number[][] = [];
    const lazy: IndexedData = {
      size: 50,
      batch: (idx) => {
        served.push(Array.from(idx));
        const it = tf.tensor1d(idx, 'int32');
        const b = { x: tf.gather(data.x, it), y: tf.gather(data.y, it) };
        it.dispose();
        return b;
      },
    };
    const m = mlp(6);
    const before = tf.memory().numTensors;
    const res = await fit(m, lazy, { epochs: 2, batchSize: 16 });
    expect(tf.memory().numTensors).toBe(before);
    expect(res.steps).toBe(8);
    expect(served.map((b) => b.length)).toEqual([16, 16, 16, 2, 16, 16, 16, 2]);
    const epoch1 = served
      .slice(0, 4)
      .flat()
      .sort((a, b) => a - b);
    expect(epoch1).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(served[0]).not.toEqual(served[4]);
    m.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('permutation is a deterministic permutation', () => {
    const p = permutation(1000, new Rng(1));
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(permutation(1000, new Rng(1))).toEqual(p);
  });
});
