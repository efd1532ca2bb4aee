// FusedAdamOptimizer (one 'QbnnAdam' kernel per parameter) against two independent references:
// tfjs's own AdamOptimizer (14 element-wise kernels) and a float64 Adam written out here, over
// several steps on the wasm and cpu backends; plus the kernel's argument checks.
import { adamUpdate, FUSED_ADAM, initBackend, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { FusedAdamOptimizer } from '../src/index.js';

const STEPS = 6;
const SHAPES = [[3], [17, 5], [2, 3, 4, 5]];

function gradients(seed: number): Float32Array[][] {
  const r = new Rng(seed);
  return Array.from({ length: STEPS }, () => SHAPES.map((s) => r.normal(s.reduce((a, b) => a * b, 1))));
}

/** Runs STEPS steps of `opt` from fixed starting values; returns the final parameters. */
function train(opt: tf.Optimizer, seed: number): Float32Array[] {
  const r = new Rng(seed + 1);
  const vars = SHAPES.map((s, i) =>
    tf.variable(
      tf.tensor(r.normal(s.reduce((a, b) => a * b, 1)), s),
      true,
      `adam_t${seed}_${i}_${opt.constructor.name}`,
    ),
  );
  for (const gs of gradients(seed)) {
    const grads: tf.NamedTensorMap = {};
    vars.forEach((v, i) => {
      grads[v.name] = tf.tensor(gs[i], SHAPES[i]);
    });
    opt.applyGradients(grads);
    tf.dispose(Object.values(grads));
  }
  const out = vars.map((v) => v.dataSync() as Float32Array);
  tf.dispose(vars);
  opt.dispose();
  return out;
}

/** Adam in float64 throughout (m and v kept in float64), tfjs's defaults. */
function float64Adam(seed: number, lr: number, eps: number): Float64Array[] {
  const r = new Rng(seed + 1);
  const p = SHAPES.map((s) => Float64Array.from(r.normal(s.reduce((a, b) => a * b, 1))));
  const m = p.map((x) => new Float64Array(x.length));
  const v = p.map((x) => new Float64Array(x.length));
  gradients(seed).forEach((gs, t) => {
    const c1 = 1 - 0.9 ** (t + 1);
    const c2 = 1 - 0.999 ** (t + 1);
    gs.forEach((g, k) => {
      for (let i = 0; i < g.length; i++) {
        m[k][i] = 0.9 * m[k][i] + 0.1 * g[i];
        v[k][i] = 0.999 * v[k][i] + 0.001 * g[i] * g[i];
        p[k][i] -= (lr * (m[k][i] / c1)) / (Math.sqrt(v[k][i] / c2) + eps);
      }
    });
  });
  return p;
}

describe('FusedAdamOptimizer', () => {
  afterAll(() => initBackend({ backend: 'wasm' }));
  for (const backend of ['wasm', 'cpu'] as const)
    it(`follows tfjs's Adam and a float64 Adam on ${backend}`, async () => {
      await initBackend({ backend });
      expect(tf.getKernel(FUSED_ADAM, backend)).toBeDefined();
      const lr = 0.01;
      const fused = train(new FusedAdamOptimizer(lr, 0.9, 0.999), 3);
      const plain = train(tf.train.adam(lr), 3);
      const eps = tf.backend().epsilon();
      const exact = float64Adam(3, lr, eps);
      fused.forEach((f, k) => {
        for (let i = 0; i < f.length; i++) {
          // float32 storage of p, m and v: a few ulp of the parameter per step
          expect(Math.abs(f[i] - exact[k][i])).toBeLessThan(1e-6 * (1 + Math.abs(exact[k][i])) * STEPS);
          expect(Math.abs(f[i] - plain[k][i])).toBeLessThan(1e-6 * (1 + Math.abs(plain[k][i])) * STEPS);
        }
      });
    });

  it('falls back to tfjs Adam on a backend without the kernel', async () => {
    await initBackend({ backend: 'cpu' });
    const saved = tf.getKernel(FUSED_ADAM, 'cpu')!;
    tf.unregisterKernel(FUSED_ADAM, 'cpu');
    try {
      const a = train(new FusedAdamOptimizer(0.01, 0.9, 0.999), 4);
      const b = train(tf.train.adam(0.01), 4);
      for (const [k, x] of a.entries()) expect(Array.from(x)).toEqual(Array.from(b[k]));
    } finally {
      tf.registerKernel(saved);
    }
  });

  it('refuses bad kernel inputs with a typed error', async () => {
    await initBackend({ backend: 'wasm' });
    const t = tf.ones([4]);
    const short = tf.ones([3]);
    const attrs = {
      learningRate: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-7,
      correction1: 0.1,
      correction2: 0.001,
    };
    expect(() => tf.engine().runKernel(FUSED_ADAM, { param: t, m: t, v: t, grad: short }, attrs)).toThrow(
      /input grad must have 4 elements/,
    );
    expect(() =>
      tf.engine().runKernel(FUSED_ADAM, { param: t, m: t, v: t, grad: t }, { ...attrs, correction1: 0 }),
    ).toThrow(/correction1 and correction2 must be > 0/);
    expect(() =>
      tf
        .engine()
        .runKernel(FUSED_ADAM, { param: t, m: t, v: t, grad: t }, { ...attrs, learningRate: Number.NaN }),
    ).toThrow(/learningRate must be a finite number/);
    tf.dispose([t, short]);
  });

  it('adamUpdate writes m, v and the parameter of one step', () => {
    const o = [new Float32Array(1), new Float32Array(1), new Float32Array(1)];
    adamUpdate(
      Float32Array.of(1),
      Float32Array.of(0),
      Float32Array.of(0),
      Float32Array.of(2),
      o[0],
      o[1],
      o[2],
      {
        learningRate: 0.5,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 0,
        correction1: 0.1,
        correction2: 0.001,
      },
    );
    // m = 0.2, v = 0.004; m / c1 = 2, sqrt(v / c2) = 2: p = 1 - 0.5 * 2 / 2
    expect(o[1][0]).toBeCloseTo(0.2, 7);
    expect(o[2][0]).toBeCloseTo(0.004, 9);
    expect(o[0][0]).toBeCloseTo(0.5, 6);
  });
});
