// FusedAdamOptimizer (one 'QbnnAdam' kernel per parameter) against two independent references:
// tfjs's own AdamOptimizer (14 element-wise kernels) and a float64 Adam written out here, over
// several steps on the wasm and cpu backends; plus the kernel's argument checks.
import { adamStepMany, adamUpdate, FUSED_ADAM, initBackend, Rng } from '@qbnn/core';
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

  it('steps many parameters in one call on wasm, moments in place where nothing else shares them, the same bits as adamUpdate', async () => {
    await initBackend({ backend: 'wasm' });
    const r = new Rng(11);
    const values = [r.normal(300), r.normal(300), r.normal(300).map((x) => x * x)];
    // variables made in a tidy: the tensor each was made from is gone, their buffers their own
    const make = (prefix: string) =>
      tf.tidy(() => values.map((x, k) => tf.variable(tf.tensor(x, [30, 10]), true, `${prefix}${k}`)));
    const attrs = {
      learningRate: 0.01,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-7,
      correction1: 0.1,
      correction2: 0.001,
    };
    const [p, m, v] = make('ip_p');
    const [q, qm, qv] = make('ip_q');
    const g = tf.tensor(r.normal(300), [30, 10]);
    // qm shares its buffer with a clone the caller holds: that entry is left to the kernel
    const held = tf.clone(qm);
    const heldP = tf.clone(p);
    const out = adamStepMany(
      [
        { param: p, m, v, grad: g },
        { param: q, m: qm, v: qv, grad: g },
      ],
      attrs,
    );
    expect(out[1]).toBeNull();
    expect(held.dataSync()).toEqual(values[1]);
    expect(qm.dataSync()).toEqual(values[1]);
    // the parameter is not rewritten (a clone of it is fine): its new values come back
    expect(out[0]).not.toBeNull();
    expect(p.dataSync()).toEqual(values[0]);
    expect(heldP.dataSync()).toEqual(values[0]);
    const next = tf.engine().makeTensorFromTensorInfo(out[0]!);
    const want = [new Float32Array(300), new Float32Array(300), new Float32Array(300)];
    adamUpdate(
      values[0],
      values[1],
      values[2],
      g.dataSync() as Float32Array,
      want[0],
      want[1],
      want[2],
      attrs,
    );
    [next, m, v].forEach((t, k) => {
      expect(Buffer.from((t.dataSync() as Float32Array).buffer).equals(Buffer.from(want[k].buffer))).toBe(
        true,
      );
    });
    await initBackend({ backend: 'cpu' });
    expect(adamStepMany([{ param: p, m, v, grad: g }], attrs)).toEqual([null]);
    await initBackend({ backend: 'wasm' });
    tf.dispose([p, m, v, q, qm, qv, g, held, heldP, next]);
  });

  it("leaves no stale weights in tfjs-wasm's own kernels (XNNPACK caches a filter by tensor)", async () => {
    await initBackend({ backend: 'wasm' });
    const r = new Rng(12);
    const w = tf.tidy(() => tf.variable(tf.tensor(r.normal(4 * 4 * 3 * 5), [4, 4, 3, 5]), true, 'xnn_w'));
    const x = tf.tensor(r.normal(2 * 9 * 9 * 3), [2, 9, 9, 3]);
    const opt = new FusedAdamOptimizer(0.1, 0.9, 0.999);
    for (let step = 0; step < 3; step++) {
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.square(tf.conv2d(x, w, 1, 'valid'))) as tf.Scalar,
        [w],
      );
      opt.applyGradients(grads);
      tf.dispose(Object.values(grads));
      // the convolution with the variable against one with a fresh copy of its values
      const got = tf.conv2d(x, w, 1, 'valid').dataSync();
      const copy = tf.tensor(w.dataSync(), w.shape);
      expect(got).toEqual(tf.conv2d(x, copy, 1, 'valid').dataSync());
    }
    opt.dispose();
    tf.dispose([w, x]);
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
