import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AvgPool2d,
  BatchNorm2d,
  Conv1d,
  Conv2d,
  conv2d as conv2dFn,
  Dropout,
  Flatten,
  Linear,
  MaxPool2d,
  ReLU,
  Residual,
  Sequential,
} from '../src/index.js';
import {
  A,
  batchNormRef,
  type ConvP,
  checkGrads,
  conv2dRef,
  expectClose,
  fdGrad,
  linearRef,
  poolRef,
  randn,
  T,
} from './ref.js';
import { ready } from './setup.js';

beforeAll(ready);

describe('Linear', () => {
  it('matches the float64 reference and finite differences', () => {
    const lin = new Linear(7, 5, { seed: 3 });
    expect(lin.param('weight').shape).toEqual([5, 7]);
    const x = randn([4, 7], 1);
    const y = lin.apply(T(x));
    const ref = linearRef(x, A(lin.param('weight')), A(lin.param('bias')));
    expectClose(y.dataSync(), ref.data, 1e-5, 1e-5);
    checkGrads(
      ([xt, wt, bt]) => tf.add(tf.matMul(xt, wt, false, true), bt),
      ([xa, wa, ba]) => linearRef(xa, wa, ba),
      [x, A(lin.param('weight')), A(lin.param('bias'))],
      9,
    );
    tf.dispose(y);
    lin.dispose();
  });

  it('initialises like torch: U(-1/sqrt(in), 1/sqrt(in)), deterministic by seed', () => {
    const a = new Linear(400, 50, { seed: 11 });
    const b = new Linear(400, 50, { seed: 11 });
    const c = new Linear(400, 50, { seed: 12 });
    const wa = a.param('weight').dataSync();
    expect(wa).toEqual(b.param('weight').dataSync());
    expect(wa).not.toEqual(c.param('weight').dataSync());
    const bound = 1 / 20;
    let max = 0;
    let sq = 0;
    for (const v of wa) {
      max = Math.max(max, Math.abs(v));
      sq += v * v;
    }
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(0.99 * bound);
    expect(sq / wa.length).toBeCloseTo((bound * bound) / 3, 4);
    for (const m of [a, b, c]) m.dispose();
  });

  it('rejects wrong input shapes', () => {
    const lin = new Linear(3, 2, { bias: false });
    expect(lin.hasParam('bias')).toBe(false);
    const x = tf.zeros([2, 4]);
    expect(() => lin.apply(x)).toThrow(/expected input \[N, 3\]/);
    x.dispose();
    lin.dispose();
  });
});

describe('Conv2d', () => {
  const cases: [string, number, number, number, Partial<ConvP>][] = [
    ['plain 3x3', 3, 4, 3, {}],
    ['stride 2 pad 1', 3, 4, 3, { stride: [2, 2], padding: [1, 1] }],
    ['dilation 2 pad 2', 2, 3, 3, { dilation: [2, 2], padding: [2, 2] }],
    ['groups 2 stride [1,2]', 4, 6, 3, { groups: 2, stride: [1, 2], padding: [1, 0] }],
    [
      'depthwise + dilation + stride',
      4,
      4,
      3,
      { groups: 4, dilation: [2, 1], stride: [2, 1], padding: [1, 1] },
    ],
    ['5x5 pad 2 (LeNet)', 1, 2, 5, { padding: [2, 2] }],
  ];
  for (const [name, ic, oc, k, p] of cases) {
    it(`${name}: forward and gradients match the reference`, () => {
      const full: ConvP = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1, ...p };
      const conv = new Conv2d(ic, oc, k, { ...full, seed: 5 });
      expect(conv.param('weight').shape).toEqual([oc, ic / full.groups, k, k]);
      const x = randn([2, ic, 7, 8], 21);
      const y = conv.apply(T(x));
      const w = A(conv.param('weight'));
      const b = A(conv.param('bias'));
      const ref = conv2dRef(x, w, b, full);
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.dataSync(), ref.data, 1e-5, 1e-4);
      tf.dispose(y);
      checkGrads(
        ([xt, wt, bt]) => conv2dFn(xt, wt, bt, full),
        ([xa, wa, ba]) => conv2dRef(xa, wa, ba, full),
        [randn([1, ic, 6, 7], 22), w, b],
        23,
      );
      conv.dispose();
    });
  }
});

describe('pooling', () => {
  const cases: ['max' | 'avg', [number, number], [number, number], [number, number]][] = [
    ['max', [2, 2], [2, 2], [0, 0]],
    ['max', [3, 3], [2, 2], [1, 1]],
    ['avg', [2, 2], [2, 2], [0, 0]],
    ['avg', [3, 2], [1, 2], [1, 1]],
  ];
  for (const [mode, k, s, p] of cases) {
    it(`${mode} k=${k} s=${s} p=${p} matches the reference and finite differences`, () => {
      const Pool = mode === 'max' ? MaxPool2d : AvgPool2d;
      const pool = new Pool(k, { stride: s, padding: p });
      const x = randn([2, 3, 7, 6], 31);
      const y = pool.apply(T(x));
      const ref = poolRef(x, k, s, p, mode);
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.dataSync(), ref.data, 1e-6, 1e-6);
      tf.dispose(y);
      checkGrads(
        ([xt]) => pool.apply(xt),
        ([xa]) => poolRef(xa, k, s, p, mode),
        [randn([1, 2, 6, 5], 32)],
        33,
      );
    });
  }
});

describe('windows larger than the padded input', () => {
  it('conv and pooling refuse them with ERR_SHAPE, as PyTorch does; a window that just fits runs', () => {
    // Conv2d was a RangeError 'geometry[4] must be >= 0' (native) and Conv1d 'Invalid typed array
    // length: -4'; MaxPool2d / AvgPool2d returned an empty [1, 1, 0, 0] tensor
    const x = tf.zeros([1, 1, 4, 4]);
    const cases: [() => unknown, RegExp][] = [
      [
        () => new MaxPool2d(5).apply(x),
        /MaxPool2d: the input's 4 x 4 padded by \[0,0\] is smaller than the kernel 5 x 5/,
      ],
      [() => new AvgPool2d([2, 5]).apply(x), /AvgPool2d: .* kernel 2 x 5/],
      [() => new Conv2d(1, 2, 5).apply(x), /conv2d: the input's 4 x 4 .* kernel 5 x 5/],
      [() => new Conv2d(1, 2, 3, { dilation: 2 }).apply(x), /dilated kernel 5 x 5/],
      // Conv1d's errors name conv1d and its length (said conv2d and a lifted 1 x 3 input)
      [
        () => new Conv1d(1, 2, 5).apply(tf.zeros([1, 1, 3])),
        /^conv1d: the input's 3 padded by \[0\] is smaller than the kernel 5 \(input \[1,1,3\]\)$/,
      ],
      [
        () => new Conv1d(1, 2, 3, { dilation: 2 }).apply(tf.zeros([1, 1, 4])),
        /^conv1d: .* dilated kernel 5 /,
      ],
      [
        () => new Conv1d(2, 2, 3).apply(tf.zeros([1, 3, 8])),
        /^conv1d: input has 3 channels, weight \[2,2,3\] with groups=1 expects 2$/,
      ],
    ];
    for (const [f, what] of cases) {
      expect(f, String(what)).toThrow(what);
      try {
        f();
      } catch (e) {
        expect((e as { code?: string }).code).toBe('ERR_SHAPE');
      }
    }
    expect(new Conv2d(1, 2, 5, { padding: 1 }).apply(x).shape).toEqual([1, 2, 2, 2]);
    expect(new MaxPool2d(4).apply(x).shape).toEqual([1, 1, 1, 1]);
    expect(new Conv2d(1, 2, 3, { dilation: 2, padding: 1 }).apply(x).shape).toEqual([1, 2, 2, 2]);
  });
});

describe('BatchNorm2d', () => {
  it('training: batch statistics, running-stat update, gradients', () => {
    const bn = new BatchNorm2d(3, { momentum: 0.2 });
    bn.param('weight').assign(tf.tensor([1.5, -0.5, 2]));
    bn.param('bias').assign(tf.tensor([0.1, 0.2, -0.3]));
    const x = randn([4, 3, 5, 2], 41);
    const y = bn.apply(T(x));
    const ref = batchNormRef(x, A(bn.param('weight')), A(bn.param('bias')), 1e-5);
    expectClose(y.dataSync(), ref.y.data, 1e-4, 1e-4);
    const m = 4 * 5 * 2;
    const expMean = Array.from(ref.mean, (v) => 0.2 * v);
    const expVar = Array.from(ref.var, (v) => 0.8 + 0.2 * ((v * m) / (m - 1)));
    expectClose(bn.buffer('running_mean').dataSync(), expMean, 1e-5, 1e-5);
    expectClose(bn.buffer('running_var').dataSync(), expVar, 1e-5, 1e-5);
    expect(bn.buffer('num_batches_tracked').dataSync()[0]).toBe(1);
    expect(bn.buffer('num_batches_tracked').dtype).toBe('int32');
    tf.dispose(y);
    checkGrads(
      ([xt, gt, bt]) => {
        const mean = tf.mean(xt, [0, 2, 3], true);
        const v = tf.mean(tf.square(tf.sub(xt, mean)), [0, 2, 3], true);
        const bnOut = tf.div(tf.sub(xt, mean), tf.sqrt(tf.add(v, 1e-5)));
        return tf.add(tf.mul(bnOut, tf.reshape(gt, [1, 3, 1, 1])), tf.reshape(bt, [1, 3, 1, 1]));
      },
      ([xa, ga, ba]) => batchNormRef(xa, ga, ba, 1e-5).y,
      [randn([3, 3, 2, 2], 42), A(bn.param('weight')), A(bn.param('bias'))],
      43,
      5e-3,
    );
    // The module's own forward has the same gradient as the functional expression above.
    const xs = T(randn([3, 3, 2, 2], 44));
    const r = T(randn([3, 3, 2, 2], 45));
    const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(bn.apply(z), r)))(xs);
    const ref2 = fdGrad(
      ([xa]) => batchNormRef(xa, A(bn.param('weight')), A(bn.param('bias')), 1e-5).y,
      [A(xs)],
      0,
      Float64Array.from(r.dataSync()),
    );
    expectClose(g.dataSync(), ref2, 5e-3, 5e-3);
    tf.dispose([xs, r, g]);
    bn.dispose();
  });

  it('eval mode uses running statistics', () => {
    const bn = new BatchNorm2d(2);
    bn.buffer('running_mean').assign(tf.tensor([1, -1]));
    bn.buffer('running_var').assign(tf.tensor([4, 0.25]));
    bn.eval();
    const x = tf.tensor([3, 5, 0, 1], [1, 2, 1, 2]);
    const y = bn.apply(x);
    const s = (v: number) => Math.sqrt(v + 1e-5);
    expectClose(y.dataSync(), [2 / s(4), 4 / s(4), 1 / s(0.25), 2 / s(0.25)], 1e-6, 1e-6);
    expect(bn.buffer('num_batches_tracked').dataSync()[0]).toBe(0);
    tf.dispose([x, y]);
    bn.dispose();
  });
});

describe('ReLU, Flatten, Dropout, Sequential, Residual', () => {
  it('ReLU and Flatten', () => {
    const x = T(randn([2, 3, 2, 2], 51));
    const y = new Sequential(new ReLU(), new Flatten()).apply(x);
    expect(y.shape).toEqual([2, 12]);
    expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync(), (v) => Math.max(v, 0)));
    tf.dispose([x, y]);
  });

  it('Dropout: deterministic by seed, inverted scaling, off in eval', () => {
    const x = tf.ones([100, 100]);
    const d1 = new Dropout(0.3, { seed: 7 });
    const d2 = new Dropout(0.3, { seed: 7 });
    const y1 = d1.apply(x);
    const y2 = d2.apply(x);
    expect(y1.dataSync()).toEqual(y2.dataSync());
    const v = y1.dataSync();
    const zeros = v.filter((a) => a === 0).length;
    expect(Math.abs(zeros / 1e4 - 0.3)).toBeLessThan(0.02);
    for (const a of v) expect(a === 0 || Math.abs(a - 1 / 0.7) < 1e-6).toBe(true);
    const y3 = d1.apply(x);
    expect(y3.dataSync()).not.toEqual(v);
    d1.eval();
    const y4 = d1.apply(x);
    expect(y4).toBe(x);
    d1.alwaysOn = true;
    const y5 = d1.apply(x);
    expect(y5).not.toBe(x);
    tf.dispose([x, y1, y2, y3, y5]);
  });

  it('Residual adds the shortcut and applies post', () => {
    const body = new Linear(4, 4, { seed: 1 });
    const res = new Residual(body, { post: new ReLU() });
    const x = randn([3, 4], 61);
    const y = res.apply(T(x));
    const lin = linearRef(x, A(body.param('weight')), A(body.param('bias')));
    const ref = lin.data.map((v, i) => Math.max(v + x.data[i], 0));
    expectClose(y.dataSync(), ref, 1e-5, 1e-5);
    tf.dispose(y);
    res.dispose();
  });
});
