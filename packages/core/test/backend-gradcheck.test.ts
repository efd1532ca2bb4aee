// Gradients computed by tfjs on wasm (with the kernels qbnn adds or replaces) against central
// finite differences of independent float64 implementations written here in plain JS.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gradientError, initBackend, numericGradient } from '../src/index.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Uniform values in [-1, 1), rounded to float32 so tfjs and the references see the same numbers. */
function randomF32(n: number, rnd: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale);
}

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

/** Output size and leading padding of one spatial dimension, as TensorFlow defines them. */
function geometry(inSize: number, k: number, s: number, pad: 'same' | 'valid' | [number, number]) {
  if (pad === 'same') {
    const out = Math.ceil(inSize / s);
    const total = Math.max((out - 1) * s + k - inSize, 0);
    return { out, before: Math.floor(total / 2) };
  }
  if (pad === 'valid') return { out: Math.floor((inSize - k) / s) + 1, before: 0 };
  return { out: Math.floor((inSize + pad[0] + pad[1] - k) / s) + 1, before: pad[0] };
}

interface Conv {
  n: number;
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pad: Pad;
}

function convGeometry(g: Conv) {
  const ph = g.pad === 'same' || g.pad === 'valid' ? g.pad : g.pad[1];
  const pw = g.pad === 'same' || g.pad === 'valid' ? g.pad : g.pad[2];
  const gh = geometry(g.h, g.kh, g.sh, ph);
  const gw = geometry(g.w, g.kw, g.sw, pw);
  return { oh: gh.out, ow: gw.out, top: gh.before, left: gw.before };
}

/** Direct NHWC convolution in float64; `depthwise` uses filter [kh, kw, c, m] -> c*m channels. */
function convRef(x: Float64Array, f: Float64Array, g: Conv, co: number, depthwise: boolean): Float64Array {
  const { oh, ow, top, left } = convGeometry(g);
  const outC = depthwise ? g.c * co : co;
  const y = new Float64Array(g.n * oh * ow * outC);
  for (let b = 0; b < g.n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let ki = 0; ki < g.kh; ki++) {
          const ih = i * g.sh + ki - top;
          if (ih < 0 || ih >= g.h) continue;
          for (let kj = 0; kj < g.kw; kj++) {
            const iw = j * g.sw + kj - left;
            if (iw < 0 || iw >= g.w) continue;
            for (let ci = 0; ci < g.c; ci++) {
              const xv = x[((b * g.h + ih) * g.w + iw) * g.c + ci];
              for (let o = 0; o < co; o++) {
                const fv = f[((ki * g.kw + kj) * g.c + ci) * co + o];
                const oc = depthwise ? ci * co + o : o;
                y[((b * oh + i) * ow + j) * outC + oc] += xv * fv;
              }
            }
          }
        }
  return y;
}

/** Max pooling (NHWC) in float64, windows clipped to the input as TensorFlow does. */
function maxPoolRef(x: Float64Array, g: Conv): Float64Array {
  const { oh, ow, top, left } = convGeometry(g);
  const y = new Float64Array(g.n * oh * ow * g.c).fill(Number.NEGATIVE_INFINITY);
  for (let b = 0; b < g.n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let ki = 0; ki < g.kh; ki++) {
          const ih = i * g.sh + ki - top;
          if (ih < 0 || ih >= g.h) continue;
          for (let kj = 0; kj < g.kw; kj++) {
            const iw = j * g.sw + kj - left;
            if (iw < 0 || iw >= g.w) continue;
            for (let c = 0; c < g.c; c++) {
              const o = ((b * oh + i) * ow + j) * g.c + c;
              y[o] = Math.max(y[o], x[((b * g.h + ih) * g.w + iw) * g.c + c]);
            }
          }
        }
  return y;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** tfjs gradients of `loss` at `values` (float32 tensors of the given shapes), on the active backend. */
function tfGrads(
  loss: (...xs: tf.Tensor[]) => tf.Scalar,
  values: Float32Array[],
  shapes: number[][],
): Float32Array[] {
  return tf.tidy(() => {
    const xs = values.map((v, i) => tf.tensor(v, shapes[i]));
    return tf
      .grads(loss)(xs)
      .map((t) => t.dataSync() as Float32Array);
  });
}

/** Split a flat float64 vector into pieces of the given sizes. */
function split(v: Float64Array, sizes: number[]): Float64Array[] {
  const out: Float64Array[] = [];
  let o = 0;
  for (const n of sizes) {
    out.push(v.subarray(o, o + n));
    o += n;
  }
  return out;
}

function concat(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(Array.from(p), o);
    o += p.length;
  }
  return out;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

beforeAll(async () => {
  expect((await initBackend()).backend).toBe('wasm');
});

describe('numericGradient', () => {
  it('matches a known analytic gradient to 1e-8', () => {
    const f = (x: Float64Array) => Math.sin(x[0]) * x[1] + x[2] ** 3 / 3 - Math.exp(x[1] * x[2]);
    const x = [0.3, -1.2, 0.7];
    const exact = [
      Math.cos(x[0]) * x[1],
      Math.sin(x[0]) - x[2] * Math.exp(x[1] * x[2]),
      x[2] ** 2 - x[1] * Math.exp(x[1] * x[2]),
    ];
    expect(gradientError(numericGradient(f, x), exact)).toBeLessThan(1e-8);
    // and detects a wrong one
    const scale = Math.max(...exact.map(Math.abs));
    expect(gradientError([exact[0], exact[1] + 0.01 * scale, exact[2]], exact)).toBeGreaterThan(5e-3);
  });
});

describe('conv2d gradients (Conv2DBackpropFilter added for wasm, BackpropInput)', () => {
  const geometries: [string, Conv, number][] = [
    ['stride 2, same', { n: 2, h: 7, w: 7, c: 3, kh: 3, kw: 3, sh: 2, sw: 2, pad: 'same' }, 4],
    ['stride 1, valid, 2x3 kernel', { n: 1, h: 6, w: 5, c: 2, kh: 2, kw: 3, sh: 1, sw: 1, pad: 'valid' }, 3],
    [
      'strides [2, 1], explicit asymmetric padding',
      {
        n: 2,
        h: 5,
        w: 6,
        c: 2,
        kh: 3,
        kw: 2,
        sh: 2,
        sw: 1,
        pad: [
          [0, 0],
          [1, 0],
          [2, 1],
          [0, 0],
        ],
      },
      3,
    ],
  ];
  it.each(geometries)('%s', (_name, g, co) => {
    const rnd = lcg(7 + co);
    const xShape = [g.n, g.h, g.w, g.c];
    const fShape = [g.kh, g.kw, g.c, co];
    const xv = randomF32(size(xShape), rnd);
    const fv = randomF32(size(fShape), rnd);
    const { oh, ow } = convGeometry(g);
    const r = randomF32(g.n * oh * ow * co, rnd);
    const rT = tf.tensor(r, [g.n, oh, ow, co]);
    // A nonlinear loss, so that the gradient is not a mere re-reading of the inputs.
    const [gx, gf] = tfGrads(
      (x, f) =>
        tf.sum(tf.mul(rT, tf.tanh(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, [g.sh, g.sw], g.pad)))),
      [xv, fv],
      [xShape, fShape],
    );
    rT.dispose();
    const loss = (v: Float64Array) => {
      const [x, f] = split(v, [xv.length, fv.length]);
      return dot(r, convRef(x, f, g, co, false).map(Math.tanh));
    };
    const fd = split(numericGradient(loss, concat([xv, fv])), [xv.length, fv.length]);
    expect(gradientError(gx, fd[0])).toBeLessThan(1e-4);
    expect(gradientError(gf, fd[1])).toBeLessThan(1e-4);
  });
});

describe('depthwise conv gradients (both backprops added for wasm)', () => {
  it.each([
    [
      'stride 2, same, multiplier 2',
      { n: 2, h: 6, w: 7, c: 3, kh: 3, kw: 3, sh: 2, sw: 2, pad: 'same' } as Conv,
      2,
    ],
    [
      'stride 1, valid, multiplier 1',
      { n: 1, h: 5, w: 5, c: 2, kh: 2, kw: 2, sh: 1, sw: 1, pad: 'valid' } as Conv,
      1,
    ],
  ])('%s', (_name, g, m) => {
    const rnd = lcg(99 + m);
    const xShape = [g.n, g.h, g.w, g.c];
    const fShape = [g.kh, g.kw, g.c, m];
    const xv = randomF32(size(xShape), rnd);
    const fv = randomF32(size(fShape), rnd);
    const { oh, ow } = convGeometry(g);
    const r = randomF32(g.n * oh * ow * g.c * m, rnd);
    const rT = tf.tensor(r, [g.n, oh, ow, g.c * m]);
    const [gx, gf] = tfGrads(
      (x, f) =>
        tf.sum(
          tf.mul(
            rT,
            tf.square(
              tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, [g.sh, g.sw], g.pad as 'same' | 'valid'),
            ),
          ),
        ),
      [xv, fv],
      [xShape, fShape],
    );
    rT.dispose();
    const loss = (v: Float64Array) => {
      const [x, f] = split(v, [xv.length, fv.length]);
      return dot(
        r,
        convRef(x, f, g, m, true).map((y) => y * y),
      );
    };
    const fd = split(numericGradient(loss, concat([xv, fv])), [xv.length, fv.length]);
    expect(gradientError(gx, fd[0])).toBeLessThan(1e-4);
    expect(gradientError(gf, fd[1])).toBeLessThan(1e-4);
  });
});

describe('max pooling gradient (MaxPoolGrad replaced on wasm)', () => {
  it.each([
    [
      '2x2 stride 2 valid on 6x4',
      { n: 2, h: 6, w: 4, c: 2, kh: 2, kw: 2, sh: 2, sw: 2, pad: 'valid' } as Conv,
    ],
    ['3x3 stride 2 same on 7x5', { n: 1, h: 7, w: 5, c: 3, kh: 3, kw: 3, sh: 2, sw: 2, pad: 'same' } as Conv],
    ['3x3 stride 1 same on 5x6', { n: 2, h: 5, w: 6, c: 1, kh: 3, kw: 3, sh: 1, sw: 1, pad: 'same' } as Conv],
  ])('%s', (_name, g) => {
    const rnd = lcg(g.h * 31 + g.w);
    const xShape = [g.n, g.h, g.w, g.c];
    // Distinct values (a shuffled grid) so that no window has a tie and finite differences are exact.
    const n = size(xShape);
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const xv = Float32Array.from(perm, (p) => (p - n / 2) / n);
    const { oh, ow } = convGeometry(g);
    const r = randomF32(g.n * oh * ow * g.c, rnd);
    const rT = tf.tensor(r, [g.n, oh, ow, g.c]);
    const [gx] = tfGrads(
      (x) =>
        tf.sum(
          tf.mul(rT, tf.maxPool(x as tf.Tensor4D, [g.kh, g.kw], [g.sh, g.sw], g.pad as 'same' | 'valid')),
        ),
      [xv],
      [xShape],
    );
    rT.dispose();
    const fd = numericGradient((x) => dot(r, maxPoolRef(x, g)), xv, 1e-7);
    expect(gradientError(gx, fd)).toBeLessThan(1e-4);
  });
});

describe('gather gradient (UnsortedSegmentSum added for wasm)', () => {
  it('accumulates repeated indices', () => {
    const rnd = lcg(5);
    const xv = randomF32(5 * 3, rnd);
    const idx = [4, 0, 4, 2, 0, 0];
    const r = randomF32(idx.length * 3, rnd);
    const rT = tf.tensor(r, [idx.length, 3]);
    const iT = tf.tensor1d(idx, 'int32');
    const [gx] = tfGrads((x) => tf.sum(tf.mul(rT, tf.square(tf.gather(x, iT)))), [xv], [[5, 3]]);
    tf.dispose([rT, iT]);
    const loss = (x: Float64Array) => {
      let s = 0;
      idx.forEach((row, k) => {
        for (let j = 0; j < 3; j++) s += r[k * 3 + j] * x[row * 3 + j] ** 2;
      });
      return s;
    };
    expect(gradientError(gx, numericGradient(loss, xv))).toBeLessThan(1e-4);
  });
});

describe('a small conv net: conv -> bias -> relu -> maxpool -> dense -> softmax cross-entropy', () => {
  it('has the gradient of its float64 reference in every parameter', () => {
    const rnd = lcg(2024);
    const g: Conv = { n: 3, h: 8, w: 8, c: 2, kh: 3, kw: 3, sh: 1, sw: 1, pad: 'same' };
    const co = 3;
    const classes = 3;
    const pool: Conv = { n: 3, h: 8, w: 8, c: co, kh: 2, kw: 2, sh: 2, sw: 2, pad: 'valid' };
    const flat = 4 * 4 * co;
    const shapes = [[g.n, g.h, g.w, g.c], [3, 3, g.c, co], [co], [flat, classes], [classes]];
    const values = shapes.map((s, i) => randomF32(size(s), rnd, i === 0 ? 1 : 0.5));
    const labels = [0, 2, 1];
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
    const [gx, gw1, gb1, gw2, gb2] = tfGrads(
      (x, w1, b1, w2, b2) => {
        const h = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'), b1));
        const p = tf.reshape(tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid'), [g.n, flat]);
        const logits = tf.add(tf.matMul(p as tf.Tensor2D, w2 as tf.Tensor2D), b2);
        return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
      },
      values,
      shapes,
    );
    oneHot.dispose();
    const sizes = values.map((v) => v.length);
    const loss = (v: Float64Array) => {
      const [x, w1, b1, w2, b2] = split(v, sizes);
      const h = convRef(x, w1, g, co, false).map((y, i) => Math.max(0, y + b1[i % co]));
      const p = maxPoolRef(h, pool);
      let total = 0;
      for (let b = 0; b < g.n; b++) {
        const logits = Array.from(b2);
        for (let k = 0; k < classes; k++)
          for (let i = 0; i < flat; i++) logits[k] += p[b * flat + i] * w2[i * classes + k];
        const m = Math.max(...logits);
        const lse = m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0));
        total += lse - logits[labels[b]];
      }
      return total / g.n;
    };
    const fd = split(numericGradient(loss, concat(values)), sizes);
    const analytic = [gx, gw1, gb1, gw2, gb2];
    analytic.forEach((a, i) => {
      expect(gradientError(a, fd[i])).toBeLessThan(2e-4);
    });
    // The reference is not trivially satisfied: perturbing one weight gradient is detected.
    const wrong = Float64Array.from(gw2);
    wrong[5] += 0.01 * Math.max(...fd[3].map(Math.abs));
    expect(gradientError(wrong, fd[3])).toBeGreaterThan(5e-3);
  });
});
