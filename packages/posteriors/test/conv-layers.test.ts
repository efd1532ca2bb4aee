import { Rng } from '@qbnn/core';
import {
  Conv1d,
  Conv3d,
  ConvTranspose1d,
  ConvTranspose2d,
  ConvTranspose3d,
  conv1d,
  conv3d,
  convTranspose1d,
  convTranspose2d,
  convTranspose3d,
  Sequential,
} from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BayesConv1d,
  BayesConv3d,
  BayesConvTranspose1d,
  BayesConvTranspose2d,
  BayesConvTranspose3d,
  type BayesLayer,
  dnnToBnn,
  type SamplingMode,
} from '../src/index.js';
import { setup } from './helpers.js';

beforeAll(setup);

interface Case {
  name: string;
  make: () => BayesLayer;
  x: number[];
  op: (x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) => tf.Tensor;
}

const cases: Case[] = [
  {
    name: 'BayesConv1d',
    make: () =>
      new BayesConv1d(2, 3, 3, { stride: 2, padding: 1, seed: 1, posteriorOptions: { rhoInit: -1 } }),
    x: [2, 2, 7],
    op: (x, w, b) => conv1d(x, w, b, { stride: 2, padding: 1 }),
  },
  {
    name: 'BayesConv3d',
    make: () =>
      new BayesConv3d(2, 2, [2, 2, 1], {
        stride: [1, 2, 1],
        padding: [1, 0, 0],
        seed: 4,
        posteriorOptions: { rhoInit: -1 },
      }),
    x: [2, 2, 3, 3, 2],
    op: (x, w, b) => conv3d(x, w, b, { stride: [1, 2, 1], padding: [1, 0, 0] }),
  },
  {
    name: 'BayesConvTranspose2d',
    make: () =>
      new BayesConvTranspose2d(2, 4, [2, 3], {
        stride: 2,
        padding: [0, 1],
        groups: 2,
        seed: 2,
        posteriorOptions: { rhoInit: -1 },
      }),
    x: [2, 2, 3, 3],
    op: (x, w, b) => convTranspose2d(x, w, b, { stride: 2, padding: [0, 1], groups: 2 }),
  },
  {
    name: 'BayesConvTranspose1d',
    make: () =>
      new BayesConvTranspose1d(3, 2, 4, {
        stride: 3,
        outputPadding: 1,
        seed: 3,
        posteriorOptions: { rhoInit: -1 },
      }),
    x: [2, 3, 4],
    op: (x, w, b) => convTranspose1d(x, w, b, { stride: 3, outputPadding: 1 }),
  },
  {
    name: 'BayesConvTranspose3d',
    make: () =>
      new BayesConvTranspose3d(2, 2, [2, 1, 2], {
        stride: [2, 1, 1],
        outputPadding: [1, 0, 0],
        seed: 5,
        posteriorOptions: { rhoInit: -1 },
      }),
    x: [2, 2, 2, 2, 2],
    op: (x, w, b) => convTranspose3d(x, w, b, { stride: [2, 1, 1], outputPadding: [1, 0, 0] }),
  },
];

describe('Bayesian Conv1d and transposed convolutions', () => {
  for (const c of cases) {
    it(`${c.name}: mean mode is the op with mu; weights, local and flipout have moments op(x, mu), op(x^2, sigma^2)`, () => {
      const layer = c.make();
      const x = tf.tensor(new Rng(9).normal(c.x.reduce((a, b) => a * b, 1)), c.x);
      const mu = layer.param('weight_mu');
      const sw = tf.softplus(layer.param('weight_rho'));
      const sb = tf.softplus(layer.param('bias_rho'));
      const mean = c.op(x, mu, layer.param('bias_mu')).dataSync();
      const variance = c.op(tf.square(x), tf.square(sw), tf.square(sb)).dataSync();
      layer.mode = 'mean';
      expect(Array.from(layer.apply(x).dataSync())).toEqual(Array.from(mean));
      const k = 300;
      for (const mode of ['weights', 'local', 'flipout'] as SamplingMode[]) {
        layer.mode = mode;
        const s1 = new Float64Array(mean.length);
        const s2 = new Float64Array(mean.length);
        for (let i = 0; i < k; i++) {
          const y = tf.tidy(() => layer.apply(x).dataSync());
          for (let j = 0; j < y.length; j++) {
            s1[j] += y[j];
            s2[j] += y[j] * y[j];
          }
        }
        for (let j = 0; j < mean.length; j++) {
          const m = s1[j] / k;
          const v = (s2[j] - k * m * m) / (k - 1);
          // standard errors of a Gaussian sample's mean and variance, 5 sigma
          expect(Math.abs(m - mean[j]), `${mode} mean ${j}`).toBeLessThan(5 * Math.sqrt(variance[j] / k));
          expect(Math.abs(v - variance[j]), `${mode} variance ${j}`).toBeLessThan(
            5 * variance[j] * Math.sqrt(2 / (k - 1)),
          );
        }
      }
      layer.dispose();
    });
  }

  it('dnnToBnn converts Conv1d, Conv3d, ConvTranspose1d/2d/3d with their hyper-parameters (MOPED keeps the mean)', () => {
    const det = new Sequential(
      new Conv1d(2, 4, 3, { padding: 1, seed: 1 }),
      new ConvTranspose1d(4, 2, 3, { stride: 2, seed: 2 }),
    );
    const x = tf.tensor(new Rng(2).normal(2 * 2 * 5), [2, 2, 5]);
    const ref = det.apply(x).dataSync().slice();
    const { model, converted } = dnnToBnn(det, { moped_enable: true, mode: 'mean' });
    expect(converted).toEqual(['0', '1']);
    expect(model.getModule('1')).toBeInstanceOf(BayesConvTranspose1d);
    expect((model.getModule('1') as BayesConvTranspose1d).params.stride).toBe(2);
    model
      .apply(x)
      .dataSync()
      .forEach((v, i) => {
        expect(v).toBeCloseTo(ref[i], 5);
      });
    const t = dnnToBnn(
      new Sequential(
        new ConvTranspose2d(2, 2, 3, { dilation: 2, seed: 3 }),
        new Conv3d(2, 2, 1),
        new ConvTranspose3d(2, 2, 2, { stride: [1, 2, 2], seed: 4 }),
      ),
    );
    expect((t.model.getModule('0') as BayesConvTranspose2d).params.dilation).toEqual([2, 2]);
    expect(t.model.getModule('1')).toBeInstanceOf(BayesConv3d);
    expect(t.model.getModule('2')).toBeInstanceOf(BayesConvTranspose3d);
    expect((t.model.getModule('2') as BayesConvTranspose3d).params.stride).toEqual([1, 2, 2]);
  });

  it('repr: kernel, stride and padding as PyTorch prints them, then posterior and mode', () => {
    const layers = [
      new BayesConv1d(2, 4, 3, { stride: 2 }),
      new BayesConv3d(2, 4, [1, 2, 3]),
      new BayesConvTranspose2d(2, 4, 3, { padding: 1 }),
      new BayesConvTranspose1d(2, 4, 3, { posterior: 'mcdropout' }),
    ];
    expect(layers.map((l) => l.extraRepr())).toEqual([
      '2, 4, kernel=3, stride=2, padding=0, posterior=gaussian, mode=local',
      '2, 4, kernel=[1,2,3], stride=[1,1,1], padding=[0,0,0], posterior=gaussian, mode=local',
      '2, 4, kernel=[3,3], stride=[1,1], padding=[1,1], posterior=gaussian, mode=local',
      '2, 4, kernel=3, stride=1, padding=0, posterior=mcdropout, mode=local',
    ]);
    for (const l of layers) l.dispose();
  });
});
