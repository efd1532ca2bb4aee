import { Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { GaussianPosterior } from '../src/gaussian.js';
import { logSoftplus, softplus, softplusInverse } from '../src/math.js';
import { gaussianPrior } from '../src/priors.js';
import { RadialPosterior, radialNoiseLogDensityMean } from '../src/radial.js';
import { meanVar, setup, sp } from './helpers.js';

beforeAll(setup);

const LOG_2PI = Math.log(2 * Math.PI);

describe('softplus', () => {
  it('matches float64 and never overflows, value and gradient', () => {
    const xs = [-100, -30, -20, -5, -1e-3, 0, 1e-3, 5, 19.9, 20.1, 30, 100];
    const x = tf.tensor1d(xs);
    const v = softplus(x).dataSync();
    const g = tf
      .grad((t: tf.Tensor) => tf.sum(softplus(t)))(x)
      .dataSync();
    const lv = logSoftplus(x).dataSync();
    xs.forEach((xi, i) => {
      expect(v[i]).toBeCloseTo(sp(xi), 5);
      if (xi > -30) expect(Math.abs(v[i] - sp(xi)) / sp(xi)).toBeLessThan(1e-6);
      expect(g[i]).toBeCloseTo(1 / (1 + Math.exp(-xi)), 6);
      const ref = Math.log(sp(xi));
      expect(Math.abs(lv[i] - ref)).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref)));
    });
    expect(softplusInverse(sp(-4))).toBeCloseTo(-4, 10);
    expect(softplusInverse(sp(3))).toBeCloseTo(3, 10);
  });
});

interface Case {
  mu: Float64Array;
  rho: Float64Array;
  post: GaussianPosterior;
}

function gaussianCase(n: number, seed: number, bias = false): Case {
  const post = new GaussianPosterior(
    { weightShape: [n], biasShape: bias ? [3] : null, fanIn: 4, rng: new Rng(seed) },
    { muInit: { mean: 0.3, std: 0.5 }, rhoInit: { mean: -1, std: 0.5 } },
  );
  const [w] = post.params;
  return { post, mu: Float64Array.from(w.mu.dataSync()), rho: Float64Array.from(w.rho.dataSync()) };
}

/** KL(N(mu, sigma^2) || N(m0, s0^2)) summed, float64. */
function klRef(mu: Float64Array, rho: Float64Array, m0: number, s0: number): number {
  let s = 0;
  for (let i = 0; i < mu.length; i++) {
    const sg = sp(rho[i]);
    s += Math.log(s0 / sg) + (sg * sg + (mu[i] - m0) ** 2) / (2 * s0 * s0) - 0.5;
  }
  return s;
}

describe('Gaussian KL', () => {
  const prior = gaussianPrior(0.1, 0.8);

  it('closed form equals a float64 reference', () => {
    const c = gaussianCase(200, 1);
    const kl = c.post.getKl(prior).dataSync()[0];
    const ref = klRef(c.mu, c.rho, 0.1, 0.8);
    expect(Math.abs(kl - ref)).toBeLessThan(1e-5 * Math.abs(ref));
  });

  it('repar at M = 1000 agrees with closed within 5 exact standard deviations', () => {
    // repar - closed = -sum(2 d sigma t1 + sigma^2 (t2 - 1)) / (2 s0^2) with d = mu - mu0,
    // Var t1 = 1/M, Var t2 = 2/M, Cov = 0: Var = sum(d^2 sigma^2 + sigma^4 / 2) / (M s0^4).
    const c = gaussianCase(300, 2);
    const m = 1000;
    const closed = c.post.getKl(prior).dataSync()[0];
    let v = 0;
    for (let i = 0; i < c.mu.length; i++) {
      const sg = sp(c.rho[i]);
      v += ((c.mu[i] - 0.1) ** 2 * sg * sg + sg ** 4 / 2) / (m * 0.8 ** 4);
    }
    const sd = Math.sqrt(v);
    for (let seed = 0; seed < 5; seed++) {
      const est = c.post.getKl(prior, { method: 'repar', nMcIter: m, rng: new Rng(seed) }).dataSync()[0];
      expect(Math.abs(est - closed)).toBeLessThan(5 * sd + 1e-5 * Math.abs(closed));
    }
  });

  it('direct and repar (M = 4) are unbiased: mean of 400 estimates within 5 standard errors of closed', () => {
    const c = gaussianCase(40, 3, true);
    const closed = c.post.getKl(prior).dataSync()[0];
    for (const method of ['direct', 'repar'] as const) {
      const est: number[] = [];
      const rng = new Rng(99);
      for (let k = 0; k < 400; k++) est.push(c.post.getKl(prior, { method, nMcIter: 4, rng }).dataSync()[0]);
      const { mean, variance } = meanVar(est);
      expect(Math.abs(mean - closed)).toBeLessThan(5 * Math.sqrt(variance / est.length));
      expect(variance).toBeGreaterThan(0);
    }
  });

  it("repar's gradient w.r.t. mu and rho is unbiased (per element, 5 standard errors)", () => {
    const c = gaussianCase(30, 4);
    const [w] = c.post.params;
    const s0 = 0.8;
    const m = 3;
    const k = 300;
    const gradOf = (f: () => tf.Scalar) => {
      const { grads, value } = tf.variableGrads(f, [w.mu, w.rho]);
      const out = [grads[w.mu.name].dataSync().slice(), grads[w.rho.name].dataSync().slice()];
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const [gMu, gRho] = gradOf(() => c.post.getKl(prior));
    const sumMu = new Float64Array(c.mu.length);
    const sumRho = new Float64Array(c.mu.length);
    const rng = new Rng(5);
    for (let j = 0; j < k; j++) {
      const [a, b] = gradOf(() => c.post.getKl(prior, { method: 'repar', nMcIter: m, rng }));
      for (let i = 0; i < c.mu.length; i++) {
        sumMu[i] += a[i];
        sumRho[i] += b[i];
      }
    }
    for (let i = 0; i < c.mu.length; i++) {
      const sg = sp(c.rho[i]);
      const dsg = 1 / (1 + Math.exp(-c.rho[i]));
      const d = c.mu[i] - 0.1;
      // Closed-form gradients (float64) and the repar estimator's exact per-draw deviations:
      // d/dmu: -sigma t1 / s0^2; d/drho: -sigma' (d t1 + sigma (t2 - 1)) / s0^2.
      expect(gMu[i]).toBeCloseTo(d / (s0 * s0), 4);
      expect(gRho[i]).toBeCloseTo(dsg * (-1 / sg + sg / (s0 * s0)), 3);
      const seMu = sg / (s0 * s0) / Math.sqrt(m * k);
      const seRho = (dsg * Math.sqrt((d * d) / m + (2 * sg * sg) / m)) / (s0 * s0) / Math.sqrt(k);
      expect(Math.abs(sumMu[i] / k - gMu[i])).toBeLessThan(5 * seMu + 1e-5);
      expect(Math.abs(sumRho[i] / k - gRho[i])).toBeLessThan(5 * seRho + 1e-5);
    }
  });

  it('peak tfjs memory of repar at M = 1000 is within 5% of M = 1; direct grows with M', async () => {
    const c = gaussianCase(20000, 6);
    const [w] = c.post.params;
    const peak = async (method: 'repar' | 'direct', m: number) => {
      const info = await tf.profile(() => {
        const { grads, value } = tf.variableGrads(
          () => c.post.getKl(prior, { method, nMcIter: m, rng: new Rng(1) }),
          [w.mu, w.rho],
        );
        tf.dispose([value, ...Object.values(grads)]);
      });
      return info.peakBytes;
    };
    const r1 = await peak('repar', 1);
    const r1000 = await peak('repar', 1000);
    expect(Math.abs(r1000 - r1) / r1).toBeLessThan(0.05);
    const d1 = await peak('direct', 1);
    const d20 = await peak('direct', 20);
    expect(d20).toBeGreaterThan(5 * d1);
  });

  it('rejects a bad nMcIter', () => {
    const c = gaussianCase(5, 1);
    expect(() => c.post.getKl(prior, { method: 'repar', nMcIter: 0 })).toThrow(/nMcIter/);
  });
});

describe('Radial KL', () => {
  it('the noise entropy constant reduces to the standard normal at n = 1', () => {
    expect(radialNoiseLogDensityMean(1)).toBeCloseTo(-LOG_2PI / 2 - 0.5, 12);
  });

  it('the noise entropy constant at n = 2 and 3 matches numerical integration', () => {
    // h(xi) = -E log p(xi); in polar form E log p = int_0^inf 2 phi(r) log(2 phi(r) / A r^(n-1)) dr,
    // A = 2 pi (n = 2), 4 pi (n = 3). Midpoint rule on [0, 12] with 2e6 steps (float64).
    for (const [n, area] of [
      [2, 2 * Math.PI],
      [3, 4 * Math.PI],
    ]) {
      const steps = 2_000_000;
      const h = 12 / steps;
      let s = 0;
      for (let i = 0; i < steps; i++) {
        const r = (i + 0.5) * h;
        const f = (2 * Math.exp(-0.5 * r * r)) / Math.sqrt(2 * Math.PI);
        s += f * Math.log(f / (area * r ** (n - 1))) * h;
      }
      expect(radialNoiseLogDensityMean(n)).toBeCloseTo(s, 5);
    }
  });

  it('noise has E[xi_j^2] = 1/n and ||xi|| = |r| (half-normal)', () => {
    const post = new RadialPosterior({ weightShape: [10, 5], biasShape: null, fanIn: 5, rng: new Rng(1) });
    const [w] = post.params;
    const sigma = softplus(w.rho);
    const norms: number[] = [];
    const sq = new Float64Array(50);
    for (let k = 0; k < 4000; k++) {
      const xi = tf.tidy(() => tf.div(tf.sub(post.sample().weight, w.mu), sigma));
      const v = xi.dataSync();
      let s = 0;
      for (let i = 0; i < 50; i++) {
        s += v[i] * v[i];
        sq[i] += v[i] * v[i];
      }
      norms.push(Math.sqrt(s));
      xi.dispose();
    }
    // |r| half-normal: E = sqrt(2/pi), Var = 1 - 2/pi.
    const { mean } = meanVar(norms);
    expect(Math.abs(mean - Math.sqrt(2 / Math.PI))).toBeLessThan(5 * Math.sqrt((1 - 2 / Math.PI) / 4000));
    // E[sum_j xi_j^2] = 1, each E[xi_j^2] = 1/50.
    const tot = sq.reduce((a, b) => a + b, 0) / 4000;
    expect(Math.abs(tot - 1)).toBeLessThan(5 * Math.sqrt(2 / 4000));
  });

  it('closed cross term agrees with direct and repar Monte Carlo within 5 standard errors', () => {
    const post = new RadialPosterior(
      { weightShape: [8, 4], biasShape: [8], fanIn: 4, rng: new Rng(2) },
      { muInit: { mean: 0.2, std: 0.6 }, rhoInit: { mean: 0, std: 0.3 } },
    );
    const prior = gaussianPrior(0, 0.5);
    const closed = post.getKl(prior).dataSync()[0];
    for (const method of ['direct', 'repar'] as const) {
      const est: number[] = [];
      const rng = new Rng(3);
      for (let k = 0; k < 300; k++) est.push(post.getKl(prior, { method, nMcIter: 3, rng }).dataSync()[0]);
      const { mean, variance } = meanVar(est);
      expect(Math.abs(mean - closed)).toBeLessThan(5 * Math.sqrt(variance / est.length));
    }
  });

  it('repar memory is flat in M', async () => {
    const post = new RadialPosterior({ weightShape: [100, 50], biasShape: null, fanIn: 50, rng: new Rng(2) });
    const prior = gaussianPrior();
    const [w] = post.params;
    const peak = async (m: number) =>
      (
        await tf.profile(() => {
          const { grads, value } = tf.variableGrads(
            () => post.getKl(prior, { method: 'repar', nMcIter: m }),
            [w.mu, w.rho],
          );
          tf.dispose([value, ...Object.values(grads)]);
        })
      ).peakBytes;
    const a = await peak(1);
    const b = await peak(100);
    expect(Math.abs(b - a) / a).toBeLessThan(0.05);
  });
});
