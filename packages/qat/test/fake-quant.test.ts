import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeQuantize, fakeQuantize, fakeQuantizeLearnable } from '../src/fake-quant.js';
import { MinMaxObserver } from '../src/observers.js';
import { fakeQuantValue } from '../src/params.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

describe('fakeQuantize', () => {
  it('matches the float64 reference and has the straight-through gradient', () => {
    const params = { scale: Float64Array.of(0.1), zeroPoint: Int32Array.of(3), bits: 4, signed: false };
    // range representable: [(0-3)*0.1, (15-3)*0.1] = [-0.3, 1.2]
    const xs = [-1, -0.34, -0.3, -0.04, 0.05, 0.149, 0.5, 1.2, 1.24, 1.26, 3];
    const x = tf.tensor(xs);
    const y = fakeQuantize(x, params).dataSync();
    for (let i = 0; i < xs.length; i++) expect(y[i]).toBeCloseTo(fakeQuantValue(xs[i], 0.1, 3, 0, 15), 6);
    // gradients of built-in ops are not registered in plain node: feed dy directly
    const g = tf.grad((t: tf.Tensor) => fakeQuantize(t, params))(x, tf.tensor(xs.map((_, i) => i + 1)));
    const gd = g.dataSync();
    xs.forEach((v, i) => {
      const r = Math.round(v / 0.1) + 3;
      const inside = r >= 0 && r <= 15;
      expect(gd[i]).toBe(inside ? i + 1 : 0);
    });
  });

  it('per-channel params broadcast along the axis', () => {
    const params = {
      scale: Float64Array.of(0.5, 0.01),
      zeroPoint: Int32Array.of(0, 0),
      bits: 8,
      signed: true,
      axis: 0,
    };
    const x = tf.tensor([
      [0.26, 0.74],
      [0.026, 0.074],
    ]);
    const y = fakeQuantize(x, params).arraySync() as number[][];
    expect(y[0][0]).toBeCloseTo(0.5, 6);
    expect(y[0][1]).toBeCloseTo(0.5, 6);
    expect(y[1][0]).toBeCloseTo(0.03, 6);
    expect(y[1][1]).toBeCloseTo(0.07, 6);
  });
});

describe('LSQ learnable scale', () => {
  it('scale gradient matches a finite-difference-free analytic reference', () => {
    const xs = [-2, -0.26, 0.05, 0.31, 0.9, 5];
    const s = tf.scalar(0.25);
    const x = tf.tensor(xs);
    const [gx, gs] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      fakeQuantizeLearnable(a, b, Int32Array.of(0), 3, true),
    )([x, s], tf.onesLike(x));
    // qmin -4, qmax 3, Z 0
    let ref = 0;
    const gxr: number[] = [];
    for (const v of xs) {
      const r = Math.round(v / 0.25);
      if (r < -4) {
        ref += -4;
        gxr.push(0);
      } else if (r > 3) {
        ref += 3;
        gxr.push(0);
      } else {
        ref += r - v / 0.25;
        gxr.push(1);
      }
    }
    ref *= 1 / Math.sqrt(xs.length * 3);
    expect(gs.dataSync()[0]).toBeCloseTo(ref, 5);
    expect(Array.from(gx.dataSync())).toEqual(gxr);
  });
});

describe('FakeQuantize module', () => {
  it('observes while enabled, freezes when disabled, passes through when fake-quant is off', () => {
    const fq = new FakeQuantize(new MinMaxObserver({ bits: 8, signed: false, symmetric: false }));
    fq.apply(tf.tensor([0, 1]));
    const s1 = fq.qparams().scale[0];
    fq.observerEnabled = false;
    fq.apply(tf.tensor([0, 10]));
    expect(fq.qparams().scale[0]).toBe(s1);
    fq.fakeQuantEnabled = false;
    const y = fq.apply(tf.tensor([0.123456]));
    expect(y.dataSync()[0]).toBeCloseTo(0.123456, 6);
    fq.fakeQuantEnabled = true;
    const y2 = fq.apply(tf.tensor([0.123456, 5]));
    expect(y2.dataSync()[0]).toBeCloseTo(fakeQuantValue(0.123456, s1, 0, 0, 255), 6);
    expect(y2.dataSync()[1]).toBeCloseTo(1, 6);
  });

  it('learnable scale trains toward a better step', () => {
    const fq = new FakeQuantize(new MinMaxObserver({ bits: 4, signed: true, symmetric: true }), {
      learnableScale: true,
    });
    const data = tf.tensor(Array.from({ length: 200 }, (_, i) => Math.sin(i) * (i % 20 === 0 ? 8 : 1)));
    fq.apply(data);
    const [v] = fq.variables();
    const before = fq.qparams().scale[0];
    const mse = () => tf.mean(tf.square(tf.sub(fq.apply(data), data))) as tf.Scalar;
    const l0 = mse().dataSync()[0];
    for (let i = 0; i < 50; i++) {
      // d mse / d out = 2 (out - x) / n, fed as dy (no registered gradients needed)
      const out = fq.apply(data);
      const dy = tf.mul(tf.sub(out, data), 2 / data.size);
      const g = tf.grad((sv: tf.Tensor) => fakeQuantizeLearnable(data, sv, Int32Array.of(0), 4, true))(v, dy);
      v.assign(tf.sub(v, tf.mul(g, 0.01)));
    }
    const l1 = mse().dataSync()[0];
    expect(fq.qparams().scale[0]).not.toBe(before);
    expect(l1).toBeLessThan(l0);
  });
});
