// Systematic check: the gradient of every op qbnn's layers use runs on wasm (so no kernel its
// backward pass needs is missing) and agrees with the same gradient on tfjs-backend-cpu, an
// independent implementation of every kernel.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/index.js';

/** Small deterministic pseudo-random numbers (an LCG), independent of tfjs's generators. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Input {
  shape: number[];
  /** Value range [lo, hi) of the uniform entries. */
  lo?: number;
  hi?: number;
}

interface Case {
  name: string;
  inputs: Input[];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

const c = (name: string, inputs: Input[], f: Case['f']): Case => ({ name, inputs, f });
const pos = (shape: number[]): Input => ({ shape, lo: 0.5, hi: 2 });
const any = (shape: number[]): Input => ({ shape, lo: -1.5, hi: 1.5 });
const x4 = any([2, 6, 6, 3]);

const cases: Case[] = [
  // Activations and elementwise maths
  c('relu', [any([3, 7])], (x) => tf.relu(x)),
  c('relu6', [{ shape: [3, 7], lo: -2, hi: 8 }], (x) => tf.relu6(x)),
  c('leakyRelu', [any([3, 7])], (x) => tf.leakyRelu(x, 0.1)),
  c('elu', [any([3, 7])], (x) => tf.elu(x)),
  c('selu', [any([3, 7])], (x) => tf.selu(x)),
  c('softplus', [any([3, 7])], (x) => tf.softplus(x)),
  c('sigmoid', [any([3, 7])], (x) => tf.sigmoid(x)),
  c('logSigmoid', [any([3, 7])], (x) => tf.logSigmoid(x)),
  c('tanh', [any([3, 7])], (x) => tf.tanh(x)),
  c('log', [pos([3, 7])], (x) => tf.log(x)),
  c('log1p', [pos([3, 7])], (x) => tf.log1p(x)),
  c('exp', [any([3, 7])], (x) => tf.exp(x)),
  c('expm1', [any([3, 7])], (x) => tf.expm1(x)),
  c('sqrt', [pos([3, 7])], (x) => tf.sqrt(x)),
  c('rsqrt', [pos([3, 7])], (x) => tf.rsqrt(x)),
  c('square', [any([3, 7])], (x) => tf.square(x)),
  c('abs', [any([3, 7])], (x) => tf.abs(x)),
  c('reciprocal', [pos([3, 7])], (x) => tf.reciprocal(x)),
  c('pow', [pos([3, 7]), any([3, 7])], (x, y) => tf.pow(x, y)),
  c('clipByValue', [any([3, 7])], (x) => tf.clipByValue(x, -0.5, 0.7)),
  c('sin cos', [any([3, 7])], (x) => tf.mul(tf.sin(x), tf.cos(x))),
  c('erf', [any([3, 7])], (x) => tf.erf(x)),
  // Broadcasting binary ops
  c('add/sub broadcast', [any([4, 5]), any([5])], (x, y) => tf.sub(tf.add(x, y), tf.mul(y, 2))),
  c('mul broadcast', [any([4, 5]), any([4, 1])], (x, y) => tf.mul(x, y)),
  c('div broadcast', [any([4, 5]), pos([5])], (x, y) => tf.div(x, y)),
  c('maximum/minimum', [any([4, 5]), any([4, 5])], (x, y) => tf.add(tf.maximum(x, y), tf.minimum(x, y))),
  c('squaredDifference', [any([4, 5]), any([4, 5])], (x, y) => tf.squaredDifference(x, y)),
  c('where', [any([4, 5]), any([4, 5])], (x, y) => tf.where(tf.greater(x, y), tf.mul(x, y), tf.neg(y))),
  // Reductions and normalisers
  c('sum axis', [any([3, 4, 5])], (x) => tf.sum(x, 1)),
  c('mean axes', [any([3, 4, 5])], (x) => tf.mean(x, [0, 2], true)),
  c('max', [any([3, 8])], (x) => tf.max(x, 1)),
  c('min', [any([3, 8])], (x) => tf.min(x, 0)),
  c('prod', [pos([3, 4])], (x) => tf.prod(x, 1)),
  c('logSumExp', [any([3, 8])], (x) => tf.logSumExp(x, 1)),
  c('softmax', [any([3, 8])], (x) => tf.softmax(x)),
  c('logSoftmax', [any([3, 8])], (x) => tf.logSoftmax(x)),
  c('cumsum', [any([3, 6])], (x) => tf.cumsum(x, 1)),
  c('moments normalise', [any([4, 3, 3, 5])], (x) => {
    const { mean, variance } = tf.moments(x, [0, 1, 2], true);
    return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-3)));
  }),
  c('batchNorm', [x4, any([3]), pos([3]), any([3]), pos([3])], (x, m, v, b, g) =>
    tf.batchNorm(x, m, v, b, g, 1e-3),
  ),
  // Linear algebra
  c('matMul', [any([4, 6]), any([6, 5])], (a, b) => tf.matMul(a, b)),
  c('matMul transposed', [any([6, 4]), any([5, 6])], (a, b) => tf.matMul(a, b, true, true)),
  c('batched matMul', [any([2, 3, 4]), any([2, 4, 5])], (a, b) => tf.matMul(a, b)),
  c('matMul transposeA', [any([6, 4]), any([6, 5])], (a, b) => tf.matMul(a, b, true, false)),
  c('matMul transposeB', [any([4, 6]), any([5, 6])], (a, b) => tf.matMul(a, b, false, true)),
  // (tfjs-core's MatMul gradient does not reduce a broadcast batch dimension: same batch here.)
  c('batched matMul transposed', [any([2, 4, 3]), any([2, 5, 4])], (a, b) => tf.matMul(a, b, true, true)),
  c('fused matMul transposed + bias + relu', [any([6, 4]), any([5, 6]), any([5])], (a, b, bias) =>
    tf.fused.matMul({
      a: a as tf.Tensor2D,
      b: b as tf.Tensor2D,
      transposeA: true,
      transposeB: true,
      bias,
      activation: 'relu',
    }),
  ),
  // Convolutions and pooling
  c('conv2d valid', [x4, any([3, 3, 3, 4])], (x, w) =>
    tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'),
  ),
  c('conv2d stride 2 same', [x4, any([3, 3, 3, 4])], (x, w) =>
    tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'),
  ),
  c('conv2d explicit pad', [any([2, 5, 6, 2]), any([2, 3, 2, 3])], (x, w) =>
    tf.conv2d(
      x as tf.Tensor4D,
      w as tf.Tensor4D,
      [2, 1],
      [
        [0, 0],
        [1, 0],
        [2, 1],
        [0, 0],
      ],
    ),
  ),
  c('conv2d 1x1', [x4, any([1, 1, 3, 5])], (x, w) =>
    tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'),
  ),
  c('fused conv2d + bias + relu', [x4, any([3, 3, 3, 4]), any([4])], (x, w, b) =>
    tf.fused.conv2d({
      x: x as tf.Tensor4D,
      filter: w as tf.Tensor4D,
      strides: 1,
      pad: 'same',
      bias: b,
      activation: 'relu',
    }),
  ),
  c('fused matMul + bias + relu', [any([4, 6]), any([6, 5]), any([5])], (a, b, bias) =>
    tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu' }),
  ),
  c('conv1d', [any([2, 9, 3]), any([3, 3, 4])], (x, w) =>
    tf.conv1d(x as tf.Tensor3D, w as tf.Tensor3D, 2, 'same'),
  ),
  c('conv2dTranspose', [any([2, 3, 3, 4]), any([3, 3, 2, 4])], (x, w) =>
    tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [2, 6, 6, 2], 2, 'same'),
  ),
  c('depthwiseConv2d', [x4, any([3, 3, 3, 2])], (x, w) =>
    tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'),
  ),
  c('depthwiseConv2d valid', [x4, any([2, 2, 3, 1])], (x, w) =>
    tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'),
  ),
  c('separableConv2d', [x4, any([3, 3, 3, 2]), any([1, 1, 6, 4])], (x, dw, pw) =>
    tf.separableConv2d(x as tf.Tensor4D, dw as tf.Tensor4D, pw as tf.Tensor4D, 1, 'same'),
  ),
  c('grouped conv (split, conv, concat)', [any([2, 5, 5, 4]), any([3, 3, 2, 6])], (x, w) => {
    const xs = tf.split(x, 2, 3);
    const ws = tf.split(w, 2, 3);
    return tf.concat(
      xs.map((xi, i) => tf.conv2d(xi as tf.Tensor4D, ws[i] as tf.Tensor4D, 1, 'same')),
      3,
    );
  }),
  c('maxPool', [x4], (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid')),
  c('maxPool same stride 1', [x4], (x) => tf.maxPool(x as tf.Tensor4D, 3, 1, 'same')),
  c('avgPool', [x4], (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'same')),
  c('avgPool 3 stride 2 valid', [x4], (x) => tf.avgPool(x as tf.Tensor4D, 3, 2, 'valid')),
  // Shape and indexing ops
  c('reshape transpose', [any([2, 3, 4])], (x) => tf.transpose(tf.reshape(x, [6, 4]), [1, 0])),
  c('slice concat', [any([4, 5])], (x) => tf.concat([tf.slice(x, [1, 0], [2, 5]), x], 0)),
  c('pad', [any([3, 4])], (x) =>
    tf.pad(
      x,
      [
        [1, 2],
        [0, 1],
      ],
      0.5,
    ),
  ),
  c('mirrorPad', [any([3, 4])], (x) =>
    tf.mirrorPad(
      x as tf.Tensor2D,
      [
        [1, 1],
        [2, 0],
      ],
      'reflect',
    ),
  ),
  c('tile', [any([2, 3])], (x) => tf.tile(x, [2, 3])),
  c('stack unstack', [any([3, 4])], (x) => tf.stack(tf.unstack(x).reverse(), 1)),
  c('gather (UnsortedSegmentSum in backward)', [any([5, 3])], (x) =>
    tf.gather(x, tf.tensor1d([4, 0, 4, 2, 0, 0], 'int32')),
  ),
  c('unsortedSegmentSum', [any([6, 3])], (x) =>
    tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 1, 0, 3], 'int32'), 4),
  ),
  c('expandDims squeeze', [any([3, 1, 4])], (x) => tf.expandDims(tf.squeeze(x, [1]), 0)),
  c('broadcastTo', [any([1, 4])], (x) => tf.broadcastTo(x, [3, 4])),
  c('reverse', [any([3, 4])], (x) => tf.reverse(x, 1)),
  c('dropout-style mask', [any([4, 5])], (x) =>
    tf.mul(x, tf.cast(tf.greater(tf.sin(tf.mul(x, 7)), 0), 'float32')),
  ),
  c('cross-entropy loss', [any([4, 5])], (x) =>
    tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 3, 1, 4], 'int32'), 5), x),
  ),
];

// A sweep of pooling and convolution geometries (odd sizes, strides 1-3, both paddings): wasm's
// MaxPoolGrad was found wrong on some of them, so every geometry is compared.
for (const [h, w] of [
  [6, 4],
  [5, 7],
  [7, 7],
]) {
  for (const k of [2, 3]) {
    for (const s of [1, 2, 3]) {
      for (const pad of ['valid', 'same'] as const) {
        const x = any([2, h, w, 3]);
        const tag = `${h}x${w} k${k} s${s} ${pad}`;
        cases.push(c(`maxPool ${tag}`, [x], (t) => tf.maxPool(t as tf.Tensor4D, k, s, pad)));
        cases.push(c(`avgPool ${tag}`, [x], (t) => tf.avgPool(t as tf.Tensor4D, k, s, pad)));
        cases.push(
          c(`conv2d ${tag}`, [x, any([k, k, 3, 2])], (t, f) =>
            tf.conv2d(t as tf.Tensor4D, f as tf.Tensor4D, s, pad),
          ),
        );
        cases.push(
          c(`depthwiseConv2d ${tag}`, [x, any([k, k, 3, 2])], (t, f) =>
            tf.depthwiseConv2d(t as tf.Tensor4D, f as tf.Tensor4D, s, pad),
          ),
        );
      }
    }
  }
}

interface Prepared {
  values: Float32Array[];
  r: Float32Array;
  outShape: number[];
}

/** Gradient of sum(r * f(xs)) with respect to every input, on the active backend. */
function gradsOnActive(cs: Case, p: Prepared): Float32Array[] {
  return tf.tidy(() => {
    const xs = cs.inputs.map((inp, i) => tf.tensor(p.values[i], inp.shape));
    const r = tf.tensor(p.r, p.outShape);
    const g = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(r, cs.f(...args))))(xs);
    return g.map((t) => t.dataSync() as Float32Array);
  });
}

function prepare(cs: Case, seed: number): Prepared {
  const rnd = lcg(seed);
  const values = cs.inputs.map((inp) => {
    const n = inp.shape.reduce((a, b) => a * b, 1);
    const lo = inp.lo ?? -1;
    const hi = inp.hi ?? 1;
    return Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
  });
  const outShape = tf.tidy(() => cs.f(...cs.inputs.map((inp, i) => tf.tensor(values[i], inp.shape))).shape);
  const rn = outShape.reduce((a, b) => a * b, 1);
  const r = Float32Array.from({ length: rn }, () => rnd() * 2 - 1);
  return { values, r, outShape };
}

beforeAll(async () => {
  const info = await initBackend();
  expect(info.backend).toBe('wasm');
});

describe('gradients on wasm agree with tfjs-backend-cpu', () => {
  it.each(cases.map((cs, i) => [cs.name, cs, i] as const))('%s', async (_name, cs, i) => {
    await tf.setBackend('wasm');
    const p = prepare(cs, 1000 + i);
    const onWasm = gradsOnActive(cs, p);
    await tf.setBackend('cpu');
    const onCpu = gradsOnActive(cs, p);
    await tf.setBackend('wasm');
    compare(onWasm, onCpu, cs.inputs.length);
  });
});

function compare(onWasm: Float32Array[], onCpu: Float32Array[], n: number): void {
  expect(onWasm.length).toBe(n);
  for (let k = 0; k < onWasm.length; k++) {
    const a = onWasm[k];
    const b = onCpu[k];
    expect(a.length).toBe(b.length);
    let scale = 1e-6;
    for (const v of b) scale = Math.max(scale, Math.abs(v));
    let err = 0;
    for (let j = 0; j < a.length; j++) err = Math.max(err, Math.abs(a[j] - b[j]));
    expect(Number.isFinite(err)).toBe(true);
    // Both are float32; different summation orders give a few ulps of the largest value.
    expect(err / scale).toBeLessThan(2e-5);
    // A gradient that is identically zero would pass trivially: none of these cases has one.
    expect(scale).toBeGreaterThan(1e-3);
  }
}

describe('forward results of the kernels qbnn adds to wasm agree with tfjs-backend-cpu', () => {
  const forward: Case[] = [
    c('einsum matmul', [any([3, 4]), any([4, 5])], (a, b) => tf.einsum('ij,jk->ik', a, b)),
    c('einsum batched', [any([2, 3, 4]), any([2, 4, 5])], (a, b) => tf.einsum('bij,bjk->bik', a, b)),
    c('unsortedSegmentSum', [any([6, 3])], (x) =>
      tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 1, 0, 3], 'int32'), 4),
    ),
    c('unsortedSegmentSum int32, ids out of range dropped', [any([6, 3])], (x) =>
      tf.unsortedSegmentSum(tf.cast(tf.mul(x, 10), 'int32'), tf.tensor1d([2, -1, 2, 5, 0, 3], 'int32'), 4),
    ),
    c('where on greater (zero gradient of Greater)', [any([4, 5])], (x) =>
      tf.where(tf.greater(x, 0), x, tf.mul(x, 0.1)),
    ),
  ];
  it.each(forward.map((cs, i) => [cs.name, cs, i] as const))('%s', async (_name, cs, i) => {
    const p = prepare(cs, 5000 + i);
    const run = () =>
      tf.tidy(
        () =>
          cs.f(...cs.inputs.map((inp, k) => tf.tensor(p.values[k], inp.shape))).dataSync() as Float32Array,
      );
    await tf.setBackend('wasm');
    const a = run();
    await tf.setBackend('cpu');
    const b = run();
    await tf.setBackend('wasm');
    compare([a], [b], 1);
  });
});
