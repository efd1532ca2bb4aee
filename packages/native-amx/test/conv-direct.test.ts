// The layouts of the direct AVX-512 convolution (native/src/conv_direct.cc), each against the JS
// reference byte for byte on every path: shifted plane copies (stride 1, output rows not a
// multiple of 16 pixels), the first layer's shifted virtual channels (C = 1, 2, 3) combined with
// plane copies, tap planes (one input channel a group, stride 1), stride 2 on phase planes (built straight from the input, or split from a full
// plane when input rows are wider than 32 pixels), 1x1, the plain-build fallback (source windows wider
// than 128 bytes), pixel groups spanning images, K near MAX_GEMM_K, and the extreme operands
// 0 / 255 x -128 / 127.
import { type GemmOutput, MAX_GEMM_K, referenceKernels } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { int, rng, sameBytes } from '../../core/test/kernel-cases.js';
import { nativeAvailable, nativeKernels, setIsa, setThreads } from '../src/index.js';
import { paths } from './helpers.js';

interface Geometry {
  name: string;
  c: number;
  o: number;
  h: number;
  w: number;
  k: [number, number];
  stride?: [number, number];
  pad?: [number, number];
  dil?: [number, number];
  groups?: number;
  batch: number;
}

const GEOMETRIES: Geometry[] = [
  { name: 'LeNet-5 conv2 (Wo 14, copies)', c: 20, o: 50, h: 14, w: 14, k: [5, 5], pad: [2, 2], batch: 6 },
  { name: 'odd, kw 7, dil 2', c: 5, o: 13, h: 17, w: 19, k: [3, 7], pad: [1, 3], dil: [1, 2], batch: 3 },
  { name: 'row kernel 1x3', c: 9, o: 7, h: 6, w: 11, k: [1, 3], pad: [0, 1], batch: 2 },
  { name: 'column kernel 3x1', c: 6, o: 8, h: 11, w: 6, k: [3, 1], pad: [1, 0], batch: 2 },
  { name: '8x8 outputs (groups span rows)', c: 96, o: 40, h: 8, w: 8, k: [3, 3], pad: [1, 1], batch: 5 },
  { name: '4x4 outputs, tiles of images', c: 64, o: 30, h: 4, w: 4, k: [3, 3], pad: [1, 1], batch: 9 },
  // images of at most 16 pixels: each quad's planes one vpermb run (TinyPlanes), a partial quad
  { name: 'tiny planes 3x5, C 6', c: 6, o: 11, h: 3, w: 5, k: [3, 3], pad: [1, 1], batch: 4 },
  { name: 'tiny planes 4x4, C 10, 2x3 kernel', c: 10, o: 7, h: 4, w: 4, k: [2, 3], pad: [1, 0], batch: 3 },
  { name: 'tiny planes grouped', c: 8, o: 6, h: 4, w: 4, k: [3, 3], pad: [1, 1], groups: 2, batch: 3 },
  { name: 'tiny planes dilated', c: 5, o: 4, h: 4, w: 4, k: [3, 3], pad: [2, 2], dil: [2, 2], batch: 2 },
  // images of 17 to 64 pixels: a quad's planes one 128-byte run (up to 32 pixels) or two (channel
  // pairs), partial quads of 3, 2 and 1 channels
  { name: 'small planes 5x6, C 7 (one run)', c: 7, o: 9, h: 5, w: 6, k: [3, 3], pad: [1, 1], batch: 3 },
  { name: 'small planes 1x17, 1x3 kernel', c: 8, o: 5, h: 1, w: 17, k: [1, 3], pad: [0, 1], batch: 2 },
  { name: 'small planes 4x8, C 6', c: 6, o: 7, h: 4, w: 8, k: [3, 3], pad: [1, 1], batch: 2 },
  { name: 'small planes 7x9, C 10, 2x3 kernel', c: 10, o: 11, h: 7, w: 9, k: [2, 3], pad: [1, 0], batch: 3 },
  { name: 'small planes 8x8, C 9, 1x1', c: 9, o: 13, h: 8, w: 8, k: [1, 1], batch: 3 },
  {
    name: 'small planes grouped, dilated',
    c: 6,
    o: 4,
    h: 6,
    w: 7,
    k: [3, 3],
    pad: [2, 2],
    dil: [2, 2],
    groups: 2,
    batch: 2,
  },
  { name: 'Wo 1 (a group spans 16 rows)', c: 4, o: 5, h: 9, w: 5, k: [5, 5], batch: 3 },
  { name: 'Wo 1, tall (plain plane build)', c: 4, o: 5, h: 40, w: 5, k: [3, 5], batch: 2 },
  { name: 'C 2, Wo 2, kw 19 (plain build)', c: 2, o: 3, h: 34, w: 20, k: [3, 19], pad: [1, 0], batch: 2 },
  { name: 'input smaller than the padding', c: 3, o: 4, h: 2, w: 3, k: [3, 3], pad: [2, 2], batch: 2 },
  { name: 'grouped, copies', c: 12, o: 10, h: 9, w: 10, k: [3, 3], pad: [1, 1], groups: 2, batch: 2 },
  { name: 'C 1, 5x5 (4 taps a dword)', c: 1, o: 20, h: 28, w: 28, k: [5, 5], pad: [2, 2], batch: 3 },
  { name: 'C 1, 3x11, dil 2', c: 1, o: 6, h: 13, w: 30, k: [3, 11], pad: [1, 4], dil: [1, 2], batch: 2 },
  // one input channel a group at stride 1: tap planes (4 taps of the kernel window a dword)
  {
    name: 'depthwise 3x3 (tap planes a group)',
    c: 6,
    o: 12,
    h: 9,
    w: 11,
    k: [3, 3],
    pad: [1, 1],
    groups: 6,
    batch: 2,
  },
  {
    name: 'C 1, 5x5 on 100-wide rows, dil 2',
    c: 1,
    o: 5,
    h: 7,
    w: 100,
    k: [5, 5],
    pad: [3, 2],
    dil: [2, 1],
    batch: 2,
  },
  { name: 'C 2, 3x3 (2 taps a dword)', c: 2, o: 9, h: 10, w: 13, k: [3, 3], pad: [1, 1], batch: 2 },
  { name: 'C 3, 3x3 stem', c: 3, o: 24, h: 15, w: 15, k: [3, 3], pad: [1, 1], batch: 2 },
  { name: 'C 1 stride 2', c: 1, o: 7, h: 15, w: 15, k: [5, 5], stride: [2, 2], pad: [2, 2], batch: 2 },
  { name: '1x1 stride 1 (Wo 14)', c: 24, o: 48, h: 14, w: 14, k: [1, 1], batch: 3 },
  { name: '1x1 stride 2', c: 24, o: 48, h: 15, w: 15, k: [1, 1], stride: [2, 2], batch: 2 },
  { name: '1x1 stride 2 padded', c: 5, o: 6, h: 7, w: 9, k: [1, 1], stride: [2, 2], pad: [1, 1], batch: 2 },
  { name: '3x3 stride 2', c: 24, o: 48, h: 15, w: 16, k: [3, 3], stride: [2, 2], pad: [1, 1], batch: 2 },
  // stride 2 on phase planes: one output row a group (Wo 16), odd padded width and height, Wo 4
  { name: '3x3 s2, Wo 16', c: 8, o: 20, h: 32, w: 32, k: [3, 3], stride: [2, 2], pad: [1, 1], batch: 3 },
  { name: '5x5 s2, odd planes', c: 5, o: 7, h: 13, w: 11, k: [5, 5], stride: [2, 2], pad: [2, 2], batch: 2 },
  { name: '3x3 stride 2, Wo 4', c: 12, o: 9, h: 8, w: 8, k: [3, 3], stride: [2, 2], pad: [1, 1], batch: 5 },
  { name: '3x2 stride 2, no padding', c: 6, o: 5, h: 10, w: 9, k: [3, 2], stride: [2, 2], batch: 2 },
  // phase planes straight from the input for input rows of up to 32 pixels; wider ones split a full plane
  { name: '3x3 s2, 32-pixel rows unpadded', c: 5, o: 6, h: 7, w: 32, k: [3, 3], stride: [2, 2], batch: 2 },
  { name: 's2 w33 (split)', c: 4, o: 5, h: 6, w: 33, k: [3, 3], stride: [2, 2], pad: [1, 1], batch: 2 },
  { name: 's2 w70 (split)', c: 5, o: 6, h: 5, w: 70, k: [3, 3], stride: [2, 2], pad: [1, 1], batch: 2 },
  { name: 'batch 1, 16-wide rows', c: 8, o: 16, h: 5, w: 16, k: [3, 3], pad: [1, 1], batch: 1 },
];

/** Input, weights and output stage: random, or the extremes (every x = xFill, every w = wFill). */
function argsOf(g: Geometry, seed: number, extreme?: { x: number; w: number; za: number }) {
  const r = rng(seed);
  const groups = g.groups ?? 1;
  const [kh, kw] = g.k;
  const cg = g.c / groups;
  const kg = cg * kh * kw;
  const x = Uint8Array.from({ length: g.batch * g.c * g.h * g.w }, () => extreme?.x ?? int(r, 0, 255));
  const w = Int8Array.from({ length: g.o * kg }, () => extreme?.w ?? int(r, -128, 127));
  const zw = Int32Array.from({ length: g.o }, () => (extreme || seed % 2 === 0 ? 0 : int(r, -6, 6)));
  const kinds: GemmOutput[] = [
    { kind: 'u8', scale: 5 + r() * 100, zeroPoint: int(r, 0, 30), relu: true },
    { kind: 'u8', scale: 5 + r() * 100, zeroPoint: int(r, 100, 160), relu: false },
    { kind: 'i32' },
    { kind: 'f32' },
  ];
  return {
    args: {
      x,
      xShape: [g.batch, g.c, g.h, g.w] as [number, number, number, number],
      xScale: 0.02,
      xZeroPoint: extreme?.za ?? int(r, 0, 255),
      wShape: [g.o, cg, kh, kw] as [number, number, number, number],
      wScale: Float64Array.from({ length: g.o }, () => 0.001 + r() * 0.01),
      bias: seed % 3 === 0 ? undefined : Int32Array.from({ length: g.o }, () => int(r, -30_000, 30_000)),
      stride: g.stride ?? ([1, 1] as [number, number]),
      padding: g.pad ?? ([0, 0] as [number, number]),
      dilation: g.dil ?? ([1, 1] as [number, number]),
      groups,
      output: kinds[seed % kinds.length],
    },
    w,
    zw,
    kg,
  };
}

/** The reference once, then the native kernels on every path this machine runs. */
function check(g: Geometry, seed: number, extreme?: { x: number; w: number; za: number }) {
  const { args, w, zw, kg } = argsOf(g, seed, extreme);
  const want = referenceKernels.qconv2d({ ...args, w: referenceKernels.packWeights(w, g.o, kg, zw) });
  for (const path of paths()) {
    setIsa(path as never);
    const got = nativeKernels.qconv2d({ ...args, w: nativeKernels.packWeights(w, g.o, kg, zw) });
    const what = `${path} ${g.name} seed ${seed}${extreme ? ` extreme ${JSON.stringify(extreme)}` : ''}`;
    sameBytes(got, want, what);
  }
}

describe.skipIf(!nativeAvailable)('direct convolution layouts equal the JS reference', () => {
  afterAll(() => {
    setIsa('best');
    setThreads(2);
  });
  test(`geometries x output kinds x zero points, on ${paths().join(', ')}`, () => {
    for (const g of GEOMETRIES) for (let seed = 1; seed <= 4; seed++) check(g, seed);
  });

  test('extreme operands: x 0 / 255, w -128 / 127, zero points 0 / 255', () => {
    const names = [
      'LeNet-5 conv2 (Wo 14, copies)',
      '8x8 outputs (groups span rows)',
      'Wo 1, tall (plain plane build)',
      'C 1, 5x5 (4 taps a dword)',
      '1x1 stride 2',
    ];
    const picked = GEOMETRIES.filter((x) => names.includes(x.name));
    expect(picked).toHaveLength(names.length);
    for (const g of picked.map((x) => ({ ...x, batch: 2 })))
      for (const x of [0, 255])
        for (const wv of [-128, 127]) for (const za of [0, 255]) check(g, 2 + (x & 3) + za, { x, w: wv, za });
  });

  test('u8 requantisation on and next to rounding ties (round half to even of the float64 product)', () => {
    // Multipliers (xScale 1 x per-channel wScale / output scale 1) whose products land on or
    // within float32 error of half-integers (0.5 (1 + 2^-30) is 0.5 in float32), one outside
    // float32's range, one tiny. C 2 (9 sources: the epilogue after the kernel) and C 8 (18
    // sources: the pipelined epilogue, requantised inside the next tile's kernel).
    const near = [
      0.5,
      0.5 * (1 + 2 ** -30),
      0.5 * (1 - 2 ** -30),
      0.25 * (1 + 2 ** -26),
      1.5 * (1 - 2 ** -25),
    ];
    const ms = [...near, 1 / 3, 0.1, 0.5 * (1 + 2 ** -14), 0.75];
    const big = [...ms.slice(0, 4), 2 ** 101];
    const small = [...ms.slice(0, 4), 1e-31];
    const r = rng(77);
    for (const c of [2, 8])
      for (const wScale of [ms, big, small]) {
        const o = wScale.length;
        const g: Geometry = { name: 'ties', c, o, h: 9, w: 11, k: [3, 3], pad: [1, 1], batch: 2 };
        const kg = c * 9;
        for (const relu of [false, true]) {
          const args = {
            x: Uint8Array.from({ length: g.batch * g.c * g.h * g.w }, () => int(r, 0, 12)),
            xShape: [g.batch, g.c, g.h, g.w] as [number, number, number, number],
            xScale: 1,
            xZeroPoint: 4,
            wShape: [o, g.c, 3, 3] as [number, number, number, number],
            wScale: Float64Array.from(wScale),
            padding: [1, 1] as [number, number],
            output: { kind: 'u8', scale: 1, zeroPoint: relu ? 0 : 128, relu } as GemmOutput,
          };
          const w = Int8Array.from({ length: o * kg }, () => int(r, -5, 5));
          const want = referenceKernels.qconv2d({ ...args, w: referenceKernels.packWeights(w, o, kg, 0) });
          for (const path of paths()) {
            setIsa(path as never);
            const got = nativeKernels.qconv2d({ ...args, w: nativeKernels.packWeights(w, o, kg, 0) });
            sameBytes(got, want, `${path} ties C ${c} relu ${relu} multipliers ${wScale.length}`);
          }
        }
      }
  });

  test('u8 requantisation where float32 arithmetic lands on the wrong side of a rounding half', () => {
    // The AVX-512 epilogue requantises in float32 (one fma) and redoes a channel in float64 when a
    // lane lies within 2^-12 of a rounding half. Each channel's multiplier here is made so that one
    // output's float64 product lies just above a half-integer while the float32 fma result lies
    // just below it (not on it): a missing fallback or too small an error margin rounds it down.
    // C 4: the epilogue after the kernel; C 8: the pipelined one (18 sources).
    for (const c of [4, 8]) {
      const g: Geometry = { name: 'crafted', c, o: 16, h: 12, w: 12, k: [3, 3], pad: [1, 1], batch: 2 };
      const r = rng(4242);
      const kg = c * 9;
      const x = Uint8Array.from({ length: g.batch * g.c * g.h * g.w }, () => int(r, 0, 255));
      const w = Int8Array.from({ length: g.o * kg }, () => int(r, -40, 127));
      const base = {
        x,
        xShape: [g.batch, g.c, g.h, g.w] as [number, number, number, number],
        xScale: 1,
        xZeroPoint: 0,
        wShape: [g.o, g.c, 3, 3] as [number, number, number, number],
        padding: [1, 1] as [number, number],
      };
      const hw = g.h * g.w;
      const sums = referenceKernels.qconv2d({
        ...base,
        wScale: 1,
        w: referenceKernels.packWeights(w, g.o, kg, 0),
        output: { kind: 'i32' },
      }) as Int32Array;
      const f32 = (v: number, m: number, zo: number) => Math.fround(Math.fround(v) * Math.fround(m) + zo);
      for (const [zo, relu] of [
        [3, false],
        [0, true],
      ] as const) {
        const wScale = new Float64Array(g.o);
        for (let oc = 0; oc < g.o; oc++) {
          // a sum v of the channel and a half-integer h + 1/2 (h + zo high in its float32 binade, m
          // low in its own, so that rounding m to float32 moves v m by more than half an ulp of f)
          let found = false;
          for (let i = 0; i < g.batch * hw && !found; i++) {
            const v = sums[(Math.floor(i / hw) * g.o + oc) * hw + (i % hw)];
            if (v < 1e5) continue;
            for (let h = 200 - zo; h < 255 - zo && !found; h++) {
              let m = (h + 0.5) / v;
              for (let k = 0; k < 8 && v * m <= h + 0.5; k++) m *= 1 + 2 ** -52;
              const p = v * m; // float64, as the reference
              found = p > h + 0.5 && p - (h + 0.5) < 2 ** -20 && f32(v, m, zo) < h + 0.5 + zo;
              if (found) wScale[oc] = m;
            }
          }
          expect(found, `channel ${oc}`).toBe(true);
        }
        const args = { ...base, wScale, output: { kind: 'u8', scale: 1, zeroPoint: zo, relu } as GemmOutput };
        const want = referenceKernels.qconv2d({ ...args, w: referenceKernels.packWeights(w, g.o, kg, 0) });
        for (const path of paths()) {
          setIsa(path as never);
          sameBytes(
            nativeKernels.qconv2d({ ...args, w: nativeKernels.packWeights(w, g.o, kg, 0) }),
            want,
            `${path} C ${c} zo ${zo}`,
          );
        }
      }
    }
  });

  test('u8 requantisation with multipliers far above 1: float32 products past 2^31 and -2^31', () => {
    // The float32 epilogue clamps from above only when |m| >= 1/2 and otherwise lets the packs
    // saturate: a product past 2^31 must still give 255 (the float-to-int32 conversion of it is
    // INT_MIN, which saturates to 0), one below -2^31 the lower bound. Channels mix multipliers
    // below 1/2 with 2^22 and more (sums of thousands: products past +-2^31; channel 1's weights
    // are positive, channel 2's negative, so that both bounds are reached). With every
    // multiplier in float32's range the epilogue runs inside the kernel (4 plain pixel groups);
    // one out of range (2^101) sends the others to the float32 epilogue after the kernel.
    const ms = [0.003, 2 ** 22, 2 ** 23, 0.01, 2 ** 40, 0.6, 1e-4, 3];
    const r = rng(91);
    for (const wScale of [ms, [...ms, 2 ** 101]])
      for (const g of [
        { name: 'Wo 11 (copies)', c: 8, o: wScale.length, h: 9, w: 11, k: [3, 3], pad: [1, 1], batch: 2 },
        { name: '32x32 (w24-like)', c: 8, o: wScale.length, h: 32, w: 32, k: [3, 3], pad: [1, 1], batch: 1 },
      ] satisfies Geometry[]) {
        const kg = g.c * 9;
        const x = Uint8Array.from({ length: g.batch * g.c * g.h * g.w }, () => int(r, 0, 255));
        const w = Int8Array.from({ length: g.o * kg }, (_, i) =>
          i < kg || i >= 3 * kg ? int(r, -128, 127) : i < 2 * kg ? int(r, 1, 127) : int(r, -128, -1),
        );
        for (const [zo, relu] of [
          [7, true],
          [130, false],
        ] as const) {
          const args = {
            x,
            xShape: [g.batch, g.c, g.h, g.w] as [number, number, number, number],
            xScale: 1,
            xZeroPoint: 9,
            wShape: [g.o, g.c, 3, 3] as [number, number, number, number],
            wScale: Float64Array.from(wScale),
            padding: [1, 1] as [number, number],
            output: { kind: 'u8', scale: 1, zeroPoint: zo, relu } as GemmOutput,
          };
          const want = referenceKernels.qconv2d({ ...args, w: referenceKernels.packWeights(w, g.o, kg, 0) });
          const hw = g.h * g.w;
          const channel = (oc: number) =>
            Array.from(
              { length: g.batch * hw },
              (_, i) => want[(Math.floor(i / hw) * g.o + oc) * hw + (i % hw)],
            );
          expect(channel(1).filter((v) => v === 255).length, `${g.name}: 255 under 2^22`).toBeGreaterThan(
            hw / 2,
          );
          const lo = relu ? zo : 0;
          expect(channel(2).filter((v) => v === lo).length, `${g.name}: ${lo} under 2^23`).toBeGreaterThan(
            hw / 2,
          );
          for (const path of paths()) {
            setIsa(path as never);
            const got = nativeKernels.qconv2d({ ...args, w: nativeKernels.packWeights(w, g.o, kg, 0) });
            sameBytes(got, want, `${path} ${g.name} zo ${zo} relu ${relu} multipliers ${wScale.length}`);
          }
        }
      }
  });

  test('K near MAX_GEMM_K on the direct kernel: 3660 channels x 3x3 = 32940', () => {
    const c = 3660;
    expect(c * 9).toBeLessThanOrEqual(MAX_GEMM_K);
    expect(c * 9).toBeGreaterThan(MAX_GEMM_K - 100);
    const g: Geometry = { name: 'K near the limit', c, o: 18, h: 4, w: 5, k: [3, 3], pad: [1, 1], batch: 1 };
    check(g, 1);
    check(g, 3, { x: 255, w: -128, za: 0 });
  });

  test('the same bytes on 1 and 2 threads', () => {
    setIsa('best');
    for (const g of GEOMETRIES) {
      const { args, w, zw, kg } = argsOf(g, 5);
      const outs = [1, 2].map((t) => {
        setThreads(t);
        return nativeKernels.qconv2d({ ...args, w: nativeKernels.packWeights(w, g.o, kg, zw) });
      });
      sameBytes(outs[1], outs[0], `threads ${g.name}`);
    }
  });
});
