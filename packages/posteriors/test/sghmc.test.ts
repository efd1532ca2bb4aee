import { Rng } from '@qbnn/core';
import { Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { dnnToBnn, ensembleSize, predict, SghmcPosterior, SghmcSampler, selectMember } from '../src/index.js';
import { meanVar, setup } from './helpers.js';

beforeAll(setup);

describe('SghmcSampler', () => {
  it('samples a Gaussian target N(m, s^2): mean and variance over 4000 coordinates', () => {
    const n = 4000;
    const m = 0.7;
    const s = 0.3;
    const theta = tf.variable(tf.zeros([n]));
    const sampler = new SghmcSampler({ lr: 0.05, mdecay: 0.1, datasetSize: 1, burnIn: 300, seed: 1 });
    const u = () => tf.tidy(() => tf.div(tf.sum(tf.square(tf.sub(theta, m))), 2 * s * s) as tf.Scalar);
    for (let i = 0; i < 1500; i++) sampler.minimize(u);
    // The coordinates are independent chains, so at the end they are n draws from the chain's
    // marginal: mean within 5 SE (s / sqrt(n)), variance within 5 SE (s^2 sqrt(2 / n)); at this
    // step size the O(eps) discretisation bias is below the standard error (measured 0.7 SE).
    const { mean, variance } = meanVar(theta.dataSync());
    expect(Math.abs(mean - m)).toBeLessThan(5 * (s / Math.sqrt(n)));
    expect(Math.abs(variance - s * s)).toBeLessThan(5 * s * s * Math.sqrt(2 / n));
    expect(sampler.burningIn).toBe(false);
    sampler.dispose();
    theta.dispose();
  });

  it('temperature T targets exp(-U / T): variance T s^2', () => {
    const n = 4000;
    const t = 0.25;
    const theta = tf.variable(tf.zeros([n]));
    const sampler = new SghmcSampler({
      lr: 0.05,
      mdecay: 0.1,
      datasetSize: 1,
      burnIn: 300,
      seed: 3,
      temperature: t,
    });
    const u = () => tf.tidy(() => tf.div(tf.sum(tf.square(theta)), 2) as tf.Scalar);
    for (let i = 0; i < 1500; i++) sampler.minimize(u);
    const { variance } = meanVar(theta.dataSync());
    expect(Math.abs(variance - t)).toBeLessThan(5 * t * Math.sqrt(2 / n));
    expect(() => new SghmcSampler({ datasetSize: 1, temperature: 0 })).toThrow(/temperature/);
    sampler.dispose();
    theta.dispose();
  });

  it('momentum resampling keeps the target', () => {
    const n = 4000;
    const theta = tf.variable(tf.zeros([n]));
    const sampler = new SghmcSampler({
      lr: 0.05,
      mdecay: 0.1,
      datasetSize: 1,
      burnIn: 300,
      seed: 2,
      resampleMomentumEvery: 50,
    });
    const u = () => tf.tidy(() => tf.div(tf.sum(tf.square(theta)), 2) as tf.Scalar);
    for (let i = 0; i < 1500; i++) sampler.minimize(u);
    const { mean, variance } = meanVar(theta.dataSync());
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    sampler.dispose();
    theta.dispose();
  });

  it('rejects bad options', () => {
    expect(() => new SghmcSampler({ datasetSize: 0 })).toThrow(/datasetSize/);
    expect(() => new SghmcSampler({ datasetSize: 10, mdecay: 1 })).toThrow(/mdecay/);
  });
});

describe('SghmcPosterior', () => {
  it("precision 'fanIn' gives the prior N(0, 1/fanIn)", () => {
    const post = new SghmcPosterior(
      { weightShape: [4, 3, 5, 5], biasShape: [4], fanIn: 75, rng: new Rng(1) },
      { precision: 'fanIn' },
    );
    expect(post.precision).toEqual({ weight: 75, bias: 75 });
    expect(
      () =>
        new SghmcPosterior(
          { weightShape: [1], biasShape: null, fanIn: 1, rng: new Rng(1) },
          { precision: 0 },
        ),
    ).toThrow(/precision/);
  });

  it('resamples the prior precision from its Gamma conditional', () => {
    const post = new SghmcPosterior({ weightShape: [50, 20], biasShape: null, fanIn: 20, rng: new Rng(1) });
    const ss = tf.sum(tf.square(post.weight)).dataSync()[0];
    const a = 2;
    const b = 3;
    const draws: number[] = [];
    const rng = new Rng(4);
    for (let i = 0; i < 2000; i++) {
      post.resamplePrecision(a, b, rng);
      draws.push(post.precision.weight);
    }
    // Gamma(shape a + n/2, rate b + ss/2): mean shape/rate, variance shape/rate^2.
    const shape = a + 1000 / 2;
    const rate = b + ss / 2;
    const { mean } = meanVar(draws);
    expect(Math.abs(mean - shape / rate)).toBeLessThan(5 * Math.sqrt(shape / rate ** 2 / 2000));
    const nlp = post.negLogPrior().dataSync()[0];
    expect(nlp).toBeCloseTo((post.precision.weight / 2) * ss, 2);
  });

  it('collects an ensemble that predict iterates, one member per sample', () => {
    const det = new Sequential(new Linear(3, 4, { seed: 1 }), new ReLU(), new Linear(4, 2, { seed: 2 }));
    const { model } = dnnToBnn(det, { posterior: 'sghmc' });
    const x = tf.tensor2d(new Rng(3).normal(6), [2, 3]);
    const posts = model
      .modules()
      .map((m) => (m as { posterior?: SghmcPosterior }).posterior)
      .filter((p): p is SghmcPosterior => p instanceof SghmcPosterior);
    const expected: number[][][] = [];
    for (let k = 0; k < 3; k++) {
      for (const p of posts) p.weight.assign(tf.add(p.weight, 0.1 * (k + 1)));
      for (const p of posts) p.collect();
      expected.push(tf.softmax(model.apply(x)).arraySync() as number[][]);
    }
    expect(ensembleSize(model)).toBe(3);
    // The members are buffers of the module, so they save with it.
    expect(Object.keys(model.stateDict())).toContain('0.member2_weight');
    const { probs } = predict(model, x);
    expect(probs.shape).toEqual([3, 2, 2]);
    const got = probs.arraySync();
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < 2; i++)
        for (let c = 0; c < 2; c++) expect(got[k][i][c]).toBeCloseTo(expected[k][i][c], 5);
    }
    selectMember(model, 1);
    expect(tf.softmax(model.apply(x)).arraySync()[0][0]).toBeCloseTo(expected[1][0][0], 5);
    selectMember(model, null);
  });
});
