import { Rng } from '@qbnn/core';
import { Conv2d, Flatten, Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BayesConv2d,
  type BayesLinear,
  bayesLayers,
  dnnToBnn,
  type GaussianPrior,
  pathPattern,
} from '../src/index.js';
import { setup, sp } from './helpers.js';

beforeAll(setup);

function nested(): Sequential {
  return new Sequential({
    features: new Sequential(new Conv2d(1, 2, 3, { seed: 1 }), new ReLU(), new Conv2d(2, 2, 3, { seed: 2 })),
    head: new Sequential({
      flat: new Flatten(),
      fc: new Linear(8, 3, { seed: 3 }),
      out: new Linear(3, 2, { seed: 4 }),
    }),
  });
}

describe('pathPattern', () => {
  it('matches * within a segment and ** across segments', () => {
    const cases: [string, string, boolean][] = [
      ['features.0', 'features.0', true],
      ['features.*', 'features.2', true],
      ['features.*', 'features.2.x', false],
      ['**.fc', 'head.fc', true],
      ['**.fc', 'fc', true],
      ['**.fc', 'head.fcx', false],
      ['head.**', 'head.a.b', true],
      ['fc*', 'fc1', true],
      ['fc*', 'xfc1', false],
      ['a.**.c', 'a.c', true],
      ['a.**.c', 'a.b.b.c', true],
    ];
    for (const [p, path, want] of cases) expect([p, path, pathPattern(p)(path)]).toEqual([p, path, want]);
  });
});

describe('dnnToBnn over a module tree', () => {
  it('converts every supported layer anywhere in the tree, except glob-excluded paths', () => {
    const { model, converted } = dnnToBnn(nested(), { exclude: ['**.out'] });
    expect(converted).toEqual(['features.0', 'features.2', 'head.fc']);
    expect(model.getModule('features.2')).toBeInstanceOf(BayesConv2d);
    expect(model.getModule('head.out')).toBeInstanceOf(Linear);
    expect(bayesLayers(model).map(([, l]) => l.isInput)).toEqual([true, false, false]);
  });

  it('a bare layer as the model is refused: the root cannot be replaced in place', () => {
    // dnnToBnn(new Linear(2, 2)) returned the deterministic layer with converted [] (no error)
    for (const layer of [new Linear(2, 2), new Conv2d(1, 2, 3)])
      expect(() => dnnToBnn(layer, { posterior: 'gaussian' })).toThrow(
        /dnnToBnn: the model itself is a (Linear|Conv2d), which cannot be replaced in place; wrap it/,
      );
    // a tree without convertible layers stays a no-op
    expect(dnnToBnn(new Sequential(new ReLU())).converted).toEqual([]);
  });

  it('include restricts the conversion to matching paths', () => {
    const { converted } = dnnToBnn(nested(), { include: ['head.*'] });
    expect(converted).toEqual(['head.fc', 'head.out']);
  });

  it("accepts Bayesian-Torch's option names", () => {
    const det = nested();
    const w = det.getModule('head.fc').param('weight').dataSync().slice();
    const { model } = dnnToBnn(det, {
      prior_mu: 0.5,
      prior_sigma: 0.2,
      type: 'Flipout',
      moped_enable: true,
      moped_delta: 0.3,
    });
    const fc = model.getModule('head.fc') as BayesLinear;
    expect(fc.activeMode).toBe('flipout');
    expect((fc.prior as GaussianPrior).mean).toBe(0.5);
    expect((fc.prior as GaussianPrior).sigma).toBe(0.2);
    expect(fc.param('weight_mu').dataSync()).toEqual(w);
    const rho = fc.param('weight_rho').dataSync();
    w.forEach((v, i) => {
      expect(sp(rho[i])).toBeCloseTo(0.3 * Math.abs(v), 5);
    });
    const fresh = dnnToBnn(nested(), {
      posterior_mu_init: 2,
      posterior_rho_init: -4,
      type: 'Reparameterization',
    });
    const c = fresh.model.getModule('features.0') as BayesConv2d;
    expect(c.activeMode).toBe('weights');
    const mu = Array.from(c.param('weight_mu').dataSync());
    const mean = mu.reduce((a, b) => a + b, 0) / mu.length;
    expect(Math.abs(mean - 2)).toBeLessThan(0.1);
    const r = Array.from(c.param('weight_rho').dataSync());
    expect(Math.abs(r.reduce((a, b) => a + b, 0) / r.length + 4)).toBeLessThan(0.1);
  });

  it('rejects contradictory options', () => {
    expect(() => dnnToBnn(nested(), { prior_mu: 1, prior: { kind: 'gaussian', mean: 0, sigma: 1 } })).toThrow(
      /prior/,
    );
    expect(() => dnnToBnn(nested(), { type: 'Flipout', mode: 'local' })).toThrow(/mode or type/);
    expect(() => dnnToBnn(nested(), { type: 'Bogus' as never })).toThrow(/Reparameterization/);
  });

  it('keeps the mean output under MOPED for a nested model', () => {
    const det = nested();
    const x = tf.tensor4d(new Rng(5).normal(2 * 36), [2, 1, 6, 6]);
    const ref = det.apply(x).dataSync().slice();
    const { model } = dnnToBnn(det, { moped_enable: true, mode: 'mean' });
    model
      .apply(x)
      .dataSync()
      .forEach((v, i) => {
        expect(v).toBeCloseTo(ref[i], 5);
      });
  });
});
