// The NCHW convolutions' Winograd F(2, 5) path (5-wide stride-1 kernels with cin * fh >= 48 on
// AVX-512, conv_winograd.h) against float64 brute-force loops, within the fp32 tolerance
// 2e-6 * sqrt(K) * (1 + |reference|) for a reduction of length K: the forward, the fused
// conv + ReLU + pool (against a float64 pool of the float64 convolution, windows whose float64
// taps are near ties skipped), and the input gradient (the forward of the flipped filter); and its
// invariants: bit-identical on 1 and 2 threads, within fp32 rounding of the direct kernel (the
// portable microkernel's path), not equal to it bit for bit (the path ran).
import { expect, test } from 'vitest';
import { rng } from '../../core/test/kernel-cases.js';
import { addon } from '../src/binding.js';
import { nativeAvailable, setThreads } from '../src/index.js';

const native = nativeAvailable && addon!.fp32.info().avx512;
const t = native ? test : test.skip;

interface Geom {
  n: number;
  ci: number;
  h: number;
  w: number;
  co: number;
  fh: number;
  dh: number;
  pad: [number, number];
}

const GEOMS: [string, Geom][] = [
  ['LeNet-5 conv2', { n: 3, ci: 20, h: 14, w: 14, co: 50, fh: 5, dh: 1, pad: [2, 2] }],
  ['batch 1, 10 columns', { n: 1, ci: 12, h: 9, w: 10, co: 7, fh: 5, dh: 1, pad: [2, 2] }],
  ['3 x 5 kernel, odd output width 5', { n: 2, ci: 16, h: 8, w: 7, co: 5, fh: 3, dh: 1, pad: [1, 1] }],
  ['dilated rows (dh 2), no top padding', { n: 2, ci: 24, h: 11, w: 10, co: 3, fh: 3, dh: 2, pad: [0, 2] }],
];

function values(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

function shape(g: Geom) {
  const oh = g.h + 2 * g.pad[0] - (g.fh - 1) * g.dh;
  const ow = g.w + 2 * g.pad[1] - 4;
  return { oh, ow, K: g.ci * g.fh * 5 };
}

function geometry(g: Geom): Int32Array {
  const { oh, ow } = shape(g);
  return Int32Array.from([g.n, g.h, g.w, g.ci, oh, ow, g.co, g.fh, 5, 1, 1, g.dh, 1, g.pad[0], g.pad[1]]);
}

/** float64 y [n, co, oh, ow] of NCHW x and an HWIO filter [fh, 5, ci, co], plus bias. */
function conv64(g: Geom, x: Float32Array, f: Float32Array, bias: Float32Array | null): Float64Array {
  const { oh, ow } = shape(g);
  const y = new Float64Array(g.n * g.co * oh * ow);
  for (let b = 0; b < g.n; b++)
    for (let o = 0; o < g.co; o++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let s = bias ? bias[o] : 0;
          for (let c = 0; c < g.ci; c++)
            for (let kh = 0; kh < g.fh; kh++) {
              const ih = i + kh * g.dh - g.pad[0];
              if (ih < 0 || ih >= g.h) continue;
              for (let kw = 0; kw < 5; kw++) {
                const iw = j + kw - g.pad[1];
                if (iw < 0 || iw >= g.w) continue;
                s += x[((b * g.ci + c) * g.h + ih) * g.w + iw] * f[((kh * 5 + kw) * g.ci + c) * g.co + o];
              }
            }
          y[((b * g.co + o) * oh + i) * ow + j] = s;
        }
  return y;
}

function worst(got: Float32Array, want: Float64Array): number {
  expect(got.length).toBe(want.length);
  let w = 0;
  for (let i = 0; i < got.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  return w;
}

t.each(GEOMS)('Winograd F(2, 5) convolution (%s) matches float64, on 1 and 2 threads alike', (_, g) => {
  const f = addon!.fp32;
  const { oh, ow, K } = shape(g);
  const x = values(g.n * g.ci * g.h * g.w, 1);
  const filter = values(g.fh * 5 * g.ci * g.co, 2);
  const bias = values(g.co, 3);
  const tol = 2e-6 * Math.sqrt(K);
  const run = (threads: number, portable = false) => {
    setThreads(threads);
    f.setPortable(portable);
    const y = new Float32Array(g.n * g.co * oh * ow);
    f.conv2dNchw(x, filter, y, geometry(g), bias);
    f.setPortable(false);
    return y;
  };
  const one = run(1);
  const two = run(2);
  const direct = run(1, true);
  setThreads(2);
  const want = conv64(g, x, filter, bias);
  expect(worst(one, want)).toBeLessThanOrEqual(tol);
  expect(worst(direct, want)).toBeLessThanOrEqual(tol);
  expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer))).toBe(true);
  // another association of the same sums than the direct kernel's: the Winograd path ran
  expect(Buffer.from(direct.buffer).equals(Buffer.from(one.buffer))).toBe(false);
});

t('Winograd F(2, 5) fused conv + ReLU + pool and input gradient (LeNet-5 conv2) match float64', () => {
  const f = addon!.fp32;
  const g = GEOMS[0][1];
  const { oh, ow, K } = shape(g);
  const x = values(g.n * g.ci * g.h * g.w, 11);
  const filter = values(25 * g.ci * g.co, 12);
  const bias = values(g.co, 13);
  const conv = conv64(g, x, filter, bias);
  const [ph, pw] = [oh / 2, ow / 2];
  const y = new Float32Array(g.n * g.co * ph * pw);
  const at = new Int32Array(Math.ceil(y.length / 4));
  f.conv2dNchwReluMaxPool(x, filter, y, at, geometry(g), bias);
  const taps = new Uint8Array(at.buffer);
  const tol = 2e-6 * Math.sqrt(K);
  let checked = 0;
  for (let p = 0; p < g.n * g.co; p++)
    for (let i = 0; i < ph; i++)
      for (let j = 0; j < pw; j++) {
        const v = [0, 1, 2, 3].map((k) => conv[(p * oh + 2 * i + (k >> 1)) * ow + 2 * j + (k & 1)]);
        const m = Math.max(...v);
        const sorted = [...v].sort((a, b) => b - a);
        // near ties (and near zero) may pick another tap within the tolerance: skip them
        if (sorted[0] - sorted[1] < 10 * tol * (1 + Math.abs(m)) || Math.abs(m) < 10 * tol) continue;
        const e = (p * ph + i) * pw + j;
        expect(Math.abs(y[e] - Math.max(0, m))).toBeLessThanOrEqual(tol * (1 + Math.abs(m)));
        expect(taps[e]).toBe(m > 0 ? v.indexOf(m) : 4);
        checked++;
      }
  expect(checked).toBeGreaterThan(y.length * 0.9);
  // the input gradient: dx = the correlation of dy with the flipped filter, channels swapped
  const dy = values(g.n * g.co * oh * ow, 14);
  const dx = new Float32Array(x.length);
  f.conv2dNchwBackpropInput(dy, filter, dx, geometry(g));
  const want = new Float64Array(x.length);
  for (let b = 0; b < g.n; b++)
    for (let o = 0; o < g.co; o++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          const d = dy[((b * g.co + o) * oh + i) * ow + j];
          for (let c = 0; c < g.ci; c++)
            for (let kh = 0; kh < 5; kh++)
              for (let kw = 0; kw < 5; kw++) {
                const ih = i + kh - g.pad[0];
                const iw = j + kw - g.pad[1];
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                want[((b * g.ci + c) * g.h + ih) * g.w + iw] +=
                  d * filter[((kh * 5 + kw) * g.ci + c) * g.co + o];
              }
        }
  expect(worst(dx, want)).toBeLessThanOrEqual(2e-6 * Math.sqrt(g.co * 25));
});
