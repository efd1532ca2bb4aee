// The native fused Gaussian KL against @qbnn/core's float64 JS reference (gaussianKlSum,
// gaussianKlGrad): float32 element maths, so within 1e-6 of the sum and 4e-6 relative per
// gradient element (of the size of its terms); identical on 1 and 2 threads; registered for tfjs-wasm.
import { GAUSSIAN_KL, GAUSSIAN_KL_GRAD, gaussianKlGrad, gaussianKlSum, initBackend, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';
import { addon } from '../src/binding.js';
import { nativeAvailable, setThreads } from '../src/index.js';

const d = nativeAvailable && addon!.fp32.info().avx512 ? describe : describe.skip;

function inputs(n: number): [Float32Array, Float32Array] {
  const r = new Rng(n);
  const mu = r.normal(n).map((x) => x * 0.2);
  // rho over the whole range: the linear tail, softplus's exp and log1p parts, the identity part
  const rho = r.uniform(n).map((u) => -45 + 70 * u);
  return [mu, rho];
}

d('native fused Gaussian KL', () => {
  // read lazily: the body is collected even when the suite is skipped (no addon)
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => setThreads(2));

  test('equals the float64 reference within float32 rounding, on any thread count', () => {
    for (const n of [1, 5, 4095, 4097, 100_003])
      for (const [m0, s0] of [
        [0, 1],
        [0.1, 0.03],
      ]) {
        const [mu, rho] = inputs(n);
        const a = { priorMean: m0, priorSigma: s0 };
        const prior = Float64Array.of(m0, s0);
        const results = [1, 2].map((threads) => {
          setThreads(threads);
          const dMu = new Float32Array(n);
          const dRho = new Float32Array(n);
          fp32.gaussianKlGrad(mu, rho, prior, 0.5, dMu, dRho);
          return { sum: fp32.gaussianKl(mu, rho, prior), dMu, dRho };
        });
        expect(results[1].sum).toBe(results[0].sum);
        expect(results[1].dMu).toEqual(results[0].dMu);
        expect(results[1].dRho).toEqual(results[0].dRho);
        const want = gaussianKlSum(mu, rho, a);
        expect(Math.abs(results[0].sum - want)).toBeLessThan(1e-6 * Math.abs(want));
        const wMu = new Float32Array(n);
        const wRho = new Float32Array(n);
        gaussianKlGrad(mu, rho, 0.5, wMu, wRho, a);
        let worst = 0;
        let at = '';
        for (let i = 0; i < n; i++) {
          // d/drho is a difference of two terms: float32 rounding is relative to their size
          const r = rho[i];
          const s = r > 0 ? r + Math.log1p(Math.exp(-r)) : Math.log1p(Math.exp(r));
          const sig = 1 / (1 + Math.exp(-r));
          const size = 0.5 * ((sig * s) / (s0 * s0) + (r < -20 ? 1 : sig / s));
          const eMu = Math.abs(results[0].dMu[i] - wMu[i]) / (4e-6 * (1e-3 + Math.abs(wMu[i])));
          const eRho = Math.abs(results[0].dRho[i] - wRho[i]) / (4e-6 * (1e-6 + size));
          if (Math.max(eMu, eRho) > worst) [worst, at] = [Math.max(eMu, eRho), `n=${n} rho=${r}`];
        }
        expect(worst, at).toBeLessThanOrEqual(1);
      }
  });

  test('serves the tfjs-wasm kernels', async () => {
    await initBackend({ backend: 'wasm' });
    const [mu, rho] = inputs(1000);
    const attrs = { priorMean: 0, priorSigma: 0.5 };
    const kl = tf
      .engine()
      .runKernel(GAUSSIAN_KL, { mu: tf.tensor(mu), rho: tf.tensor(rho) }, attrs) as tf.Tensor;
    expect(kl.dataSync()[0]).toBe(Math.fround(fp32.gaussianKl(mu, rho, Float64Array.of(0, 0.5))));
    const g = tf
      .engine()
      .runKernel(
        GAUSSIAN_KL_GRAD,
        { mu: tf.tensor(mu), rho: tf.tensor(rho), dy: tf.scalar(2) },
        attrs,
      ) as tf.Tensor[];
    const dMu = new Float32Array(1000);
    const dRho = new Float32Array(1000);
    fp32.gaussianKlGrad(mu, rho, Float64Array.of(0, 0.5), 2, dMu, dRho);
    expect(g[0].dataSync()).toEqual(dMu);
    expect(g[1].dataSync()).toEqual(dRho);
  });

  test('refuses bad arguments', () => {
    const x = new Float32Array(4);
    expect(() => fp32.gaussianKl(x, new Float32Array(3), Float64Array.of(0, 1))).toThrow(
      /rho holds 3 floats/,
    );
    expect(() => fp32.gaussianKl(x, x, Float64Array.of(0, 0))).toThrow(/sigma finite and > 0/);
    expect(() => fp32.gaussianKl(x, x, new Float64Array(3))).toThrow(TypeError);
    expect(() => fp32.gaussianKlGrad(x, x, Float64Array.of(0, 1), Number.NaN, x, x)).toThrow(/dy must be/);
  });
});
