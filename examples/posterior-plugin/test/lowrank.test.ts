import { initBackend, Rng } from '@qbnn/core';
import { ReLU, Sequential } from '@qbnn/nn';
import { BayesLinear, gaussianPrior, hasPosterior, modelKl, unregisterPosterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await initBackend({ log: () => {} });
});

const sp = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** log det of a symmetric positive-definite matrix by Cholesky, float64. */
function logDetChol(a: number[][]): number {
  const n = a.length;
  const l = a.map((r) => r.map(() => 0));
  let ld = 0;
  for (let j = 0; j < n; j++) {
    let d = a[j][j];
    for (let k = 0; k < j; k++) d -= l[j][k] ** 2;
    l[j][j] = Math.sqrt(d);
    ld += 2 * Math.log(l[j][j]);
    for (let i = j + 1; i < n; i++) {
      let s = a[i][j];
      for (let k = 0; k < j; k++) s -= l[i][k] * l[j][k];
      l[i][j] = s / l[j][j];
    }
  }
  return ld;
}

describe('a third-party posterior registered from outside', () => {
  it('is unknown before the plugin is imported, registered after', async () => {
    unregisterPosterior('lowrank');
    expect(() => new BayesLinear(2, 2, { posterior: 'lowrank' })).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN' }),
    );
    const mod = await import('../src/index.js');
    mod.registerLowRank();
    expect(hasPosterior('lowrank')).toBe(true);
  });

  it('BayesLinear owns its parameters; closed KL equals a dense float64 reference', async () => {
    await import('../src/index.js');
    const l = new BayesLinear(4, 3, {
      posterior: 'lowrank',
      posteriorOptions: { rhoInit: -1, vInit: 0.3 },
      seed: 2,
    });
    expect(l.namedParameters().map(([n]) => n)).toEqual([
      'weight_mu',
      'weight_rho',
      'weight_v',
      'bias_mu',
      'bias_rho',
      'bias_v',
    ]);
    const m0 = 0.1;
    const s0 = 0.7;
    l.prior = gaussianPrior(m0, s0);
    let ref = 0;
    for (const role of ['weight', 'bias']) {
      const mu = Array.from(l.param(`${role}_mu`).dataSync());
      const sig = Array.from(l.param(`${role}_rho`).dataSync(), sp);
      const v = Array.from(l.param(`${role}_v`).dataSync());
      const n = mu.length;
      const cov = mu.map((_, i) => mu.map((__, j) => v[i] * v[j] + (i === j ? sig[i] ** 2 : 0)));
      let tr = 0;
      let d2 = 0;
      for (let i = 0; i < n; i++) {
        tr += cov[i][i];
        d2 += (mu[i] - m0) ** 2;
      }
      ref += 0.5 * (tr / s0 ** 2 + d2 / s0 ** 2 - n + n * Math.log(s0 ** 2) - logDetChol(cov));
    }
    const kl = l.kl().dataSync()[0];
    expect(Math.abs(kl - ref)).toBeLessThan(1e-4 * Math.abs(ref));
    // direct agrees within 5 standard errors over 300 estimates
    const est: number[] = [];
    const rng = new Rng(3);
    for (let k = 0; k < 300; k++) est.push(l.kl({ method: 'direct', nMcIter: 2, rng }).dataSync()[0]);
    const mean = est.reduce((a, b) => a + b, 0) / est.length;
    const sd = Math.sqrt(est.reduce((a, b) => a + (b - mean) ** 2, 0) / (est.length - 1));
    expect(Math.abs(mean - kl)).toBeLessThan((5 * sd) / Math.sqrt(est.length));
    expect(() => l.kl({ method: 'repar' })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
  });

  it('samples have covariance diag(sigma^2) + v v^T (5 standard errors per entry)', async () => {
    await import('../src/index.js');
    const l = new BayesLinear(2, 2, {
      posterior: 'lowrank',
      posteriorOptions: { rhoInit: -1, vInit: 0.4 },
      seed: 4,
      bias: false,
    });
    const mu = l.param('weight_mu').dataSync();
    const sig = Array.from(l.param('weight_rho').dataSync(), sp);
    const v = l.param('weight_v').dataSync();
    const k = 8000;
    const acc = Array.from({ length: 4 }, () => new Float64Array(4));
    for (let s = 0; s < k; s++) {
      const w = tf.tidy(() => l.sampleWeights().weight.dataSync());
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) acc[i][j] += (w[i] - mu[i]) * (w[j] - mu[j]);
    }
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        const c = v[i] * v[j] + (i === j ? sig[i] ** 2 : 0);
        const cii = v[i] ** 2 + sig[i] ** 2;
        const cjj = v[j] ** 2 + sig[j] ** 2;
        // Var of the product of two jointly Gaussian centred variables: c_ii c_jj + c_ij^2.
        const se = Math.sqrt((cii * cjj + c * c) / k);
        expect(Math.abs(acc[i][j] / k - c)).toBeLessThan(5 * se);
      }
    }
  });

  it('trains inside a model with the ELBO (the factor v receives gradients)', async () => {
    await import('../src/index.js');
    const model = new Sequential(
      new BayesLinear(2, 8, { posterior: 'lowrank', seed: 1, isInput: true }),
      new ReLU(),
      new BayesLinear(8, 1, { posterior: 'lowrank', seed: 2 }),
    );
    const x = tf.tensor2d(new Rng(5).normal(64), [32, 2]);
    const y = tf.sum(x, 1, true);
    const opt = tf.train.adam(0.05);
    const loss = () =>
      tf.tidy(
        () => tf.add(tf.mean(tf.square(tf.sub(model.apply(x), y))), tf.div(modelKl(model), 1e4)) as tf.Scalar,
      );
    const before = loss().dataSync()[0];
    const v0 = model.at<BayesLinear>(0).param('weight_v').dataSync().slice();
    for (let i = 0; i < 80; i++) opt.minimize(loss);
    expect(loss().dataSync()[0]).toBeLessThan(before / 4);
    expect(model.at<BayesLinear>(0).param('weight_v').dataSync()).not.toEqual(v0);
  });
});
