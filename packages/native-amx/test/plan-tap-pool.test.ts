// One-input-channel convolutions (LeNet-5's conv1) on "tap planes" (conv_direct.cc
// tapGeometryOf: each dword of a layout pixel holds 4 taps of its kernel window, the convolution a
// 1x1 over ceil(kh kw / 4) quads; with a fused 2x2 max pool the layout is in pool order and the
// kernel's epilogue takes the maximum of the 4 pixels of 16 windows), through an execution plan,
// against core's JS kernels called one by one: qconv2d to u8, then qpool2d. Geometries with odd
// outputs (the floor pool drops a row and a column), a last partial tile of windows, dilation,
// several channel blocks, weight zero points (the activation sums), tiny multipliers (the float64
// epilogue) and multipliers that put a pooled value next to a rounding half, 1 and 2 threads.
import { referenceKernels as js, qpool2d } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels, setThreads } from '../src/index.js';
import { convPoolPlan, ints, pooledTieMultipliers, runPlanOnce } from './helpers.js';

interface Geometry {
  name: string;
  B: number;
  O: number;
  H: number;
  W: number;
  kh: number;
  kw: number;
  pad: number;
  dil: number;
}

const GEOMETRIES: Geometry[] = [
  { name: 'LeNet-5 conv1 (28x28, 5x5, pad 2)', B: 3, O: 13, H: 28, W: 28, kh: 5, kw: 5, pad: 2, dil: 1 },
  { name: 'odd output 27x27 (3x3, pad 1)', B: 2, O: 7, H: 27, W: 27, kh: 3, kw: 3, pad: 1, dil: 1 },
  { name: '12x20, 5x5, no padding, windows 4 x 8', B: 5, O: 6, H: 12, W: 20, kh: 5, kw: 5, pad: 0, dil: 1 },
  { name: '3x5 kernel, dilation 2, 15x11', B: 2, O: 9, H: 15, W: 11, kh: 3, kw: 5, pad: 3, dil: 2 },
  { name: '5x5 on 5x5 (one window a row)', B: 4, O: 4, H: 5, W: 5, kh: 5, kw: 5, pad: 2, dil: 1 },
];

function setup(g: Geometry) {
  const { B, O, H, W, kh, kw, pad, dil } = g;
  const kg = kh * kw;
  const ho = H + 2 * pad - dil * (kh - 1);
  const wo = W + 2 * pad - dil * (kw - 1);
  const seed = H * 131 + W * 7 + kh;
  const x = Float64Array.from(ints(seed, B * H * W, 0, 255));
  const w = Int8Array.from(ints(seed + 1, O * kg, -128, 127));
  const zwNonZero = Int32Array.from(ints(seed + 2, O, -5, 5));
  return { ...g, kg, ho, wo, x, w, zwNonZero };
}
type Setup = ReturnType<typeof setup>;

/** The plan's pooled u8 outputs (conv, then a 2x2 max pool folded into it). */
function planConvPool(s: Setup, zw: Int32Array, mult: Float64Array, zo: number, relu: boolean): number[] {
  const packed = nativeKernels.packWeights(s.w, s.O, s.kg, zw);
  const layer = {
    c: 1,
    o: s.O,
    h: s.H,
    w: s.W,
    kh: s.kh,
    kw: s.kw,
    pad: s.pad,
    dil: s.dil,
    packed,
    mult,
    zo,
    relu,
  };
  return runPlanOnce(convPoolPlan(layer), s.x, s.B);
}

function convArgs(s: Setup, zw: Int32Array) {
  return {
    x: Uint8Array.from(s.x),
    xShape: [s.B, 1, s.H, s.W] as [number, number, number, number],
    xScale: 1,
    xZeroPoint: 0,
    w: js.packWeights(s.w, s.O, s.kg, zw),
    wShape: [s.O, 1, s.kh, s.kw] as [number, number, number, number],
    padding: [s.pad, s.pad] as [number, number],
    dilation: [s.dil, s.dil] as [number, number],
  };
}

/** The JS kernels one by one: the u8 convolution, then the max pool. */
function reference(s: Setup, zw: Int32Array, mult: Float64Array, zo: number, relu: boolean): number[] {
  const conv = js.qconv2d({
    ...convArgs(s, zw),
    wScale: mult,
    output: { kind: 'u8', scale: 1, zeroPoint: zo, relu },
  });
  return [
    ...qpool2d({
      x: conv as Uint8Array,
      xShape: [s.B, s.O, s.ho, s.wo],
      zeroPoint: zo,
      pool: { kind: 'max', kernel: [2, 2] },
    }),
  ];
}

describe.skipIf(!nativeAvailable)('plan: one-channel convolution + 2x2 max pool on tap planes', () => {
  afterAll(() => setThreads(2));

  for (const g of GEOMETRIES) {
    test(g.name, () => {
      const s = setup(g);
      const zeros = new Int32Array(g.O);
      // multipliers that spread the sums over the u8 range; one channel with a tiny multiplier
      // (not float32-safe: the float64 epilogue) and one with a multiplier of 1 (saturates)
      const mult = Float64Array.from(ints(g.O, g.O, 1, 1000), (v) => v * 2e-6);
      mult[0] = 1e-20;
      if (g.O > 2) mult[2] = 1;
      for (const [zw, zo, relu] of [
        [zeros, 0, true],
        [s.zwNonZero, 7, false],
        [s.zwNonZero, 3, true],
      ] as const) {
        const want = reference(s, zw, mult, zo, relu);
        for (const threads of [1, 2]) {
          setThreads(threads);
          expect(planConvPool(s, zw, mult, zo, relu), `zo ${zo}, relu ${relu}, ${threads} threads`).toEqual(
            want,
          );
        }
      }
    });
  }

  test('float32 lands on the wrong side of a rounding half for a pooled value: the float64 result', () => {
    const s = setup(GEOMETRIES[0]);
    const { O, ho, wo, B } = s;
    const zw = s.zwNonZero;
    const sums = js.qconv2d({ ...convArgs(s, zw), wScale: 1, output: { kind: 'i32' } }) as Int32Array;
    const zo = 2;
    const found = pooledTieMultipliers(sums, [B, O, ho, wo], zo, 1000);
    expect(found.indexOf(undefined), 'a channel without a tie').toBe(-1);
    const mult = Float64Array.from(found, (m) => m ?? 0);
    const want = reference(s, zw, mult, zo, false);
    for (const threads of [1, 2]) {
      setThreads(threads);
      expect(planConvPool(s, zw, mult, zo, false), `${threads} threads`).toEqual(want);
    }
  });
});
