import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BatchNorm1d,
  Conv1d,
  Conv3d,
  ConvTranspose1d,
  ConvTranspose2d,
  ConvTranspose3d,
  conv1d,
  conv3d,
  convTranspose1d,
  convTranspose2d,
  convTranspose3d,
} from '../src/index.js';
import { A, type Arr, batchNormRef, checkGrads, expectClose, randn, T } from './ref.js';
import { ready } from './setup.js';

beforeAll(ready);

interface P1 {
  stride: number;
  padding: number;
  dilation: number;
  groups: number;
}

/** 1-D convolution in float64 loops: x [N, C, L], w [O, C/g, K]. */
function conv1dRef(x: Arr, w: Arr, b: Arr | undefined, p: P1): Arr {
  const [n, c, l] = x.shape;
  const [o, cg, k] = w.shape;
  const og = o / p.groups;
  const ol = Math.floor((l + 2 * p.padding - p.dilation * (k - 1) - 1) / p.stride) + 1;
  const y = new Float64Array(n * o * ol);
  for (let b0 = 0; b0 < n; b0++)
    for (let oc = 0; oc < o; oc++)
      for (let i = 0; i < ol; i++) {
        let s = b ? b.data[oc] : 0;
        const g = Math.floor(oc / og);
        for (let ci = 0; ci < cg; ci++)
          for (let u = 0; u < k; u++) {
            const at = i * p.stride - p.padding + u * p.dilation;
            if (at >= 0 && at < l)
              s += x.data[(b0 * c + g * cg + ci) * l + at] * w.data[(oc * cg + ci) * k + u];
          }
        y[(b0 * o + oc) * ol + i] = s;
      }
  return { data: y, shape: [n, o, ol] };
}

interface PT {
  stride: [number, number];
  padding: [number, number];
  outputPadding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** 2-D transposed convolution in float64 loops, as the scatter it is: x [N, I, H, W], w [I, O/g, kh, kw]. */
function convTranspose2dRef(x: Arr, w: Arr, b: Arr | undefined, p: PT): Arr {
  const [n, ic, h, wd] = x.shape;
  const [, og, kh, kw] = w.shape;
  const ig = ic / p.groups;
  const oc = og * p.groups;
  const size = (len: number, i: number, k: number) =>
    (len - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (k - 1) + p.outputPadding[i] + 1;
  const oh = size(h, 0, kh);
  const ow = size(wd, 1, kw);
  const y = new Float64Array(n * oc * oh * ow);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < oc; o++)
      for (let k = 0; k < oh * ow; k++) y[(b0 * oc + o) * oh * ow + k] = b ? b.data[o] : 0;
  for (let b0 = 0; b0 < n; b0++)
    for (let ci = 0; ci < ic; ci++) {
      const g = Math.floor(ci / ig);
      for (let i = 0; i < h; i++)
        for (let j = 0; j < wd; j++) {
          const v = x.data[((b0 * ic + ci) * h + i) * wd + j];
          for (let o = 0; o < og; o++)
            for (let u = 0; u < kh; u++)
              for (let t = 0; t < kw; t++) {
                const yi = i * p.stride[0] - p.padding[0] + u * p.dilation[0];
                const yj = j * p.stride[1] - p.padding[1] + t * p.dilation[1];
                if (yi < 0 || yi >= oh || yj < 0 || yj >= ow) continue;
                y[((b0 * oc + g * og + o) * oh + yi) * ow + yj] +=
                  v * w.data[((ci * og + o) * kh + u) * kw + t];
              }
        }
    }
  return { data: y, shape: [n, oc, oh, ow] };
}

describe('Conv1d', () => {
  const cases: [string, P1][] = [
    ['plain', { stride: 1, padding: 0, dilation: 1, groups: 1 }],
    ['stride 2, pad 2, dilation 2, groups 2', { stride: 2, padding: 2, dilation: 2, groups: 2 }],
  ];
  for (const [name, p] of cases) {
    it(`${name}: forward and gradients match the float64 loops`, () => {
      const conv = new Conv1d(4, 6, 3, { ...p, seed: 2 });
      expect(conv.param('weight').shape).toEqual([6, 4 / p.groups, 3]);
      const x = randn([2, 4, 9], 1);
      const w = A(conv.param('weight'));
      const b = A(conv.param('bias'));
      expectClose(conv.apply(T(x)).dataSync(), conv1dRef(x, w, b, p).data, 1e-5, 1e-5);
      checkGrads(
        ([xt, wt, bt]) => conv1d(xt, wt, bt, p),
        ([xa, wa, ba]) => conv1dRef(xa, wa, ba, p),
        [x, w, b],
        5,
      );
    });
  }
  it('rejects bad shapes', () => {
    expect(() => new Conv1d(3, 4, 3, { groups: 2 })).toThrow(/multiple of groups/);
    expect(() => new Conv1d(3, 4, 3).apply(tf.zeros([1, 3, 4, 4]))).toThrow(/\[N, C, L\]/);
  });
});

describe('ConvTranspose2d and ConvTranspose1d', () => {
  const cases: [string, PT][] = [
    ['plain', { stride: [1, 1], padding: [0, 0], outputPadding: [0, 0], dilation: [1, 1], groups: 1 }],
    [
      'stride 2, output padding 1',
      { stride: [2, 2], padding: [1, 0], outputPadding: [1, 0], dilation: [1, 1], groups: 1 },
    ],
    [
      'dilation 2, padding 3 (crops), groups 2',
      { stride: [1, 2], padding: [3, 1], outputPadding: [0, 1], dilation: [2, 2], groups: 2 },
    ],
  ];
  for (const [name, p] of cases) {
    it(`${name}: forward and gradients match the scatter loops`, () => {
      const layer = new ConvTranspose2d(4, 6, [3, 2], { ...p, seed: 3 });
      expect(layer.param('weight').shape).toEqual([4, 6 / p.groups, 3, 2]);
      const x = randn([2, 4, 4, 3], 2);
      const w = A(layer.param('weight'));
      const b = A(layer.param('bias'));
      const ref = convTranspose2dRef(x, w, b, p);
      const y = layer.apply(T(x));
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.dataSync(), ref.data, 1e-5, 1e-5);
      checkGrads(
        ([xt, wt, bt]) => convTranspose2d(xt, wt, bt, p),
        ([xa, wa, ba]) => convTranspose2dRef(xa, wa, ba, p),
        [x, w, b],
        7,
      );
    });
  }
  it('1-D: equals the 2-D loops over a height of 1', () => {
    const p = { stride: 3, padding: 1, outputPadding: 2, dilation: 1, groups: 1 };
    const layer = new ConvTranspose1d(2, 3, 4, { ...p, seed: 4 });
    const x = randn([2, 2, 5], 3);
    const w = A(layer.param('weight'));
    const b = A(layer.param('bias'));
    const p2: PT = { stride: [1, 3], padding: [0, 1], outputPadding: [0, 2], dilation: [1, 1], groups: 1 };
    const ref = convTranspose2dRef(
      { data: x.data, shape: [2, 2, 1, 5] },
      { data: w.data, shape: [2, 3, 1, 4] },
      b,
      p2,
    );
    const y = layer.apply(T(x));
    expect(y.shape).toEqual([2, 3, ref.shape[3]]);
    expectClose(y.dataSync(), ref.data, 1e-5, 1e-5);
    checkGrads(
      ([xt, wt]) => convTranspose1d(xt, wt, undefined, p),
      ([xa, wa]) => {
        const r = convTranspose2dRef(
          { data: xa.data, shape: [2, 2, 1, 5] },
          { data: wa.data, shape: [2, 3, 1, 4] },
          undefined,
          p2,
        );
        return { data: r.data, shape: [2, 3, r.shape[3]] };
      },
      [x, w],
      8,
    );
  });
  it('rejects an output padding not below stride or dilation', () => {
    expect(() => new ConvTranspose2d(2, 2, 3, { stride: 2, outputPadding: 2 })).toThrow(/outputPadding/);
  });
});

interface P3 {
  stride: [number, number, number];
  padding: [number, number, number];
  dilation: [number, number, number];
  groups: number;
}

/** 3-D convolution in float64 loops: x [N, C, D, H, W], w [O, C/g, kd, kh, kw]. */
function conv3dRef(x: Arr, w: Arr, b: Arr | undefined, p: P3): Arr {
  const [n, c, ...sz] = x.shape;
  const [o, cg, ...k] = w.shape;
  const og = o / p.groups;
  const os = sz.map(
    (len, i) => Math.floor((len + 2 * p.padding[i] - p.dilation[i] * (k[i] - 1) - 1) / p.stride[i]) + 1,
  );
  const y = new Float64Array(n * o * os[0] * os[1] * os[2]);
  let at = 0;
  for (let b0 = 0; b0 < n; b0++)
    for (let oc = 0; oc < o; oc++)
      for (let i = 0; i < os[0]; i++)
        for (let j = 0; j < os[1]; j++)
          for (let l = 0; l < os[2]; l++) {
            let s = b ? b.data[oc] : 0;
            const g = Math.floor(oc / og);
            for (let ci = 0; ci < cg; ci++)
              for (let u = 0; u < k[0]; u++)
                for (let v = 0; v < k[1]; v++)
                  for (let t = 0; t < k[2]; t++) {
                    const z = i * p.stride[0] - p.padding[0] + u * p.dilation[0];
                    const yy = j * p.stride[1] - p.padding[1] + v * p.dilation[1];
                    const xx = l * p.stride[2] - p.padding[2] + t * p.dilation[2];
                    if (z < 0 || z >= sz[0] || yy < 0 || yy >= sz[1] || xx < 0 || xx >= sz[2]) continue;
                    s +=
                      x.data[(((b0 * c + g * cg + ci) * sz[0] + z) * sz[1] + yy) * sz[2] + xx] *
                      w.data[(((oc * cg + ci) * k[0] + u) * k[1] + v) * k[2] + t];
                  }
            y[at++] = s;
          }
  return { data: y, shape: [n, o, ...os] };
}

describe('Conv3d', () => {
  const cases: [string, P3][] = [
    ['plain', { stride: [1, 1, 1], padding: [0, 0, 0], dilation: [1, 1, 1], groups: 1 }],
    [
      'strides, padding, depth dilation, groups 2',
      { stride: [2, 1, 2], padding: [1, 0, 1], dilation: [2, 1, 1], groups: 2 },
    ],
  ];
  for (const [name, p] of cases) {
    it(`${name}: forward and gradients match the float64 loops`, () => {
      const conv = new Conv3d(2, 4, [3, 2, 2], { ...p, seed: 6 });
      expect(conv.param('weight').shape).toEqual([4, 2 / p.groups, 3, 2, 2]);
      const x = randn([1, 2, 5, 4, 4], 2);
      const w = A(conv.param('weight'));
      const b = A(conv.param('bias'));
      const ref = conv3dRef(x, w, b, p);
      const y = conv.apply(T(x));
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.dataSync(), ref.data, 1e-5, 1e-5);
      checkGrads(
        ([xt, wt, bt]) => conv3d(xt, wt, bt, p),
        ([xa, wa, ba]) => conv3dRef(xa, wa, ba, p),
        [x, w, b],
        3,
      );
    });
  }
});

interface PT3 {
  stride: [number, number, number];
  padding: [number, number, number];
  outputPadding: [number, number, number];
  dilation: [number, number, number];
  groups: number;
}

/** 3-D transposed convolution in float64 loops, as the scatter it is: x [N, I, D, H, W], w [I, O/g, kd, kh, kw]. */
function convTranspose3dRef(x: Arr, w: Arr, b: Arr | undefined, p: PT3): Arr {
  const [n, ic, ...sz] = x.shape;
  const [, og, ...k] = w.shape;
  const ig = ic / p.groups;
  const oc = og * p.groups;
  const os = sz.map(
    (len, i) =>
      (len - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (k[i] - 1) + p.outputPadding[i] + 1,
  );
  const plane = os[0] * os[1] * os[2];
  const y = new Float64Array(n * oc * plane);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < oc; o++)
      for (let q = 0; q < plane; q++) y[(b0 * oc + o) * plane + q] = b ? b.data[o] : 0;
  let at = 0;
  for (let b0 = 0; b0 < n; b0++)
    for (let ci = 0; ci < ic; ci++) {
      const g = Math.floor(ci / ig);
      for (let i = 0; i < sz[0]; i++)
        for (let j = 0; j < sz[1]; j++)
          for (let l = 0; l < sz[2]; l++) {
            const v = x.data[at++];
            for (let o = 0; o < og; o++)
              for (let u = 0; u < k[0]; u++)
                for (let e = 0; e < k[1]; e++)
                  for (let t = 0; t < k[2]; t++) {
                    const z = i * p.stride[0] - p.padding[0] + u * p.dilation[0];
                    const yy = j * p.stride[1] - p.padding[1] + e * p.dilation[1];
                    const xx = l * p.stride[2] - p.padding[2] + t * p.dilation[2];
                    if (z < 0 || z >= os[0] || yy < 0 || yy >= os[1] || xx < 0 || xx >= os[2]) continue;
                    y[(((b0 * oc + g * og + o) * os[0] + z) * os[1] + yy) * os[2] + xx] +=
                      v * w.data[(((ci * og + o) * k[0] + u) * k[1] + e) * k[2] + t];
                  }
          }
    }
  return { data: y, shape: [n, oc, ...os] };
}

describe('ConvTranspose3d', () => {
  const cases: [string, PT3][] = [
    [
      'plain',
      { stride: [1, 1, 1], padding: [0, 0, 0], outputPadding: [0, 0, 0], dilation: [1, 1, 1], groups: 1 },
    ],
    [
      'strides, output padding, depth dilation, a crop, groups 2',
      { stride: [2, 1, 2], padding: [2, 0, 1], outputPadding: [1, 0, 1], dilation: [2, 1, 1], groups: 2 },
    ],
  ];
  for (const [name, p] of cases) {
    it(`${name}: forward and gradients match the scatter loops`, () => {
      const layer = new ConvTranspose3d(2, 4, [2, 3, 2], { ...p, seed: 8 });
      expect(layer.param('weight').shape).toEqual([2, 4 / p.groups, 2, 3, 2]);
      const x = randn([1, 2, 3, 3, 2], 5);
      const w = A(layer.param('weight'));
      const b = A(layer.param('bias'));
      const ref = convTranspose3dRef(x, w, b, p);
      const y = layer.apply(T(x));
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.dataSync(), ref.data, 1e-5, 1e-5);
      checkGrads(
        ([xt, wt, bt]) => convTranspose3d(xt, wt, bt, p),
        ([xa, wa, ba]) => convTranspose3dRef(xa, wa, ba, p),
        [x, w, b],
        9,
      );
    });
  }
  it('rejects an output padding not below stride or dilation, and a padding that empties the output', () => {
    expect(() => new ConvTranspose3d(2, 2, 3, { stride: [1, 2, 1], outputPadding: [0, 2, 0] })).toThrow(
      /outputPadding \[0,2,0\] must be smaller/,
    );
    const layer = new ConvTranspose3d(1, 1, 1, { padding: [0, 0, 1] });
    expect(() => layer.apply(tf.zeros([1, 1, 2, 2, 1]))).toThrow(
      /convTranspose3d: padding leaves an empty output/,
    );
  });
});

describe('BatchNorm1d', () => {
  it('normalises [N, C] and [N, C, L] with batch statistics, torch names; eval uses running statistics', () => {
    const bn = new BatchNorm1d(3);
    expect(Object.keys(bn.stateDict())).toEqual([
      'weight',
      'bias',
      'running_mean',
      'running_var',
      'num_batches_tracked',
    ]);
    bn.param('weight').assign(tf.tensor1d([1, 2, 0.5]));
    bn.param('bias').assign(tf.tensor1d([0, -1, 3]));
    const gamma = A(bn.param('weight'));
    const beta = A(bn.param('bias'));
    for (const shape of [
      [6, 3],
      [4, 3, 5],
    ]) {
      const x = randn(shape, 5);
      const as4d = { data: x.data, shape: [shape[0], 3, 1, shape[2] ?? 1] };
      const ref = batchNormRef(as4d, gamma, beta, 1e-5);
      const y = bn.apply(T(x));
      expect(y.shape).toEqual(shape);
      expectClose(y.dataSync(), ref.y.data, 1e-4, 1e-4);
    }
    bn.eval();
    const rm = bn.buffer('running_mean').dataSync();
    const rv = bn.buffer('running_var').dataSync();
    const x = randn([2, 3], 9);
    const y = bn.apply(T(x)).dataSync();
    for (let i = 0; i < 6; i++) {
      const c = i % 3;
      expect(y[i]).toBeCloseTo(
        ((x.data[i] - rm[c]) / Math.sqrt(rv[c] + 1e-5)) * gamma.data[c] + beta.data[c],
        4,
      );
    }
    expect(() => bn.apply(tf.zeros([2, 4]))).toThrow(/BatchNorm1d/);
  });
});

describe('conv layer repr', () => {
  it('prints as PyTorch does: multi-axis sizes in brackets, one-axis sizes bare', () => {
    expect(new Conv1d(2, 4, 3, { stride: 2 }).extraRepr()).toBe(
      '2, 4, kernel=3, stride=2, padding=0, dilation=1, groups=1, bias=true',
    );
    expect(new Conv3d(2, 4, [1, 2, 3]).extraRepr()).toBe(
      '2, 4, kernel=[1,2,3], stride=[1,1,1], padding=[0,0,0], dilation=[1,1,1], groups=1, bias=true',
    );
    expect(new ConvTranspose2d(2, 4, 3, { stride: 2, outputPadding: 1, bias: false }).extraRepr()).toBe(
      '2, 4, kernel=[3,3], stride=[2,2], padding=[0,0], outputPadding=[1,1], dilation=[1,1], groups=1, bias=false',
    );
    expect(new ConvTranspose1d(2, 4, 3, { padding: 1 }).extraRepr()).toBe(
      '2, 4, kernel=3, stride=1, padding=1, outputPadding=0, dilation=1, groups=1, bias=true',
    );
  });
});
