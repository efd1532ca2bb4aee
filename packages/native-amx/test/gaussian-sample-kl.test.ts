// The native Gaussian sample fused with its KL ('QbnnGaussianSampleKl' and its gradient) against
// float64 maths written out here: the sample and the gradients within float32 rounding of their
// terms, the KL equal to the separate fused KL kernel's (same sigma, same sums) and within 1e-6 of
// @qbnn/core's float64 gaussianKlSum; identical on 1 and 2 threads; AVX-512 and portable paths; the
// tfjs op's gradient (both outputs, and each alone) against float64 central finite differences.
import {
  GAUSSIAN_SAMPLE_KL,
  GAUSSIAN_SAMPLE_KL_GRAD,
  gaussianKlSum,
  gaussianSampleKl,
  gaussianSampleKlFused,
  gaussianSampleKlMany,
  initBackend,
  QbnnError,
  Rng,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';
import { addon } from '../src/binding.js';
import { enableNativeFloatKernels, nativeAvailable, setThreads } from '../src/index.js';
import { sameBits } from './helpers.js';

const d = nativeAvailable && addon!.fp32.info().avx512 ? describe : describe.skip;

const softplus64 = (r: number) => (r > 0 ? r + Math.log1p(Math.exp(-r)) : Math.log1p(Math.exp(r)));
const sigmoid64 = (r: number) => 1 / (1 + Math.exp(-r));

/** Per element in float64: the sample, the KL term and their derivatives in mu and rho. */
function element(mu: number, rho: number, eps: number, m0: number, s0: number) {
  const s = softplus64(rho);
  const sig = sigmoid64(rho);
  const linear = rho < -20; // log softplus(rho) = rho there (core's LOG_SOFTPLUS_LINEAR_BELOW)
  const logS = linear ? rho : Math.log(s);
  return {
    w: mu + s * eps,
    kl: Math.log(s0) - logS - 0.5 + ((mu - m0) ** 2 + s * s) / (2 * s0 * s0),
    dwRho: eps * sig,
    dklMu: (mu - m0) / (s0 * s0),
    dklRho: (sig * s) / (s0 * s0) - (linear ? 1 : sig / s),
    dklRhoSize: (sig * s) / (s0 * s0) + (linear ? 1 : sig / s),
  };
}

function inputs(n: number): Float32Array[] {
  const r = new Rng(n + 17);
  const mu = r.normal(n).map((x) => x * 0.2);
  // rho over the whole range: the linear tail, softplus's exp and log1p parts, the identity part
  const rho = r.uniform(n).map((u) => -45 + 70 * u);
  return [mu, rho, r.normal(n), r.normal(n)];
}

d('native Gaussian sample fused with its KL', () => {
  // read lazily: the body is collected even when the suite is skipped (no addon)
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => {
    fp32.setPortable(false);
    setThreads(2);
  });

  for (const portable of [false, true])
    test(`equals float64 maths within float32 rounding, on any thread count (${portable ? 'portable' : 'AVX-512'})`, () => {
      fp32.setPortable(portable);
      for (const n of [1, 5, 47, 4095, 4097, 100_003])
        for (const [m0, s0] of [
          [0, 1],
          [0.1, 0.03],
        ]) {
          const [mu, rho, eps, dw] = inputs(n);
          const prior = Float64Array.of(m0, s0);
          const dkl = 0.75;
          const runs = [1, 2].map((threads) => {
            setThreads(threads);
            const w = new Float32Array(n);
            const dMu = new Float32Array(n);
            const dRho = new Float32Array(n);
            const kl = fp32.gaussianSampleKl(mu, rho, prior, eps, w);
            fp32.gaussianSampleKlGrad(mu, rho, prior, eps, dw, dkl, dMu, dRho);
            return { kl, w, dMu, dRho };
          });
          expect(runs[1].kl).toBe(runs[0].kl);
          for (const k of ['w', 'dMu', 'dRho'] as const)
            expect(sameBits(runs[1][k], runs[0][k]), k).toBe(true);
          const { kl, w, dMu, dRho } = runs[0];
          // the same sigma and sums as the separate fused KL kernel
          expect(kl).toBe(fp32.gaussianKl(mu, rho, prior));
          const want = gaussianKlSum(mu, rho, { priorMean: m0, priorSigma: s0 });
          expect(Math.abs(kl - want)).toBeLessThan(1e-6 * Math.abs(want));
          let worst = 0;
          let at = '';
          for (let i = 0; i < n; i++) {
            const e = element(mu[i], rho[i], eps[i], m0, s0);
            // each error relative to the size of the terms float32 rounds (a few ulp of each)
            const sp = softplus64(rho[i]);
            const errs = [
              Math.abs(w[i] - e.w) / (4e-7 * (Math.abs(mu[i]) + Math.abs(sp * eps[i])) + 1e-45),
              Math.abs(dMu[i] - (dw[i] + dkl * e.dklMu)) /
                (4e-7 * (Math.abs(dw[i]) + Math.abs(dkl * e.dklMu)) + 1e-45),
              Math.abs(dRho[i] - (dw[i] * e.dwRho + dkl * e.dklRho)) /
                (4e-6 * (Math.abs(dw[i] * e.dwRho) + dkl * e.dklRhoSize) + 1e-45),
            ];
            const worstHere = Math.max(...errs);
            if (worstHere > worst) [worst, at] = [worstHere, `n=${n} i=${i} rho=${rho[i]} errors ${errs}`];
          }
          expect(worst, at).toBeLessThanOrEqual(1);
        }
    });

  test('refuses bad arguments', () => {
    const x = new Float32Array(4);
    const p = Float64Array.of(0, 1);
    expect(() => fp32.gaussianSampleKl(x, x, p, new Float32Array(3), x)).toThrow(/eps holds 3 floats/);
    expect(() => fp32.gaussianSampleKl(x, x, Float64Array.of(0, -1), x, x)).toThrow(/sigma finite and > 0/);
    expect(() => fp32.gaussianSampleKlGrad(x, x, p, x, x, Number.NaN, x, x)).toThrow(/dkl must be/);
    expect(() => fp32.gaussianSampleKlGrad(x, x, p, x, x, 1, x, new Float32Array(3))).toThrow(/dRho holds 3/);
  });
});

d('the fused op on tfjs-wasm', () => {
  test('is registered natively; its gradients equal float64 finite differences, from both outputs and each alone', async () => {
    await initBackend({ backend: 'wasm' });
    enableNativeFloatKernels();
    expect(gaussianSampleKlFused()).toBe(true);
    const n = 300;
    const [mu, rho, eps, c] = inputs(n);
    const [m0, s0] = [0.05, 0.5];
    // loss = a sum(c w) + b KL, as training's sum of the layer output's gradient and KL / N
    const loss64 = (m: Float64Array, r: Float64Array, a: number, b: number) => {
      let l = 0;
      for (let i = 0; i < n; i++) {
        const e = element(m[i], r[i], eps[i], m0, s0);
        l += a * c[i] * e.w + b * e.kl;
      }
      return l;
    };
    for (const [a, b] of [
      [1, 0.01],
      [1, 0],
      [0, 2],
    ]) {
      const [gMu, gRho] = tf
        .grads((m: tf.Tensor, r: tf.Tensor) => {
          const { w, kl } = gaussianSampleKl(m, r, tf.tensor(eps), { mean: m0, sigma: s0 })!;
          // an output the loss does not use gets tfjs's zero gradient
          const parts = [];
          if (a !== 0) parts.push(tf.mul(a, tf.sum(tf.mul(w, tf.tensor(c)))));
          if (b !== 0) parts.push(tf.mul(b, kl));
          return tf.addN(parts) as tf.Scalar;
        })([tf.tensor(mu), tf.tensor(rho)])
        .map((g) => g.dataSync());
      const m = Float64Array.from(mu);
      const r = Float64Array.from(rho);
      for (let i = 0; i < n; i++) {
        const h = 1e-6;
        const at = (x: Float64Array, v: number) => {
          const y = Float64Array.from(x);
          y[i] = v;
          return y;
        };
        const fdMu = (loss64(at(m, m[i] + h), r, a, b) - loss64(at(m, m[i] - h), r, a, b)) / (2 * h);
        const fdRho = (loss64(m, at(r, r[i] + h), a, b) - loss64(m, at(r, r[i] - h), a, b)) / (2 * h);
        expect(Math.abs(gMu[i] - fdMu), `a=${a} b=${b} mu ${i}`).toBeLessThan(1e-4 * (1 + Math.abs(fdMu)));
        expect(Math.abs(gRho[i] - fdRho), `a=${a} b=${b} rho ${rho[i]}`).toBeLessThan(
          1e-4 * (1 + Math.abs(fdRho)),
        );
      }
    }
  });

  test('samples a list of tensors in one call: each output and gradient bit for bit the one-tensor calls, the KL their AddN', async () => {
    await initBackend({ backend: 'wasm' });
    enableNativeFloatKernels();
    // a weight and a bias: different sizes (one below a vector, one with a partial step) and priors
    const shapes = [[37, 29], [7]];
    const priors = [
      { mean: 0, sigma: 0.1 },
      { mean: 0.05, sigma: 1.5 },
    ];
    const parts = shapes.map((shape, j) => {
      const [mu, rho, eps] = inputs(shape[0] * (shape[1] ?? 1));
      return {
        mu: tf.tensor(mu, shape),
        rho: tf.tensor(rho, shape),
        eps: tf.tensor(eps, shape),
        prior: priors[j],
      };
    });
    const c = parts.map((p) => tf.randomNormal(p.mu.shape, 0, 1, 'float32', 3));
    // loss = sum_j sum(c_j w_j) + 0.3 KL, through the list kernel and through one call a tensor
    const run = (many: boolean) =>
      tf.grads((...vars: tf.Tensor[]) => {
        const ps = parts.map((p, j) => ({ ...p, mu: vars[2 * j], rho: vars[2 * j + 1] }));
        const outs = many
          ? gaussianSampleKlMany(ps)!
          : (() => {
              const one = ps.map((p) => gaussianSampleKl(p.mu, p.rho, p.eps, p.prior)!);
              return { w: one.map((o) => o.w), kl: tf.addN(one.map((o) => o.kl)) as tf.Scalar };
            })();
        const terms = outs.w.map((w, j) => tf.sum(tf.mul(w, c[j])));
        return tf.addN([...terms, tf.mul(0.3, outs.kl)]) as tf.Scalar;
      })(parts.flatMap((p) => [p.mu, p.rho]));
    // the KL's float32 sum: over many priors, since a float64 sum rounds the same most of the time
    for (let k = 0; k < 24; k++) {
      const ps = parts.map((p, j) => ({
        ...p,
        prior: { mean: 0.01 * k * (j + 1), sigma: 0.05 + 0.07 * k + j },
      }));
      const o = gaussianSampleKlMany(ps)!;
      const one = ps.map((p) => gaussianSampleKl(p.mu, p.rho, p.eps, p.prior)!);
      const want = [...one.map((x) => x.w), tf.addN(one.map((x) => x.kl))];
      const got = [...o.w, o.kl];
      for (let i = 0; i < got.length; i++)
        expect(
          sameBits(got[i].dataSync() as Float32Array, want[i].dataSync() as Float32Array),
          `prior ${k} output ${i}`,
        ).toBe(true);
    }
    const [gm, gs] = [run(true), run(false)];
    for (let k = 0; k < gm.length; k++)
      expect(
        sameBits(gm[k].dataSync() as Float32Array, gs[k].dataSync() as Float32Array),
        `gradient ${k}`,
      ).toBe(true);
  });

  test('refuses bad inputs with a typed error naming them', async () => {
    await initBackend({ backend: 'wasm' });
    const t = tf.ones([4]);
    const attrs = { priorMean: [0], priorSigma: [1] };
    const run = (inputs: tf.Tensor[], a: object = attrs, name = GAUSSIAN_SAMPLE_KL) =>
      tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, a as tf.NamedAttrMap);
    expect(() => run([t, t, tf.ones([3])])).toThrow(/input eps\[0\] has 3 elements, expected 4/);
    expect(() => run([t, t, t], { priorMean: [0], priorSigma: [0] })).toThrow(
      /priorSigma must be a finite number > 0/,
    );
    expect(() => run([t, t, t], { priorMean: 0, priorSigma: 1 })).toThrow(/must be arrays of one length/);
    expect(() => run([t, t, t, t, t], { priorMean: [0, 0], priorSigma: [1, 1] })).toThrow(
      /expected 6 inputs for 2 tensor\(s\)/,
    );
    expect(() => run([t, t, t, t, t], attrs, GAUSSIAN_SAMPLE_KL_GRAD)).toThrow(
      /input dkl must be a float32 scalar/,
    );
    expect(() => run([t, tf.ones([4], 'int32'), t])).toThrow(QbnnError);
  });
});
