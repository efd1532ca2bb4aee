// The fused convolution + bias + ReLU + 2x2 max pool kernel (@qbnn/core's convReluMaxPool) against
// independent references: tfjs-backend-cpu running conv2d, relu and maxPool (forward, float
// tolerance 2e-6 sqrt(K) (1 + |y|) for a reduction of length K), float64 brute-force loops with
// central finite differences (gradients), and the native kernels' unfused ops bit for bit (the
// values and gradients training ran with before), except the input and filter gradients where they
// are summed from the taps alone (kernel rows of 16 floats or more: another order of the same sums).
import {
  CONV_RELU_MAX_POOL,
  CONV_RELU_MAX_POOL_OIHW,
  convReluMaxPool,
  floatKernelFeature,
  floatKernelSet,
  QbnnError,
  setFloatKernelSet,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { rng } from '../../core/test/kernel-cases.js';
import { addon } from '../src/binding.js';
import { nativeAvailable, setThreads } from '../src/index.js';
import { expectArgError, withNativeFloatKernels } from './helpers.js';

const native = nativeAvailable && addon!.fp32.info().avx512;
const d = native ? describe : describe.skip;

interface Case {
  x: number[]; // NCHW
  filter: number[]; // HWIO
  stride: [number, number];
  pad: [number, number];
  bias: boolean;
}

const CASES: Case[] = [
  { x: [3, 4, 12, 12], filter: [5, 5, 4, 6], stride: [1, 1], pad: [2, 2], bias: true }, // LeNet-like
  { x: [1, 2, 9, 11], filter: [3, 3, 2, 5], stride: [2, 1], pad: [1, 0], bias: true }, // strided, odd output
  { x: [2, 3, 7, 6], filter: [3, 2, 3, 4], stride: [1, 1], pad: [0, 1], bias: false }, // 5 x 7 output
  { x: [2, 1, 40, 37], filter: [3, 3, 1, 2], stride: [1, 1], pad: [1, 1], bias: true }, // rows of > 16 windows
];

function values(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function inputs(c: Case, seed: number) {
  return {
    x: tf.tensor(values(size(c.x), seed), c.x) as tf.Tensor4D,
    filter: tf.tensor(values(size(c.filter), seed + 1), c.filter) as tf.Tensor4D,
    bias: c.bias ? (tf.tensor(values(c.filter[3], seed + 2), [c.filter[3]]) as tf.Tensor1D) : undefined,
  };
}

const explicitPad = (c: Case): tf.backend_util.ExplicitPadding => [
  [0, 0],
  [0, 0],
  [c.pad[0], c.pad[0]],
  [c.pad[1], c.pad[1]],
];

/** relu(maxPool2x2(conv2d(x) + bias)) composed of tfjs ops (NCHW in and out). */
function composed(c: Case, x: tf.Tensor4D, filter: tf.Tensor4D, bias?: tf.Tensor1D): tf.Tensor4D {
  let y = tf.conv2d(x, filter, c.stride, explicitPad(c), 'NCHW') as tf.Tensor4D;
  if (bias) y = tf.add(y, tf.reshape(bias, [1, -1, 1, 1]));
  const nhwc = tf.transpose(y, [0, 2, 3, 1]) as tf.Tensor4D;
  return tf.transpose(tf.relu(tf.maxPool(nhwc, 2, 2, 'valid')), [0, 3, 1, 2]) as tf.Tensor4D;
}

function fused(c: Case, x: tf.Tensor4D, filter: tf.Tensor4D, bias?: tf.Tensor1D, oihw = false): tf.Tensor4D {
  const y = convReluMaxPool(x, filter, bias, {
    strides: c.stride,
    pad: explicitPad(c),
    dataFormat: 'NCHW',
    dilations: [1, 1],
    ...(oihw ? { filterLayout: 'OIHW' as const } : {}),
  });
  if (y === null) throw new Error('the fused kernel is not registered');
  return y;
}

/** The float64 forward of one case, brute force: y [n, co, oh / 2, ow / 2]. */
function forward64(c: Case, x: Float64Array, f: Float64Array, b: Float64Array | null): Float64Array {
  const [n, ci, h, w] = c.x;
  const [fh, fw, , co] = c.filter;
  const oh = Math.floor((h + 2 * c.pad[0] - fh) / c.stride[0]) + 1;
  const ow = Math.floor((w + 2 * c.pad[1] - fw) / c.stride[1]) + 1;
  const [ph, pw] = [Math.floor(oh / 2), Math.floor(ow / 2)];
  const conv = (bi: number, o: number, i: number, j: number) => {
    let s = b ? b[o] : 0;
    for (let ch = 0; ch < ci; ch++)
      for (let kh = 0; kh < fh; kh++)
        for (let kw = 0; kw < fw; kw++) {
          const ih = i * c.stride[0] + kh - c.pad[0];
          const iw = j * c.stride[1] + kw - c.pad[1];
          if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
          s += x[((bi * ci + ch) * h + ih) * w + iw] * f[((kh * fw + kw) * ci + ch) * co + o];
        }
    return s;
  };
  const y = new Float64Array(n * co * ph * pw);
  for (let bi = 0; bi < n; bi++)
    for (let o = 0; o < co; o++)
      for (let i = 0; i < ph; i++)
        for (let j = 0; j < pw; j++) {
          const m = Math.max(
            conv(bi, o, 2 * i, 2 * j),
            conv(bi, o, 2 * i, 2 * j + 1),
            conv(bi, o, 2 * i + 1, 2 * j),
            conv(bi, o, 2 * i + 1, 2 * j + 1),
          );
          y[((bi * co + o) * ph + i) * pw + j] = Math.max(0, m);
        }
  return y;
}

d('fused conv + bias + ReLU + 2x2 max pool (native fp32)', () => {
  withNativeFloatKernels();

  test('values match tfjs-backend-cpu, and the native unfused ops exactly, on 1 and 2 threads', async () => {
    for (const [k, c] of CASES.entries()) {
      await tf.setBackend('cpu');
      const cpu = tf.tidy(() => {
        const t = inputs(c, 10 * k);
        return composed(c, t.x, t.filter, t.bias).dataSync();
      });
      await tf.setBackend('wasm');
      const runs = [1, 2].map((threads) => {
        setThreads(threads);
        return tf.tidy(() => {
          const t = inputs(c, 10 * k);
          const y = fused(c, t.x, t.filter, t.bias);
          return {
            fused: y.dataSync().slice(),
            plain: composed(c, t.x, t.filter, t.bias).dataSync().slice(),
            shape: y.shape,
          };
        });
      });
      const { fused: got, plain } = runs[0];
      expect(got.length).toBe(cpu.length);
      const tol = 2e-6 * Math.sqrt(c.filter[0] * c.filter[1] * c.filter[2]);
      let worst = 0;
      for (let i = 0; i < cpu.length; i++)
        worst = Math.max(worst, Math.abs(got[i] - cpu[i]) / (1 + Math.abs(cpu[i])));
      expect(worst).toBeLessThanOrEqual(tol);
      // the unfused native ops and the other thread count: equal values (a zero may differ in sign)
      let differ = 0;
      for (let i = 0; i < got.length; i++)
        if (!(got[i] === plain[i] && got[i] === runs[1].fused[i])) differ++;
      expect(differ).toBe(0);
      // about half the windows are cut by the ReLU: both branches are exercised
      const zeros = got.filter((v) => v === 0).length;
      expect(zeros).toBeGreaterThan(0);
      expect(zeros).toBeLessThan(got.length);
    }
  });

  test.each([
    // 6 x 5 output (an odd column), the shifted-plane kernels, the bias summed as Sum's vector path
    { x: [2, 2, 6, 5], filter: [3, 3, 2, 3], stride: [1, 1], pad: [1, 1], bias: true },
    // strided: the im2col kernels on the scattered dy
    { x: [2, 2, 9, 8], filter: [3, 3, 2, 3], stride: [2, 2], pad: [1, 1], bias: true },
    // 3 x 3 output (an odd row): the bias summed as Sum's scalar path
    { x: [3, 1, 5, 5], filter: [3, 3, 1, 2], stride: [1, 1], pad: [0, 0], bias: true },
    // the input and filter gradients from the taps: kernel rows of 20 floats (2 vectors), LeNet-like
    { x: [2, 4, 8, 8], filter: [5, 5, 4, 3], stride: [1, 1], pad: [2, 2], bias: true, sparse: true },
    // strided, 5 x 9 output (an odd row and column), rows of 24 floats
    { x: [2, 8, 9, 11], filter: [3, 3, 8, 5], stride: [2, 1], pad: [1, 0], bias: true, sparse: true },
    // rows of 100 floats in two passes of 3 and 2 kernel rows, 9 images in two chunks, 5 x 5 output
    {
      x: [9, 20, 5, 5],
      filter: [5, 5, 20, 1],
      stride: [1, 1],
      pad: [2, 2],
      bias: true,
      sparse: true,
      fdX: false,
    },
  ] as (Case & { sparse?: boolean; fdX?: boolean })[])(
    'gradients match float64 finite differences and the unfused native ops (x $x, stride $stride)',
    async (c) => {
      await tf.setBackend('wasm');
      setThreads(1);
      const t = inputs(c, 91);
      const probe = fused(c, t.x, t.filter, t.bias);
      const w8 = Float64Array.from(values(probe.size, 95));
      const dy = tf.tensor(Float32Array.from(w8), probe.shape);
      const loss = (f: typeof fused) => (x: tf.Tensor, filter: tf.Tensor, bias: tf.Tensor) =>
        tf.sum(tf.mul(f(c, x as tf.Tensor4D, filter as tf.Tensor4D, bias as tf.Tensor1D), dy));
      const got = tf
        .grads(loss(fused))([t.x, t.filter, t.bias!])
        .map((g) => g.dataSync().slice());
      const plain = tf
        .grads(loss(composed))([t.x, t.filter, t.bias!])
        .map((g) => g.dataSync().slice());
      for (let i = 0; i < 3; i++) {
        if (i < 2 && c.sparse) {
          // the same float32 sums in another order
          const scale = 1 + plain[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          for (let j = 0; j < plain[i].length; j++)
            expect(Math.abs(got[i][j] - plain[i][j])).toBeLessThan(1e-5 * scale);
        } else expect(Buffer.from(got[i].buffer).equals(Buffer.from(plain[i].buffer))).toBe(true);
      }
      // float64 central differences of sum(y * w8)
      const x64 = Float64Array.from(t.x.dataSync());
      const f64 = Float64Array.from(t.filter.dataSync());
      const b64 = Float64Array.from(t.bias!.dataSync());
      const L = (x: Float64Array, f: Float64Array, b: Float64Array) =>
        forward64(c, x, f, b).reduce((acc, v, i) => acc + v * w8[i], 0);
      const fd = (v: Float64Array, at: (z: Float64Array) => number) =>
        v.map((_, i) => {
          const z = Float64Array.from(v);
          z[i] += 1e-5;
          const up = at(z);
          z[i] -= 2e-5;
          return (up - at(z)) / 2e-5;
        });
      // (the input gradient of the largest case is checked against the unfused ops only: its
      // differences would take seconds)
      const want = [
        c.fdX === false ? null : fd(x64, (z) => L(z, f64, b64)),
        fd(f64, (z) => L(x64, z, b64)),
        fd(b64, (z) => L(x64, f64, z)),
      ];
      for (let i = 0; i < 3; i++) {
        const wanted = want[i];
        if (wanted === null) continue;
        let worst = 0;
        for (let j = 0; j < wanted.length; j++)
          worst = Math.max(worst, Math.abs(got[i][j] - wanted[j]) / (1 + Math.abs(wanted[j])));
        expect(worst).toBeLessThan(1e-4);
      }
      // the input gradient is not all zeros: the taps reached the inputs
      expect(got[0].some((v) => v !== 0)).toBe(true);
      // windows whose maximum is exactly 0 pass no gradient (ReLU's step(0) = 0, as tfjs)
      const zero = tf.grads(loss(fused))([tf.zerosLike(t.x), t.filter, tf.zerosLike(t.bias!)]);
      for (const g of zero.slice(1)) expect(g.dataSync().every((v) => v === 0)).toBe(true);
      setThreads(2);
    },
  );

  test('an OIHW filter (filterLayout) gives the HWIO filter values and gradients bit for bit, read in place or transposed', async () => {
    await tf.setBackend('wasm');
    expect(floatKernelFeature(CONV_RELU_MAX_POOL_OIHW)).toBe(true);
    const set = floatKernelSet()!;
    const bits = (t: tf.Tensor) => Buffer.from(t.dataSync().slice().buffer);
    const cases: Case[] = [
      ...CASES,
      { x: [2, 8, 9, 11], filter: [3, 3, 8, 5], stride: [2, 1], pad: [1, 0], bias: true }, // strided, im2col
      { x: [3, 20, 14, 14], filter: [5, 5, 20, 7], stride: [1, 1], pad: [2, 2], bias: true }, // conv2-like
    ];
    for (const [k, c] of cases.entries()) {
      for (const threads of [1, 2]) {
        setThreads(threads);
        tf.tidy(() => {
          const t = inputs(c, 300 + k);
          const oihw = tf.transpose(t.filter, [3, 2, 0, 1]) as tf.Tensor4D;
          const dy = tf.tensor(values(fused(c, t.x, t.filter, t.bias).size, 301 + k));
          const run = (f: tf.Tensor4D, asOihw: boolean) => {
            const loss = (x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) =>
              tf.sum(
                tf.mul(
                  tf.reshape(
                    fused(c, x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D | undefined, asOihw),
                    [-1],
                  ),
                  dy,
                ),
              );
            const y = fused(c, t.x, f, t.bias, asOihw);
            const g = t.bias ? tf.grads(loss)([t.x, f, t.bias]) : tf.grads((x, w) => loss(x, w))([t.x, f]);
            return { y, g };
          };
          const want = run(t.filter, false);
          const inPlace = run(oihw, true);
          // a kernel set without the feature: @qbnn/core transposes the filter itself
          setFloatKernelSet({ ...set, features: [] });
          let transposed: ReturnType<typeof run>;
          try {
            transposed = run(oihw, true);
          } finally {
            setFloatKernelSet(set);
          }
          for (const got of [inPlace, transposed]) {
            expect(bits(got.y).equals(bits(want.y))).toBe(true);
            expect(bits(got.g[0]).equals(bits(want.g[0]))).toBe(true);
            expect(got.g[1].shape).toEqual(oihw.shape);
            expect(bits(got.g[1]).equals(bits(tf.transpose(want.g[1], [3, 2, 0, 1])))).toBe(true);
            if (t.bias) expect(bits(got.g[2]).equals(bits(want.g[2]))).toBe(true);
          }
        });
      }
    }
    setThreads(2);
  });

  test('pooled values and taps under ties, NaN and signed zeros equal a JS pool of the native convolution', () => {
    // Integer inputs and 0/1 filters make equal window values common; the taps byte is the first
    // tap equal to the window's maximum (v > m ? v : m from -inf), 4 where the ReLU stops it.
    const f = addon!.fp32;
    const r = rng(77);
    for (const [n, ci, h, co] of [
      [3, 1, 28, 4], // LeNet-5 conv1's rows: 14 windows
      [2, 2, 36, 3], // rows of 18 windows: a full and a partial vector
    ]) {
      for (const kind of ['integers', 'nan', 'zeros']) {
        const value = () =>
          kind === 'zeros'
            ? r() < 0.5
              ? 0
              : -0
            : kind === 'nan' && r() < 0.02
              ? Number.NaN
              : Math.floor(r() * 3) - 1;
        const x = Float32Array.from({ length: n * ci * h * h }, value);
        const filter = Float32Array.from({ length: 25 * ci * co }, () => (r() < 0.7 ? 0 : 1));
        const bias = Float32Array.from({ length: co }, () => Math.floor(r() * 3) - 1);
        const geometry = Int32Array.from([n, h, h, ci, h, h, co, 5, 5, 1, 1, 1, 1, 2, 2]);
        const conv = new Float32Array(n * co * h * h);
        f.conv2dNchw(x, filter, conv, geometry, null);
        const p = h / 2;
        const y = new Float32Array(n * co * p * p);
        const at = new Int32Array(Math.ceil(y.length / 4));
        f.conv2dNchwReluMaxPool(x, filter, y, at, geometry, bias);
        const taps = new Uint8Array(at.buffer);
        let differ = 0;
        const seen = new Set<number>();
        for (let plane = 0; plane < n * co; plane++)
          for (let i = 0; i < p; i++)
            for (let j = 0; j < p; j++) {
              const tap = (di: number, dj: number) =>
                Math.fround(conv[(plane * h + 2 * i + di) * h + 2 * j + dj] + bias[plane % co]);
              const v = [tap(0, 0), tap(0, 1), tap(1, 0), tap(1, 1)];
              let m = Number.NEGATIVE_INFINITY;
              // biome-ignore lint/complexity/useMathMinMax: the kernel's rule, not Math.max's NaN
              for (const t of v) m = t > m ? t : m;
              const n0 = v[0] !== m ? 1 : 0;
              const n1 = n0 & (v[1] !== m ? 1 : 0);
              const n2 = n1 & (v[2] !== m ? 1 : 0);
              const e = (plane * p + i) * p + j;
              const want = m > 0 ? n0 + n1 + n2 : 4;
              seen.add(want);
              // biome-ignore lint/complexity/useMathMinMax: NaN gives +0, as the kernel's ReLU
              if (!Object.is(y[e], m > 0 ? m : 0) || taps[e] !== want) differ++;
            }
        expect(differ).toBe(0);
        if (kind === 'integers') expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
      }
    }
  });

  test('bad arguments are typed errors, never a crash', () => {
    const f = addon!.fp32;
    const geometry = Int32Array.from([1, 4, 4, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1]);
    const x = new Float32Array(16);
    const filter = new Float32Array(9);
    // 4 windows need 4 bytes: one int32
    expect(() =>
      f.conv2dNchwReluMaxPool(x, filter, new Float32Array(4), new Int32Array(0), geometry, null),
    ).toThrow(/at holds 0 bytes, needs 4/);
    expect(() =>
      f.conv2dNchwReluMaxPool(x, filter, new Float32Array(3), new Int32Array(1), geometry, null),
    ).toThrow(/y holds 3 floats/);
    const dy = new Float32Array(4);
    expect(() =>
      f.conv2dNchwReluMaxPoolBackpropInput(dy, new Int32Array(1), filter, new Float32Array(15), geometry),
    ).toThrow(/dx holds 15 floats/);
    expect(() =>
      f.conv2dNchwReluMaxPoolBackpropFilter(
        x,
        dy,
        new Float32Array(1) as unknown as Int32Array,
        filter,
        geometry,
      ),
    ).toThrow(/at must be an Int32Array/);
    expect(() =>
      f.reluMaxPoolBiasGrad(dy, new Int32Array(1), new Float32Array(0), Int32Array.of(1, 1, 4, 4)),
    ).toThrow(/out holds 0 floats/);
    for (const layout of ['NCHW', 3])
      expect(() =>
        f.conv2dNchwReluMaxPool(
          x,
          filter,
          new Float32Array(4),
          new Int32Array(1),
          geometry,
          null,
          layout as unknown as 'OIHW',
        ),
      ).toThrow(/layout must be 'HWIO' or 'OIHW'/);
    expect(() =>
      f.conv2dNchwReluMaxPoolBackpropInput(
        dy,
        new Int32Array(1),
        filter,
        new Float32Array(16),
        geometry,
        'oihw' as 'OIHW',
      ),
    ).toThrow(/layout must be 'HWIO' or 'OIHW'/);
  });

  test("convReluMaxPool's shapes and attributes: a QbnnError naming what does not fit", () => {
    // a filter of fewer input channels than x was read in the wrong layout (a result, no error),
    // a stride of 0 a RangeError 'Invalid typed array length: Infinity', a pad of 1.5 rounded, a
    // bad layout, bias, dilation or dtype tfjs' untyped 'this case has no native fp32 kernel'
    const x = tf.tensor(values(2 * 3 * 10 * 10, 3), [2, 3, 10, 10]) as tf.Tensor4D;
    const w = tf.tensor(values(4 * 3 * 3 * 3, 4), [4, 3, 3, 3]) as tf.Tensor4D;
    const b = tf.tensor(values(4, 5), [4]) as tf.Tensor1D;
    const attrs = {
      strides: [1, 1] as [number, number],
      pad: [
        [0, 0],
        [0, 0],
        [1, 1],
        [1, 1],
      ] as tf.backend_util.ExplicitPadding,
      dataFormat: 'NCHW' as const,
      dilations: [1, 1] as [1, 1],
      filterLayout: 'OIHW' as const,
    };
    expect(convReluMaxPool(x, w, b, attrs)?.shape).toEqual([2, 4, 5, 5]);
    for (const c of [1, 2, 4])
      expectArgError(
        () => convReluMaxPool(tf.zeros([2, c, 10, 10]) as tf.Tensor4D, w, b, attrs),
        new RegExp(`takes 3 input channels, x \\[2,${c},10,10\\] has ${c}`),
      );
    expectArgError(() => convReluMaxPool(x, w, tf.zeros([5]) as tf.Tensor1D, attrs), /bias must be \[4\]/);
    expectArgError(
      () => convReluMaxPool(x, w, b, { ...attrs, filterLayout: 'oihw' as never }),
      /filterLayout must be/,
    );
    expectArgError(
      () => convReluMaxPool(x, w, b, { ...attrs, strides: [0, 1] }),
      /strides must be two integers >= 1/,
    );
    expectArgError(() => convReluMaxPool(x, w, b, { ...attrs, strides: [1, -1] }), /strides must be/);
    for (const v of [-1, 1.5, Number.NaN])
      expectArgError(
        () =>
          convReluMaxPool(x, w, b, {
            ...attrs,
            pad: [
              [0, 0],
              [0, 0],
              [v, v],
              [0, 0],
            ],
          }),
        /pad must be \[\[0, 0\], \[0, 0\], \[top, bottom\], \[left, right\]\] of integers >= 0/,
      );
    expectArgError(
      () => convReluMaxPool(x, w, b, { ...attrs, dilations: [2, 2] as never }),
      /dilations must be \[1, 1\]/,
    );
    expectArgError(
      () => convReluMaxPool(x, w, b, { ...attrs, dataFormat: 'NHWC' as never }),
      /dataFormat must be 'NCHW'/,
    );
    expectArgError(
      () => convReluMaxPool(tf.zeros([2, 3, 10, 10], 'int32') as tf.Tensor4D, w, b, attrs),
      /x must be float32, got int32/,
    );
    expectArgError(
      () => convReluMaxPool(tf.zeros([3, 10, 10]) as tf.Tensor4D, w, b, attrs),
      /x must be \[batch, channels/,
    );
    // the kernel itself (a caller of runKernel) checks the channels too
    expectArgError(
      () =>
        tf
          .engine()
          .runKernel(
            CONV_RELU_MAX_POOL,
            { x: tf.zeros([2, 2, 10, 10]), filter: w, at: tf.zeros([50], 'int32') },
            attrs as unknown as tf.NamedAttrMap,
          ),
      /takes 3 input channels/,
    );
    const gone = tf.zeros([2, 3, 10, 10]) as tf.Tensor4D;
    gone.dispose();
    expectArgError(() => convReluMaxPool(gone, w, b, attrs), /x must be a live tensor/);
  });

  test('tap bytes past the last tap (a buffer not from the forward) are no tap: zero gradients, no crash', () => {
    const f = addon!.fp32;
    // 2 images, 4 channels 8 x 8, a 5 x 5 kernel to 3 channels, padding 2: kernel rows of 20 floats,
    // summed from the taps (the dense kernels below 16)
    for (const ci of [4, 1]) {
      const geometry = Int32Array.from([2, 8, 8, ci, 8, 8, 3, 5, 5, 1, 1, 1, 1, 2, 2]);
      const x = values(2 * ci * 64, 3);
      const filter = values(25 * ci * 3, 4);
      const dy = values(2 * 3 * 16, 5);
      const at = new Int32Array(24).fill(0x7f80c8ff | 0);
      const dx = new Float32Array(2 * ci * 64).fill(Number.NaN);
      const df = new Float32Array(25 * ci * 3).fill(Number.NaN);
      f.conv2dNchwReluMaxPoolBackpropInput(dy, at, filter, dx, geometry);
      f.conv2dNchwReluMaxPoolBackpropFilter(x, dy, at, df, geometry);
      expect(dx.every((v) => v === 0)).toBe(true);
      expect(df.every((v) => v === 0)).toBe(true);
    }
  });

  test('the tfjs kernel takes the taps buffer as an input of the right size and type', () => {
    const x = tf.ones([1, 1, 4, 4]);
    const filter = tf.ones([3, 3, 1, 1]);
    const attrs = {
      strides: [1, 1],
      pad: [
        [0, 0],
        [0, 0],
        [1, 1],
        [1, 1],
      ],
      dataFormat: 'NCHW',
      dilations: [1, 1],
    };
    const run = (inputs: tf.NamedTensorMap) =>
      tf.engine().runKernel(CONV_RELU_MAX_POOL, inputs, attrs as unknown as tf.NamedAttrMap);
    // 4 windows: one int32 of taps
    expect(() => run({ x, filter })).toThrow(/input at must be an int32 tensor of 1 elements/);
    expect(() => run({ x, filter, at: tf.zeros([2], 'int32') })).toThrow(QbnnError);
    expect(() => run({ x, filter, at: tf.zeros([1]) })).toThrow(QbnnError);
    // one output (no taps output for tfjs's backward pass to give a zero gradient), taps filled
    const at = tf.fill([1], -1, 'int32');
    const y = run({ x, filter, at });
    expect(Array.isArray(y)).toBe(false);
    expect((y as tf.Tensor).shape).toEqual([1, 1, 2, 2]);
    expect(at.dataSync()[0]).not.toBe(-1);
  });
});
