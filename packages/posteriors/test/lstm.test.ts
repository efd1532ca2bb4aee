import { Rng } from '@qbnn/core';
import { Linear, LSTM, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BayesLinear, BayesLSTM, bayesLayers, dnnToBnn, modelKl } from '../src/index.js';
import { setup, sp } from './helpers.js';

beforeAll(setup);

describe('BayesLSTM', () => {
  it('dnnToBnn converts an nn LSTM (MOPED): gates ih/hh carry its weights, the mean output is unchanged', () => {
    const det = new Sequential({
      lstm: new LSTM(3, 5, { seed: 4, batchFirst: true, output: 'last' }),
      fc: new Linear(5, 1),
    });
    const wih = det.getModule('lstm').param('weight_ih_l0').dataSync().slice();
    const bhh = det.getModule('lstm').param('bias_hh_l0').dataSync().slice();
    const x = tf.tensor3d(new Rng(2).normal(4 * 6 * 3), [4, 6, 3]);
    const ref = det.apply(x).dataSync().slice();
    const { model, converted } = dnnToBnn(det, { moped_enable: true, moped_delta: 0.2, mode: 'mean' });
    expect(converted).toEqual(['lstm', 'fc']);
    const lstm = model.getModule('lstm') as BayesLSTM;
    expect(lstm).toBeInstanceOf(BayesLSTM);
    expect(lstm.output).toBe('last');
    expect(bayesLayers(model).map(([p]) => p)).toEqual(['lstm.ih', 'lstm.hh', 'fc']);
    expect(model.getModule('lstm.ih').param('weight_mu').dataSync()).toEqual(wih);
    expect(model.getModule('lstm.hh').param('bias_mu').dataSync()).toEqual(bhh);
    const rho = model.getModule('lstm.ih').param('weight_rho').dataSync();
    expect(sp(rho[0])).toBeCloseTo(0.2 * Math.abs(wih[0]), 6);
    const y = model.apply(x).dataSync();
    y.forEach((v, i) => {
      expect(v).toBeCloseTo(ref[i], 5);
    });
    // the KL of the model is the sum over the three Bayesian linear layers
    const parts = bayesLayers(model).reduce((s, [, l]) => s + l.kl().dataSync()[0], 0);
    expect(modelKl(model).dataSync()[0]).toBeCloseTo(parts, 2);
  });

  it('its gates draw independent noise (different seeds) and fresh weights at every step', () => {
    const l = new BayesLSTM(2, 3, { seed: 1, mode: 'weights', posteriorOptions: { rhoInit: 0 } });
    const ih = l.child<BayesLinear>('ih');
    const hh = l.child<BayesLinear>('hh');
    const a = ih.sampleWeights().weight.dataSync();
    const b = hh.sampleWeights().weight.dataSync();
    expect(Array.from(a.slice(0, 6))).not.toEqual(Array.from(b.slice(0, 6)));
    // ih runs once per time step, so each step gets its own posterior draw (Bayesian-Torch's semantics)
    const calls: number[] = [];
    ih.registerForwardHook(() => calls.push(1));
    l.apply(tf.ones([1, 4, 2]));
    expect(calls).toHaveLength(4);
  });

  it('rejects bad shapes and sizes', () => {
    expect(() => new BayesLSTM(0, 3)).toThrow(/inputSize/);
    expect(() => new BayesLSTM(2, 3).apply(tf.ones([1, 4, 3]))).toThrow(/expected input \[N, T, 2\]/);
    expect(() => dnnToBnn(new Sequential(new LSTM(2, 3, { numLayers: 2 })))).toThrow(/2 layers/);
  });
});
