// The native fp32 kernels against independent references: tfjs-backend-cpu running the same tfjs
// op (forward kernels), float64 brute-force loops with central finite differences (gradients),
// and the kernels' own invariants (bit-identical across thread counts and microkernels).
//
// Float tolerance: |native - reference| <= 2e-6 * sqrt(K) * (1 + |reference|) for a reduction of
// length K (fp32 rounding of a fused multiply-add chain), and 4 ulp for the element-wise maths.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { rng } from '../../core/test/kernel-cases.js';
import { addon } from '../src/binding.js';
import {
  disableNativeFloatKernels,
  enableNativeFloatKernels,
  fp32PeakGflops,
  nativeAvailable,
  setThreads,
  threadCpuTime,
} from '../src/index.js';
import { withNativeFloatKernels } from './helpers.js';

const native = nativeAvailable && addon!.fp32.info().avx512;
const d = native ? describe : describe.skip;

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => r() * 2 - 1),
    shape,
  );
}

/** Runs `f` on tfjs-backend-cpu and on wasm with the native kernels; returns both results. */
async function onBoth(f: () => tf.Tensor): Promise<{ cpu: Float32Array; wasm: Float32Array }> {
  await tf.setBackend('cpu');
  const cpu = f().dataSync() as Float32Array;
  await tf.setBackend('wasm');
  const wasm = f().dataSync() as Float32Array;
  return { cpu: Float32Array.from(cpu), wasm: Float32Array.from(wasm) };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, k: number): void {
  expect(got.length).toBe(want.length);
  const tol = 2e-6 * Math.sqrt(Math.max(1, k));
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  expect(worst).toBeLessThanOrEqual(tol);
}

/** Tensor values made at a given backend (inputs are created per backend by `onBoth`). */
function vals(seed: number, shape: number[]): () => tf.Tensor {
  return () => randomTensor(shape, seed);
}

d('native fp32 kernels for tfjs-backend-wasm', () => {
  withNativeFloatKernels();

  test('are installed and reported to core', async () => {
    const { floatKernelSet } = await import('@qbnn/core');
    expect(floatKernelSet()?.kernels).toEqual(
      expect.arrayContaining(['Conv2D', 'BatchMatMul', 'MaxPoolGrad']),
    );
  });

  test.each([
    [1, 1, 1, false, false],
    [7, 13, 5, false, false],
    [33, 65, 17, true, false],
    [12, 300, 40, false, true],
    [97, 257, 33, true, true],
    // b transposed and much larger than a (a linear layer's x W^T): run as (W x^T)^T
    [5, 300, 70, false, true],
    [6, 200, 90, true, true],
    // LeNet-5's fc1 at batch 32: W [500, 800] read in place by the microkernel (rows 3.2 KB
    // apart, K in blocks of 256 and a tail), not packed
    [32, 800, 500, false, true],
  ])(
    'matMul %i x %i x %i (transposeA %s, transposeB %s) matches tfjs-backend-cpu',
    async (m, k, n, ta, tb) => {
      const a = vals(1, ta ? [k, m] : [m, k]);
      const b = vals(2, tb ? [n, k] : [k, n]);
      const r = await onBoth(() => tf.matMul(a(), b(), ta, tb));
      expectClose(r.wasm, r.cpu, k);
    },
  );

  test('batched and broadcast matMul, fused bias + relu / leaky relu', async () => {
    let r = await onBoth(() => tf.matMul(vals(3, [3, 5, 7])(), vals(4, [3, 7, 4])()));
    expectClose(r.wasm, r.cpu, 7);
    r = await onBoth(() => tf.matMul(vals(3, [3, 5, 7])(), vals(4, [1, 7, 4])()));
    expectClose(r.wasm, r.cpu, 7);
    for (const activation of ['relu', 'leakyrelu', 'relu6', 'sigmoid'] as const) {
      r = await onBoth(() =>
        tf.fused.matMul({ a: vals(5, [9, 30])(), b: vals(6, [30, 11])(), bias: vals(7, [11])(), activation }),
      );
      expectClose(r.wasm, r.cpu, 30);
      // the transposed-product route (b transposed, much larger than a) applies the epilogue too
      r = await onBoth(() =>
        tf.fused.matMul({
          a: vals(5, [3, 40])(),
          b: vals(6, [70, 40])(),
          transposeB: true,
          bias: vals(7, [70])(),
          activation,
        }),
      );
      expectClose(r.wasm, r.cpu, 40);
    }
  });

  test('matMul of empty batches and broadcast outer shapes: tfjs-backend-cpu shapes and values', async () => {
    // a [2, 3, 4] times b [1, 1, 4, 5] was an 'out holds 15 floats' RangeError, a [1, 1, 3, 4] times
    // b [2, 4, 5] a [2, 3, 5] result (tfjs: [1, 2, 3, 5]), a batch of 0 a RangeError
    const cases: [number[], number[]][] = [
      [
        [2, 3, 4],
        [1, 1, 4, 5],
      ],
      [
        [1, 1, 3, 4],
        [2, 4, 5],
      ],
      [
        [1, 3, 4],
        [3, 4, 5],
      ],
      [
        [0, 3, 4],
        [0, 4, 5],
      ],
      [
        [0, 3, 4],
        [4, 5],
      ],
      [
        [2, 0, 4],
        [2, 4, 5],
      ],
      [
        [3, 4],
        [4, 0],
      ],
      [
        [3, 0],
        [0, 5],
      ],
    ];
    for (const [as, bs] of cases) {
      const shapes: number[][] = [];
      for (const b of ['wasm', 'cpu']) {
        await tf.setBackend(b);
        shapes.push(tf.matMul(vals(8, as)(), vals(9, bs)()).shape);
      }
      // (tfjs-backend-cpu's [0, 3, 4] x [4, 5] has shape [0, 3, 5] but 15 values: only shapes there)
      if (shapes[1].every((d) => d > 0)) {
        const r = await onBoth(() => tf.matMul(vals(8, as)(), vals(9, bs)()));
        expectClose(r.wasm, r.cpu, 5);
      }
      expect(shapes[0], `[${as}] x [${bs}]`).toEqual(shapes[1]);
    }
  });

  test('sums of empty tensors are 0, as tfjs-backend-cpu', async () => {
    // tfjs-backend-wasm's Sum left an empty reduction's output as it found the memory (3.6e-41 ...)
    for (const [shape, axis] of [
      [[3, 0], undefined],
      [[3, 0], -1],
      [[0], 0],
      [[0, 4], 0],
      [
        [2, 0, 3],
        [0, 1],
      ],
    ] as [number[], number | number[] | undefined][]) {
      for (const keepDims of [false, true]) {
        const r = await onBoth(() => tf.sum(tf.zeros(shape).add(1), axis, keepDims));
        expect(Array.from(r.wasm), `[${shape}] axis ${axis}`).toEqual(Array.from(r.cpu));
      }
    }
  });

  const geometries: [
    string,
    number[],
    number[],
    number | [number, number],
    'valid' | 'same' | number,
    number | [number, number],
  ][] = [
    // name, x [n, h, w, ci], filter [fh, fw, ci, co], strides, pad, dilation
    ['LeNet conv 1', [2, 28, 28, 1], [5, 5, 1, 20], 1, 'valid', 1],
    ['odd sizes, same padding', [1, 9, 7, 3], [3, 3, 3, 5], 1, 'same', 1],
    ['stride 2, valid', [3, 11, 10, 4], [3, 2, 4, 6], 2, 'valid', 1],
    ['stride (2, 3), explicit pad 1', [2, 8, 9, 2], [3, 3, 2, 3], [2, 3], 1, 1],
    ['dilation 2, same', [1, 10, 10, 2], [3, 3, 2, 4], 1, 'same', 2],
    ['1x1, batch 1', [1, 5, 5, 7], [1, 1, 7, 33], 1, 'valid', 1],
    // stride 1 runs on shifted rows of a padded plane: uneven and over-wide padding
    ['even kernel, same (padding 1 before, 2 after)', [2, 6, 7, 3], [4, 4, 3, 5], 1, 'same', 1],
    ['1x1 with padding 1 (wider than the kernel)', [1, 4, 5, 2], [1, 1, 2, 3], 1, 1, 1],
    ['dilation (2, 3), padding 2, 40 channels', [2, 9, 11, 40], [3, 3, 40, 7], 1, 2, [2, 3]],
  ];

  test.each(geometries)('conv2d %s matches tfjs-backend-cpu', async (_name, xs, fs, s, pad, dil) => {
    const r = await onBoth(() =>
      tf.conv2d(vals(8, xs)() as tf.Tensor4D, vals(9, fs)() as tf.Tensor4D, s, pad, 'NHWC', dil),
    );
    expectClose(r.wasm, r.cpu, fs[0] * fs[1] * fs[2]);
  });

  // The same geometries on NCHW data (PyTorch's layout, which @qbnn/nn's layers run on).
  test.each(geometries)('conv2d NCHW %s matches tfjs-backend-cpu', async (_name, xs, fs, s, pad, dil) => {
    const nchw = [xs[0], xs[3], xs[1], xs[2]];
    const r = await onBoth(() =>
      tf.conv2d(vals(8, nchw)() as tf.Tensor4D, vals(9, fs)() as tf.Tensor4D, s, pad, 'NCHW', dil),
    );
    expectClose(r.wasm, r.cpu, fs[0] * fs[1] * fs[2]);
  });

  test('fused conv2d NCHW with a per-channel bias (linear and relu)', async () => {
    for (const activation of ['linear', 'relu'] as const) {
      const r = await onBoth(() =>
        tf.fused.conv2d({
          x: vals(13, [2, 3, 7, 6])() as tf.Tensor4D,
          filter: vals(14, [3, 3, 3, 5])() as tf.Tensor4D,
          strides: [1, 2],
          pad: 1,
          dataFormat: 'NCHW',
          bias: vals(15, [5])(),
          activation,
        }),
      );
      expectClose(r.wasm, r.cpu, 27);
    }
  });

  test('fused conv2d NHWC with bias and relu', async () => {
    const r = await onBoth(() =>
      tf.fused.conv2d({
        x: vals(10, [2, 7, 7, 3])() as tf.Tensor4D,
        filter: vals(11, [3, 3, 3, 8])() as tf.Tensor4D,
        strides: 1,
        pad: 'same',
        bias: vals(12, [8])(),
        activation: 'relu',
      }),
    );
    expectClose(r.wasm, r.cpu, 27);
  });

  // Gradients: a float64 brute-force convolution, L = sum(r * conv(x, w)), differentiated by central
  // differences, against tfjs's gradient on wasm (Conv2DBackpropInput / Filter served natively).
  function conv64(
    x: Float64Array,
    w: Float64Array,
    xs: number[],
    fs: number[],
    s: [number, number],
    p: [number, number],
    o: [number, number],
  ): Float64Array {
    const [n, h, wd, ci] = xs;
    const [fh, fw, , co] = fs;
    const y = new Float64Array(n * o[0] * o[1] * co);
    for (let b = 0; b < n; b++)
      for (let i = 0; i < o[0]; i++)
        for (let j = 0; j < o[1]; j++)
          for (let kh = 0; kh < fh; kh++)
            for (let kw = 0; kw < fw; kw++) {
              const ih = i * s[0] + kh - p[0];
              const iw = j * s[1] + kw - p[1];
              if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
              for (let c = 0; c < ci; c++) {
                const xv = x[((b * h + ih) * wd + iw) * ci + c];
                for (let q = 0; q < co; q++)
                  y[((b * o[0] + i) * o[1] + j) * co + q] += xv * w[((kh * fw + kw) * ci + c) * co + q];
              }
            }
    return y;
  }

  // NCHW runs the same problem on transposed data; gradients are transposed back to NHWC. A
  // numeric padding is given explicitly (tfjs's numeric padding sizes the width with the
  // filter's height and stride).
  const toNchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]) as tf.Tensor4D;
  const toNhwc = (t: tf.Tensor) => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
  test.each(
    (
      [
        ['stride 1, valid', [2, 6, 5, 2], [3, 3, 2, 3], [1, 1], 'valid'],
        ['stride 2, same', [1, 7, 6, 3], [3, 2, 3, 2], [2, 2], 'same'],
        ['odd, stride (1, 2), pad 1', [3, 5, 7, 1], [2, 3, 1, 4], [1, 2], 1],
        ['batch 1, 5x5 pad 2 (LeNet-like)', [1, 9, 8, 3], [5, 5, 3, 4], [1, 1], 2],
        ['even kernel, same (padding 1 before, 2 after)', [2, 6, 7, 2], [4, 4, 2, 3], [1, 1], 'same'],
        ['1x1, pad 1 (wider than the kernel)', [3, 4, 5, 2], [1, 1, 2, 3], [1, 1], 1],
        ['17 images (filter-gradient chunks), 3x3 pad 1', [17, 5, 4, 3], [3, 3, 3, 7], [1, 1], 1],
        // NCHW: chunks of 5 images, swept by the kernel as groups of 4 and 1
        ['70 images (filter-gradient groups), 3x3 pad 1', [70, 3, 3, 2], [3, 3, 2, 3], [1, 1], 1],
      ] as [string, number[], number[], [number, number], 'valid' | 'same' | number][]
    ).flatMap(([name, ...rest]) =>
      (['NHWC', 'NCHW'] as const).map((layout) => [`${name}, ${layout}`, ...rest, layout] as const),
    ),
  )('conv2d gradients (%s) match float64 finite differences', async (_name, xs, fs, s, padding, layout) => {
    await tf.setBackend('wasm');
    const x = randomTensor(xs, 21) as tf.Tensor4D;
    const w = randomTensor(fs, 22) as tf.Tensor4D;
    const nhwcPad: tf.backend_util.ExplicitPadding | 'valid' | 'same' =
      typeof padding === 'number'
        ? [
            [0, 0],
            [padding, padding],
            [padding, padding],
            [0, 0],
          ]
        : padding;
    const pad = nhwcPad;
    const conv = (a: tf.Tensor4D, b: tf.Tensor4D) =>
      layout === 'NHWC'
        ? tf.conv2d(a, b, s, nhwcPad)
        : toNhwc(
            tf.conv2d(
              toNchw(a),
              b,
              s,
              typeof nhwcPad === 'string' ? nhwcPad : [nhwcPad[0], nhwcPad[3], nhwcPad[1], nhwcPad[2]],
              'NCHW',
            ),
          );
    const y0 = conv(x, w);
    const ci = tf.backend_util.computeConv2DInfo(
      xs as [number, number, number, number],
      fs as [number, number, number, number],
      s,
      1,
      pad,
    );
    const o: [number, number] = [ci.outHeight, ci.outWidth];
    const p: [number, number] = [ci.padInfo.top, ci.padInfo.left];
    const rv = randomTensor(y0.shape, 23);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), rv)),
    )([x, w]);
    const r64 = Float64Array.from(rv.dataSync());
    const x64 = Float64Array.from(x.dataSync());
    const w64 = Float64Array.from(w.dataSync());
    const loss = (xx: Float64Array, ww: Float64Array) =>
      conv64(xx, ww, xs, fs, s, p, o).reduce((acc, v, i) => acc + v * r64[i], 0);
    const fd = (v: Float64Array, f: (z: Float64Array) => number) =>
      v.map((_, i) => {
        const z = Float64Array.from(v);
        z[i] += 1e-3;
        const up = f(z);
        z[i] -= 2e-3;
        return (up - f(z)) / 2e-3;
      });
    expectClose(
      gx.dataSync(),
      fd(x64, (z) => loss(z, w64)),
      fs[0] * fs[1] * fs[3],
    );
    expectClose(
      gw.dataSync(),
      fd(w64, (z) => loss(x64, z)),
      xs[0] * o[0] * o[1],
    );
  });

  test.each([
    ['max 2x2 stride 2', 'max', [2, 6, 5, 3], 2, 2, 'valid'],
    ['max 3x3 stride 1 same (overlapping)', 'max', [1, 5, 6, 2], 3, 1, 'same'],
    ['avg 2x2 stride 2', 'avg', [2, 6, 6, 3], 2, 2, 'valid'],
    ['avg 3x3 stride 2 same', 'avg', [1, 7, 5, 2], 3, 2, 'same'],
    ['max 2x2 stride 2, one channel, odd size', 'max', [5, 7, 9, 1], 2, 2, 'valid'],
    ['max 3x3 stride 2 same, one channel', 'max', [3, 8, 7, 1], 3, 2, 'same'],
    [
      'max 2x2 stride 2, one channel, 37 wide (16-window steps and a tail)',
      'max',
      [3, 10, 37, 1],
      2,
      2,
      'valid',
    ],
  ] as [string, 'max' | 'avg', number[], number, number, 'valid' | 'same'][])(
    'pooling %s and its gradient match tfjs-backend-cpu',
    async (_name, kind, xs, k, s, pad) => {
      const pool = (x: tf.Tensor) =>
        kind === 'max' ? tf.maxPool(x as tf.Tensor4D, k, s, pad) : tf.avgPool(x as tf.Tensor4D, k, s, pad);
      let r = await onBoth(() => pool(vals(30, xs)()));
      expectClose(r.wasm, r.cpu, k * k);
      r = await onBoth(() => {
        const x = vals(30, xs)();
        const dy = randomTensor(pool(x).shape, 31);
        return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(pool(v), dy)))(x);
      });
      expectClose(r.wasm, r.cpu, k * k);
    },
  );

  test('2x2 max pooling of one-channel images: ties, signed zeros and NaN as tfjs-backend-cpu', async () => {
    // Windows (row-major): a tie, -0 before +0, a NaN first, a NaN last, +inf, and plain values.
    const x = [
      1,
      1,
      0,
      -0,
      Number.NaN,
      2,
      3,
      3,
      1,
      1,
      -0,
      0,
      2,
      2,
      3,
      Number.NaN,
      Infinity,
      5,
      4,
      4,
      6,
      7,
      8,
      9,
    ];
    const xs = [1, 4, 6, 1];
    const pool = (v: tf.Tensor) => tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid');
    const r = await onBoth(() => pool(tf.tensor(x, xs)));
    expect(Array.from(r.wasm)).toEqual(Array.from(r.cpu));
    const g = await onBoth(() =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(pool(v), tf.tensor([10, 20, 30, 40, 50, 60], [1, 2, 3, 1]))))(
        tf.tensor(x, xs),
      ),
    );
    expect(Array.from(g.wasm)).toEqual(Array.from(g.cpu));
  });

  test('2x2 max pooling of wide one-channel rows: ties, signed zeros, NaN and -inf as tfjs-backend-cpu', async () => {
    // 38 wide: two 16-window steps and a 3-window tail a row pair; values from a small set so that
    // windows often tie, hold -0 and +0, NaN, or only -inf.
    const set = [0, -0, 1, 1, -1, Number.NaN, Number.NEGATIVE_INFINITY, 2];
    const r = rng(70);
    const x = Array.from({ length: 2 * 6 * 38 }, () => set[Math.floor(r() * set.length)]);
    const xs = [2, 6, 38, 1];
    const pool = (v: tf.Tensor) => tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid');
    const f = await onBoth(() => pool(tf.tensor(x, xs)));
    expect(Array.from(f.wasm)).toEqual(Array.from(f.cpu));
    const dy = Array.from({ length: 2 * 3 * 19 }, (_, i) => (i % 5 === 0 ? -0 : i + 1));
    const g = await onBoth(() =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(pool(v), tf.tensor(dy, [2, 3, 19, 1]))))(tf.tensor(x, xs)),
    );
    expect(Array.from(g.wasm)).toEqual(Array.from(g.cpu));
    // the same values as two channels (the general kernel)
    const g2 = await onBoth(() =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(pool(v), tf.tensor(dy.slice(0, 108), [2, 3, 9, 2]))))(
        tf.tensor(x, [2, 6, 19, 2]),
      ),
    );
    expect(Array.from(g2.wasm)).toEqual(Array.from(g2.cpu));
  });

  test("ReLU's gradient in one kernel equals tfjs-backend-cpu's Step/Cast/Multiply exactly", async () => {
    const { RELU_GRAD } = await import('@qbnn/core');
    expect(tf.getKernel(RELU_GRAD, 'wasm')).toBeDefined();
    const x = [-2, -0, 0, 1e-40, 3, Number.NaN, Infinity, -Infinity, 5, -1];
    const dy = [1, 2, 3, 4, Infinity, 6, Number.NaN, 8, -0, Infinity];
    const r = await onBoth(() =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), tf.tensor1d(dy))))(tf.tensor1d(x)),
    );
    expect(Array.from(r.wasm)).toEqual(Array.from(r.cpu));
  });

  test('gather along axis 0 (batches of a dataset) equals tfjs-backend-cpu exactly', async () => {
    const idx = [3, 0, 3, 6, 1];
    for (const [shape, axis] of [
      [[7, 2, 3], 0],
      [[7], -1],
      [[7, 5], 0],
    ] as [number[], number][]) {
      const r = await onBoth(() => tf.gather(vals(47, shape)(), tf.tensor1d(idx, 'int32'), axis));
      expect(Array.from(r.wasm)).toEqual(Array.from(r.cpu));
      const ri = await onBoth(() =>
        tf.cast(
          tf.gather(
            tf.cast(tf.mul(vals(48, shape)(), 100), 'int32'),
            tf.tensor2d([idx, idx], [2, 5], 'int32'),
            axis,
          ),
          'float32',
        ),
      );
      expect(Array.from(ri.wasm)).toEqual(Array.from(ri.cpu));
    }
    // other axes take the previous kernel
    const r = await onBoth(() => tf.gather(vals(49, [3, 4, 2])(), tf.tensor1d([3, 0], 'int32'), 1));
    expect(Array.from(r.wasm)).toEqual(Array.from(r.cpu));
    // an index out of range: tfjs-backend-wasm's own error, nothing read out of bounds
    await tf.setBackend('wasm');
    expect(() => tf.gather(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor1d([0, 5], 'int32'))).toThrow(
      /index value 5 is not in \[0, 1\]/,
    );
  });

  test('sums over leading and trailing axes match tfjs-backend-cpu; other axis sets fall back', async () => {
    const cases: [number[], number | number[], boolean][] = [
      [[6, 5, 4, 3], [0, 2, 3], false], // bias gradient of an NCHW convolution
      [[6, 5, 4, 3], [0, 2, 3], true],
      [[300, 17], 0, false], // bias gradient of a dense layer
      [[7, 9, 11], [1, 2], false],
      [[7, 9, 11], [0, 1, 2], false],
      [[7, 9, 11], [0, 2], false], // kept axis in the middle, one axis each side
      [[7, 9, 11], 1, false], // kept axes not contiguous: the previous kernel
      [[1, 1000], [0, 1], true],
      // runs of 16 and more (the AVX-512 path): 28 x 28 and 7 x 7 planes (a masked tail), exactly 16
      [[5, 3, 28, 28], [0, 2, 3], false],
      [[4, 6, 7, 7], [0, 2, 3], false],
      [[3, 2, 16], [0, 2], false],
    ];
    for (const [shape, axis, keepDims] of cases) {
      const r = await onBoth(() => tf.sum(vals(45, shape)(), axis, keepDims));
      expectClose(
        r.wasm,
        r.cpu,
        shape.reduce((a, b) => a * b, 1),
      );
      await tf.setBackend('wasm');
      const t = tf.sum(vals(45, shape)(), axis, keepDims);
      await tf.setBackend('cpu');
      expect(t.shape).toEqual(tf.sum(vals(45, shape)(), axis, keepDims).shape);
    }
  });

  test('fused location-scale sample matches tfjs-backend-cpu ops and the native ops bit for bit', async () => {
    const { locScaleSample, locScaleSampleFused } = await import('@qbnn/core');
    const r = rng(70);
    const n = 5003; // not a multiple of the 16-lane step or the 4k chunk
    const rho = Float32Array.from({ length: n }, (_, i) =>
      i < 8 ? [-40, -20, -14, -13.9, 0, 13.9, 14, 40][i] : (r() - 0.5) * 30,
    );
    const mu = Float32Array.from({ length: n }, () => r() - 0.5);
    const eps = Float32Array.from({ length: n }, () => (r() - 0.5) * 6);
    const composed = () => tf.add(tf.tensor1d(mu), tf.mul(tf.softplus(tf.tensor1d(rho)), tf.tensor1d(eps)));
    const fused = () => locScaleSample(tf.tensor1d(mu), tf.tensor1d(rho), tf.tensor1d(eps));
    await tf.setBackend('cpu');
    expect(locScaleSampleFused()).toBe(false);
    const cpu = composed().dataSync();
    await tf.setBackend('wasm');
    expect(locScaleSampleFused()).toBe(true);
    const got = fused().dataSync();
    expectClose(got, cpu, 1);
    expect(Array.from(got)).toEqual(Array.from(composed().dataSync()));
    // the gradient in rho, bit for bit the native Multiply and Sigmoid tfjs's chain rule runs
    const dy = tf.tensor1d(Float32Array.from({ length: n }, () => r() - 0.5));
    const drho = (f: (q: tf.Tensor) => tf.Tensor) =>
      tf.grad((q: tf.Tensor) => tf.sum(tf.mul(f(q), dy)))(tf.tensor1d(rho));
    const gFused = drho((q) => locScaleSample(tf.tensor1d(mu), q, tf.tensor1d(eps))).dataSync();
    const gComposed = drho((q) =>
      tf.add(tf.tensor1d(mu), tf.mul(tf.softplus(q), tf.tensor1d(eps))),
    ).dataSync();
    expect(Array.from(gFused)).toEqual(Array.from(gComposed));
  });

  test('fused location-scale sample gradients match float64 finite differences', async () => {
    const { locScaleSample } = await import('@qbnn/core');
    await tf.setBackend('wasm');
    const r = rng(71);
    const n = 37;
    const mu = Float32Array.from({ length: n }, () => r() - 0.5);
    const rho = Float32Array.from({ length: n }, () => (r() - 0.5) * 12);
    const eps = Float32Array.from({ length: n }, () => (r() - 0.5) * 4);
    const w8 = Float64Array.from({ length: n }, () => r() - 0.5);
    const [gMu, gRho] = tf.grads((m: tf.Tensor, q: tf.Tensor) =>
      tf.sum(tf.mul(locScaleSample(m, q, tf.tensor1d(eps)), tf.tensor1d(Float32Array.from(w8)))),
    )([tf.tensor1d(mu), tf.tensor1d(rho)]);
    const sp = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
    const loss = (m: Float64Array, q: Float64Array) =>
      m.reduce((acc, v, i) => acc + w8[i] * (v + sp(q[i]) * eps[i]), 0);
    const fd = (v: Float64Array, f: (z: Float64Array) => number) =>
      v.map((_, i) => {
        const z = Float64Array.from(v);
        z[i] += 1e-4;
        const up = f(z);
        z[i] -= 2e-4;
        return (up - f(z)) / 2e-4;
      });
    const mu64 = Float64Array.from(mu);
    const rho64 = Float64Array.from(rho);
    expectClose(
      gMu.dataSync(),
      fd(mu64, (z) => loss(z, rho64)),
      1,
    );
    expectClose(
      gRho.dataSync(),
      fd(rho64, (z) => loss(mu64, z)),
      1,
    );
    // bad sizes: a typed error naming the input
    expect(() => locScaleSample(tf.tensor1d(mu), tf.tensor1d(rho), tf.tensor1d([1, 2]))).toThrow(
      /eps has 2 elements/,
    );
  });

  test('transpose of float and int tensors equals tfjs-backend-cpu exactly', async () => {
    for (const [shape, perm] of [
      [
        [4, 6, 5, 3],
        [0, 3, 1, 2],
      ],
      [
        [4, 3, 6, 5],
        [0, 2, 3, 1],
      ],
      [
        [3, 1, 5, 7],
        [2, 0, 3, 1],
      ],
      [
        [2, 3, 4, 5, 6],
        [4, 2, 0, 3, 1],
      ],
      [
        [33, 65],
        [1, 0],
      ],
    ] as [number[], number[]][]) {
      const r = await onBoth(() => tf.transpose(vals(40, shape)(), perm));
      expect(r.wasm).toEqual(r.cpu);
      const ri = await onBoth(() => tf.transpose(tf.cast(tf.mul(vals(41, shape)(), 1000), 'int32'), perm));
      expect(ri.wasm).toEqual(ri.cpu);
    }
  });

  test('element-wise maths within 4 ulp of tfjs-backend-cpu, specials included', async () => {
    const specials = [
      0,
      -0,
      1,
      -1,
      1e-30,
      -1e-30,
      1e-40,
      13.9,
      14,
      -13.9,
      -14,
      50,
      -50,
      88,
      -88,
      100,
      -104,
      Number.NaN,
      Infinity,
      -Infinity,
    ];
    const r = rng(50);
    const xs = Float32Array.from([...specials, ...Array.from({ length: 3000 }, () => (r() - 0.5) * 60)]);
    for (const op of [tf.softplus, tf.sigmoid, tf.exp, tf.log, tf.sqrt]) {
      const res = await onBoth(() => op(tf.tensor1d(xs)));
      for (let i = 0; i < xs.length; i++) {
        const a = res.wasm[i];
        const b = res.cpu[i];
        if (Number.isNaN(b) || !Number.isFinite(b) || b === 0) {
          expect(Object.is(a, b) || (a === 0 && b === 0) || Math.abs(a) < 1e-44).toBe(true);
        } else {
          expect(Math.abs(a - b)).toBeLessThanOrEqual(4 * 1.1920929e-7 * Math.abs(b) + 1.5e-45);
        }
      }
    }
  });

  test('arithmetic, max/min, comparisons and select equal tfjs-backend-cpu exactly', async () => {
    const a = [0, -0, 1.5, -2, Number.NaN, Infinity, -Infinity, 3, 7, 1e-40];
    const b = [0, 0, 2, -2, 1, 5, -Infinity, Number.NaN, 7, 3];
    for (const op of [tf.add, tf.sub, tf.mul, tf.div, tf.maximum, tf.minimum]) {
      const r1 = await onBoth(() => op(tf.tensor1d(a), tf.tensor1d(b)));
      expect(r1.wasm).toEqual(r1.cpu);
      const r2 = await onBoth(() => op(tf.tensor1d(a), tf.scalar(2)));
      expect(r2.wasm).toEqual(r2.cpu);
    }
    for (const op of [tf.less, tf.lessEqual, tf.greater, tf.greaterEqual]) {
      const r1 = await onBoth(() => tf.cast(op(tf.tensor1d(a), tf.tensor1d(b)), 'float32'));
      expect(r1.wasm).toEqual(r1.cpu);
    }
    // int32 tensors take the previous kernels.
    const ri = await onBoth(() =>
      tf.cast(tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.scalar(4, 'int32')), 'float32'),
    );
    expect(Array.from(ri.wasm)).toEqual([5, 6, 7]);
    const rs = await onBoth(() =>
      tf.where(tf.less(tf.tensor1d(a), tf.tensor1d(b)), tf.tensor1d(a), tf.tensor1d(b)),
    );
    expect(rs.wasm).toEqual(rs.cpu);
  });

  test('results are bit-identical for 1 and 2 threads and for the portable microkernel', async () => {
    await tf.setBackend('wasm');
    const run = () => {
      const x = randomTensor([4, 28, 28, 3], 60) as tf.Tensor4D;
      const w = randomTensor([5, 5, 3, 16], 61) as tf.Tensor4D;
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))),
      )([x, w]);
      const m = tf.matMul(randomTensor([40, 3000], 62), randomTensor([3000, 30], 63)); // K split into chunks
      // both operands transposed (packed through 16 x 16 register transposes on AVX-512)
      const mt = tf.matMul(randomTensor([300, 41], 65), randomTensor([37, 300], 66), true, true);
      // NCHW: per-image tasks, filter gradient summed over fixed chunks of images (70: chunks of
      // 5, each swept as groups of 4 and 1 images)
      const xn = randomTensor([70, 3, 12, 11], 64) as tf.Tensor4D;
      const [gxn, gwn] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NCHW'))),
      )([xn, w]);
      return [gx, gw, m, mt, gxn, gwn].map((t) => Float32Array.from(t.dataSync()));
    };
    setThreads(1);
    const one = run();
    setThreads(2);
    const two = run();
    addon!.fp32.setPortable(true);
    const portable = run();
    addon!.fp32.setPortable(false);
    for (let i = 0; i < one.length; i++) {
      expect(Buffer.from(two[i].buffer).equals(Buffer.from(one[i].buffer))).toBe(true);
      expect(Buffer.from(portable[i].buffer).equals(Buffer.from(one[i].buffer))).toBe(true);
    }
  });

  test('disable puts the previous kernels back, enable is idempotent', async () => {
    const { floatKernelSet } = await import('@qbnn/core');
    const before = tf.getKernel('Conv2D', 'wasm')!.kernelFunc;
    expect(enableNativeFloatKernels().active).toBe(true);
    expect(tf.getKernel('Conv2D', 'wasm')!.kernelFunc).toBe(before);
    disableNativeFloatKernels();
    expect(tf.getKernel('Conv2D', 'wasm')!.kernelFunc).not.toBe(before);
    expect(floatKernelSet()).toBeNull();
    expect(enableNativeFloatKernels().active).toBe(true);
  });

  test('the FP32 FMA peak is no lower than the rate the sgemm kernel reaches', () => {
    // No kernel can beat the FMA pipes: the intrinsics peak loop this replaced spilled 11
    // accumulators to the stack every round and read ~75 GFLOPS, under the ~180 GFLOPS of a
    // cache-resident 192x256x256 matmul. Best ratio of back-to-back pairs (a busy SMT sibling
    // slows both halves of one pair alike), one thread, thread CPU time.
    setThreads(1);
    const [m, k, n] = [192, 256, 256];
    const a = new Float32Array(m * k).fill(0.5);
    const b = new Float32Array(k * n).fill(0.25);
    const out = new Float32Array(m * n);
    const dims = Int32Array.from([1, 1, m, k, n, 0, 0]);
    let best = 0;
    for (let i = 0; i < 7; ++i) {
      const peak = fp32PeakGflops(2_000_000) as number;
      const t0 = threadCpuTime();
      for (let r = 0; r < 20; ++r) addon!.fp32.matmul(a, b, out, dims, null, 0, 0);
      const sgemm = (20 * 2 * m * k * n) / (threadCpuTime() - t0) / 1e9;
      best = Math.max(best, peak / sgemm);
    }
    setThreads(2);
    expect(out[0]).toBe(k * 0.125);
    expect(best).toBeGreaterThan(1);
  });

  test('bad arguments are typed errors, never a crash', () => {
    const f = addon!.fp32;
    const dims = Int32Array.from([1, 1, 4, 4, 4, 0, 0]);
    expect(() =>
      f.matmul(new Float32Array(15), new Float32Array(16), new Float32Array(16), dims, null, 0, 0),
    ).toThrow(RangeError);
    expect(() =>
      f.matmul(
        new Float32Array(16),
        new Float32Array(16),
        new Float32Array(16),
        Int32Array.from([1, 1, 4, -4, 4, 0, 0]),
        null,
        0,
        0,
      ),
    ).toThrow(RangeError);
    expect(() =>
      f.conv2d(new Float32Array(4), new Float32Array(4), new Float32Array(4), new Int32Array(3), null, 0, 0),
    ).toThrow(TypeError);
    expect(() =>
      f.transpose(new Float32Array(6), new Float32Array(6), Int32Array.from([2, 3]), Int32Array.from([0, 0])),
    ).toThrow(RangeError);
    expect(() => f.unary('tanh' as 'exp', new Float32Array(2), new Float32Array(2))).toThrow(TypeError);
  });
});
