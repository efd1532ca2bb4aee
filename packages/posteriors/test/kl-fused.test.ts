// The fused closed-form Gaussian KL (one kernel forward, one backward) against float64 maths
// written out here (value, and central finite differences for the gradient) and against the KL
// composed of tfjs ops (LocScalePosterior's generic path), on wasm and cpu.
import { initBackend, Rng, SQUARED_DISTANCE } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { GaussianPosterior } from '../src/gaussian.js';
import { fusedKlApplies, gaussianKlClosedFused } from '../src/kl.js';
import { LocScalePosterior } from '../src/locscale.js';
import { McDropoutPosterior } from '../src/mcdropout.js';
import { gaussianPrior } from '../src/priors.js';
import { sp } from './helpers.js';

/** KL(N(mu, softplus(rho)^2) || N(m0, s0^2)) of one element in float64. */
function kl64(mu: number, rho: number, m0: number, s0: number): number {
  const s = sp(rho);
  const logS = rho < -30 ? rho : Math.log(s);
  return Math.log(s0) - logS - 0.5 + ((mu - m0) ** 2 + s * s) / (2 * s0 * s0);
}

const RHOS = [-40, -21, -20, -19.5, -8, -5, -1, 0, 0.5, 3, 19, 25];

describe('fused Gaussian KL', () => {
  afterAll(() => initBackend({ backend: 'wasm' }));
  for (const backend of ['wasm', 'cpu'] as const)
    it(`equals float64 maths, value and gradient, on ${backend}`, async () => {
      await initBackend({ backend });
      const r = new Rng(4);
      const n = RHOS.length;
      const mu = Float32Array.from(r.normal(n), (x) => x * 0.3);
      const rho = Float32Array.from(RHOS);
      for (const [m0, s0] of [
        [0, 1],
        [0.2, 0.05],
      ]) {
        const prior = gaussianPrior(m0, s0);
        expect(fusedKlApplies(prior)).toBe(true);
        const muT = tf.tensor(mu);
        const rhoT = tf.tensor(rho);
        const value = gaussianKlClosedFused(muT, rhoT, prior)!.dataSync()[0];
        let want = 0;
        for (let i = 0; i < n; i++) want += kl64(mu[i], rho[i], m0, s0);
        expect(Math.abs(value - want)).toBeLessThan(1e-6 * Math.abs(want));
        const [gMu, gRho] = tf
          .grads((a: tf.Tensor, b: tf.Tensor) => tf.mul(3, gaussianKlClosedFused(a, b, prior)!))([muT, rhoT])
          .map((g) => g.dataSync());
        for (let i = 0; i < n; i++) {
          const h = 1e-5;
          const fdMu = (3 * (kl64(mu[i] + h, rho[i], m0, s0) - kl64(mu[i] - h, rho[i], m0, s0))) / (2 * h);
          const fdRho = (3 * (kl64(mu[i], rho[i] + h, m0, s0) - kl64(mu[i], rho[i] - h, m0, s0))) / (2 * h);
          expect(Math.abs(gMu[i] - fdMu)).toBeLessThan(1e-4 * (1 + Math.abs(fdMu)));
          expect(Math.abs(gRho[i] - fdRho), `rho ${rho[i]}`).toBeLessThan(1e-4 * (1 + Math.abs(fdRho)));
        }
        tf.dispose([muT, rhoT]);
      }
    });

  it("GaussianPosterior's KL and gradient equal the KL composed of tfjs ops", async () => {
    await initBackend({ backend: 'wasm' });
    const post = new GaussianPosterior({
      weightShape: [30, 20],
      biasShape: [30],
      fanIn: 20,
      rng: new Rng(8),
      name: 'klf',
    });
    const vars = post.params.flatMap((p) => [p.mu, p.rho]);
    const prior = { weight: gaussianPrior(0, 0.1), bias: gaussianPrior(0.1, 1) };
    const fused = tf.variableGrads(() => post.getKl(prior), vars);
    const composed = tf.variableGrads(() => LocScalePosterior.prototype.getKl.call(post, prior), vars);
    const a = fused.value.dataSync()[0];
    const b = composed.value.dataSync()[0];
    expect(Math.abs(a - b)).toBeLessThan(1e-5 * Math.abs(b));
    for (const v of vars) {
      const g1 = fused.grads[v.name].dataSync();
      const g2 = composed.grads[v.name].dataSync();
      for (let i = 0; i < g1.length; i++)
        expect(Math.abs(g1[i] - g2[i])).toBeLessThan(1e-4 * (1 + Math.abs(g2[i])));
    }
    // a tensor prior takes the composed path
    const tensorPrior = gaussianPrior(tf.scalar(0), tf.scalar(0.1));
    expect(fusedKlApplies(tensorPrior)).toBe(false);
    expect(post.getKl(tensorPrior).dataSync()[0]).toBeCloseTo(
      LocScalePosterior.prototype.getKl.call(post, gaussianPrior(0, 0.1)).dataSync()[0],
      1,
    );
    post.dispose();
  });

  for (const backend of ['wasm', 'cpu'] as const)
    it(`MC Dropout's KL (Gal's L2 form) with a number prior is fused and equals float64 maths and the composed KL, on ${backend}`, async () => {
      await initBackend({ backend });
      const post = new McDropoutPosterior(
        { weightShape: [7, 5], biasShape: [7], fanIn: 5, rng: new Rng(11), name: 'mcdkl' },
        { p: 0.3 },
      );
      const vars = [post.weight, post.bias!];
      const m0 = 0.05;
      const s0 = 0.2;
      const prior = { weight: gaussianPrior(m0, s0), bias: gaussianPrior(-0.1, 1) };
      const info = await tf.profile(() => post.getKl(prior));
      expect(info.kernels.map((k) => k.name)).toContain(SQUARED_DISTANCE);
      const fused = tf.variableGrads(() => post.getKl(prior), vars);
      // float64: sum(0.7 (w - m0)^2) / (2 s0^2) + sum((b + 0.1)^2) / 2
      const w = post.weight.dataSync();
      const b = post.bias!.dataSync();
      let want = 0;
      for (const v of w) want += (0.7 * (v - m0) ** 2) / (2 * s0 * s0);
      for (const v of b) want += (v + 0.1) ** 2 / 2;
      expect(Math.abs(fused.value.dataSync()[0] - want)).toBeLessThan(1e-6 * want);
      const gw = fused.grads[post.weight.name].dataSync();
      for (let i = 0; i < w.length; i++)
        expect(Math.abs(gw[i] - (0.7 * (w[i] - m0)) / (s0 * s0))).toBeLessThan(1e-5 * (1 + Math.abs(gw[i])));
      // tensor priors take the composed path: the same KL and gradients up to float32 rounding
      const tensorPrior = {
        weight: gaussianPrior(tf.scalar(m0), tf.scalar(s0)),
        bias: gaussianPrior(tf.scalar(-0.1), tf.scalar(1)),
      };
      const composed = tf.variableGrads(() => post.getKl(tensorPrior), vars);
      expect(Math.abs(composed.value.dataSync()[0] - want)).toBeLessThan(1e-5 * want);
      for (const v of vars) {
        const g1 = fused.grads[v.name].dataSync();
        const g2 = composed.grads[v.name].dataSync();
        for (let i = 0; i < g1.length; i++)
          expect(Math.abs(g1[i] - g2[i])).toBeLessThan(1e-5 * (1 + Math.abs(g2[i])));
      }
      post.dispose();
    });
});
