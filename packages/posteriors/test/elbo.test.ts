import { Rng } from '@qbnn/core';
import { Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BayesLinear,
  categoricalNll,
  dnnToBnn,
  elboLoss,
  gaussianNll,
  klWeight,
  modelKl,
  predict,
} from '../src/index.js';
import { setup, sp } from './helpers.js';

beforeAll(setup);

describe('NLL', () => {
  it('categorical NLL equals a float64 log-softmax reference, for index and one-hot labels', () => {
    const logits = [
      [2, -1, 0.5],
      [-3, 4, 0],
    ];
    const y = [2, 1];
    let ref = 0;
    logits.forEach((row, i) => {
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
      ref += lse - row[y[i]];
    });
    ref /= 2;
    expect(categoricalNll(tf.tensor2d(logits), tf.tensor1d(y, 'int32')).dataSync()[0]).toBeCloseTo(ref, 5);
    expect(
      categoricalNll(tf.tensor2d(logits), tf.oneHot(tf.tensor1d(y, 'int32'), 3)).dataSync()[0],
    ).toBeCloseTo(ref, 5);
  });

  it('Gaussian NLL with a softplus variance head equals the float64 formula', () => {
    const out = [
      [0.5, -1],
      [2, 0.3],
      [-1, 3],
    ];
    const t = [1, 1.5, -2];
    let ref = 0;
    out.forEach(([m, r], i) => {
      const v = sp(r) + 1e-6;
      ref += 0.5 * Math.log(2 * Math.PI * v) + (t[i] - m) ** 2 / (2 * v);
    });
    expect(gaussianNll(tf.tensor2d(out), tf.tensor1d(t)).dataSync()[0]).toBeCloseTo(ref / 3, 5);
  });
});

describe('elboLoss', () => {
  it('is NLL_mean + beta KL / N, so an epoch of batches sums (times B) to the full-data -ELBO', () => {
    // N = 12 examples of squared-error "NLL"; the epoch loss for B = 3 and B = 6 both equal
    // (sum NLL + KL) / B per batch, i.e. the same objective per example.
    const nll = Array.from({ length: 12 }, (_, i) => 0.1 * i);
    const kl = 7.5;
    for (const b of [3, 6]) {
      let total = 0;
      for (let s = 0; s < 12; s += b) {
        const mean = nll.slice(s, s + b).reduce((a, v) => a + v, 0) / b;
        total += b * elboLoss(tf.scalar(mean), tf.scalar(kl), { datasetSize: 12 }).dataSync()[0];
      }
      expect(total).toBeCloseTo(nll.reduce((a, v) => a + v, 0) + kl, 4);
    }
    expect(elboLoss(tf.scalar(1), tf.scalar(10), { datasetSize: 5, beta: 0.5 }).dataSync()[0]).toBeCloseTo(
      2,
      6,
    );
    expect(() => elboLoss(tf.scalar(1), tf.scalar(1), { datasetSize: 0 })).toThrow(/datasetSize/);
  });
});

describe('klWeight schedules', () => {
  it("'blundell' weights 2^(M-i)/(2^M-1) (times M) average to 1 and halve batch to batch", () => {
    const m = 10;
    const w = Array.from({ length: m }, (_, b) => klWeight('blundell', { batch: b, batchesPerEpoch: m }));
    expect(w.reduce((a, v) => a + v, 0) / m).toBeCloseTo(1, 12);
    expect(w[0]).toBeCloseTo((m * 2 ** (m - 1)) / (2 ** m - 1), 12);
    for (let i = 1; i < m; i++) expect(w[i] / w[i - 1]).toBeCloseTo(0.5, 12);
    // Large M stays finite.
    expect(Number.isFinite(klWeight('blundell', { batch: 0, batchesPerEpoch: 5000 }))).toBe(true);
  });

  it("'standard' and 'graves' give 1, numbers are constants", () => {
    expect(klWeight('standard', { batch: 3, batchesPerEpoch: 7 })).toBe(1);
    expect(klWeight('graves', { batch: 3, batchesPerEpoch: 7 })).toBe(1);
    expect(klWeight(0.25, { batch: 0, batchesPerEpoch: 1 })).toBe(0.25);
  });

  it('linear and cyclical warm-ups', () => {
    const lin = (step: number) => klWeight({ linear: 100 }, { batch: 0, batchesPerEpoch: 1, step });
    expect([lin(0), lin(50), lin(100), lin(1000)]).toEqual([0, 0.5, 1, 1]);
    const cyc = (step: number) =>
      klWeight({ cyclical: { period: 100, ratio: 0.5 } }, { batch: 0, batchesPerEpoch: 1, step });
    expect([cyc(0), cyc(25), cyc(50), cyc(99), cyc(100), cyc(125)]).toEqual([0, 0.5, 1, 1, 0, 0.5]);
    // step defaults to epoch * M + batch
    expect(klWeight({ linear: 20 }, { batch: 5, batchesPerEpoch: 10, epoch: 1 })).toBeCloseTo(0.75, 12);
    expect(() => klWeight('blundell', { batch: 10, batchesPerEpoch: 10 })).toThrow(/batch/);
  });
});

describe('predict', () => {
  const makeModel = () => {
    const det = new Sequential(new Linear(3, 16, { seed: 1 }), new ReLU(), new Linear(16, 4, { seed: 2 }));
    return dnnToBnn(det, { posterior: 'gaussian', posteriorOptions: { rhoInit: -1 }, seed: 5 }).model;
  };

  it("stacks the L samples along the batch in 'local' mode (one pass) and loops in 'weights' mode", () => {
    const model = makeModel();
    const x = tf.tensor2d(new Rng(9).normal(5 * 3), [5, 3]);
    let calls = 0;
    model.registerForwardHook(() => {
      calls++;
    });
    const local = predict(model, x, { samples: 400, mode: 'local', maxBatch: 4096 }).probs;
    expect(calls).toBe(1);
    expect(local.shape).toEqual([400, 5, 4]);
    calls = 0;
    const weights = predict(model, x, { samples: 400, mode: 'weights' }).probs;
    expect(calls).toBe(400);
    // Same predictive distribution: per-example mean probabilities agree within 5 SE (from the
    // per-sample spread of both estimates).
    const a = local.arraySync();
    const b = weights.arraySync();
    for (let i = 0; i < 5; i++) {
      for (let c = 0; c < 4; c++) {
        const sa = a.map((s) => s[i][c]);
        const sb = b.map((s) => s[i][c]);
        const ma = sa.reduce((p, v) => p + v, 0) / 400;
        const mb = sb.reduce((p, v) => p + v, 0) / 400;
        const va = sa.reduce((p, v) => p + (v - ma) ** 2, 0) / 399;
        const vb = sb.reduce((p, v) => p + (v - mb) ** 2, 0) / 399;
        expect(Math.abs(ma - mb)).toBeLessThan(5 * Math.sqrt((va + vb) / 400) + 1e-6);
      }
    }
    // Rows sum to 1; distinct samples differ.
    expect(
      tf
        .sum(local, 2)
        .dataSync()
        .every((v) => Math.abs(v - 1) < 1e-5),
    ).toBe(true);
    expect(a[0][0]).not.toEqual(a[1][0]);
    // Modes and training flag restored.
    expect(model.training).toBe(true);
    expect(model.at<BayesLinear>(0).mode).toBeUndefined();
  });

  it('chunks large stacked batches and returns regression means and variances', () => {
    const det = new Sequential(new Linear(2, 8, { seed: 1 }), new ReLU(), new Linear(8, 2, { seed: 2 }));
    const { model } = dnnToBnn(det, { posterior: 'mcdropout', posteriorOptions: { p: 0.3 } });
    const x = tf.tensor2d(new Rng(1).normal(20), [10, 2]);
    let calls = 0;
    model.registerForwardHook(() => {
      calls++;
    });
    const r = predict(model, x, { samples: 7, task: 'regression', maxBatch: 25 });
    expect(r.mean.shape).toEqual([7, 10]);
    expect(r.variance.dataSync().every((v) => v > 0)).toBe(true);
    // 7 samples of 10 rows, at most 25 rows a pass: 2 samples (20 rows) per pass, 4 passes.
    expect(calls).toBe(4);
  });

  it('modelKl sums the layers', () => {
    const model = makeModel();
    const parts = model
      .modules()
      .filter((m): m is BayesLinear => m instanceof BayesLinear)
      .map((l) => l.kl().dataSync()[0]);
    expect(modelKl(model).dataSync()[0]).toBeCloseTo(parts[0] + parts[1], 3);
  });
});
