// A 2x2 max pool folded into a stride-1 convolution whose output rows are not a multiple of 16
// pixels wide (LeNet-5's conv2: 14): when the batch tile is whole groups of 16 / gcd(Wo, 16)
// images, conv_direct.cc lays those images side by side (wideRowsOf: shifted copies, one pooled
// value of a pair of rows can belong to any of up to 3 images). Against core's JS kernels called
// one by one: qconv2d to u8, then qpool2d; on 1 and 2 threads, with and without weight zero points,
// and with multipliers that send pooled values to the float64 redo. Batches that are not whole
// groups take the one-image geometry: both must give the JS bytes.
import { referenceKernels as js } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels, setThreads } from '../src/index.js';
import { convPoolPlan, convThenPool, ints, pooledTieMultipliers, runPlanOnce } from './helpers.js';

const SHAPES = [
  {
    name: 'LeNet-5 conv2, Wo 14: 2 units of 8',
    c: 20,
    o: 50,
    h: 14,
    w: 14,
    k: 5,
    pad: 2,
    dil: 1,
    g: 1,
    batch: 16,
  },
  { name: 'Wo 10 (8 images), 3x3', c: 6, o: 13, h: 10, w: 10, k: 3, pad: 1, dil: 1, g: 1, batch: 8 },
  { name: 'Wo 12 (4 images), 3 groups', c: 9, o: 7, h: 12, w: 12, k: 3, pad: 1, dil: 1, g: 1, batch: 12 },
  { name: 'Wo 24: units of 2', c: 4, o: 5, h: 9, w: 24, k: 3, pad: 1, dil: 1, g: 1, batch: 4 },
  { name: 'Ho 11 (last row dropped), Wo 14', c: 5, o: 9, h: 11, w: 14, k: 3, pad: 1, dil: 1, g: 1, batch: 8 },
  { name: 'dilation 2, Wo 14', c: 8, o: 6, h: 14, w: 14, k: 3, pad: 2, dil: 2, g: 1, batch: 8 },
  { name: '2 convolution groups, Wo 14', c: 8, o: 6, h: 14, w: 14, k: 3, pad: 1, dil: 1, g: 2, batch: 8 },
  { name: 'batch 6: one image a layout', c: 20, o: 11, h: 14, w: 14, k: 5, pad: 2, dil: 1, g: 1, batch: 6 },
];
type Shape = (typeof SHAPES)[number];

function setup(s: Shape, seed: number, zeroPoints: boolean) {
  const kg = (s.c / s.g) * s.k * s.k;
  const ho = s.h + 2 * s.pad - s.dil * (s.k - 1);
  const wo = s.w + 2 * s.pad - s.dil * (s.k - 1);
  const x = Float64Array.from(ints(seed, s.batch * s.c * s.h * s.w, 0, 255));
  const w = Int8Array.from(ints(seed + 1, s.o * kg, -128, 127));
  const zw = Int32Array.from(zeroPoints ? ints(seed + 2, s.o, -9, 9) : new Array<number>(s.o).fill(0));
  const convArgs = {
    x: Uint8Array.from(x),
    xShape: [s.batch, s.c, s.h, s.w] as [number, number, number, number],
    xScale: 1,
    xZeroPoint: 0,
    w: js.packWeights(w, s.o, kg, zw),
    wShape: [s.o, s.c / s.g, s.k, s.k] as [number, number, number, number],
    groups: s.g,
    padding: [s.pad, s.pad] as [number, number],
    dilation: [s.dil, s.dil] as [number, number],
  };
  const plan = (mult: Float64Array, zo: number, relu: boolean) =>
    runPlanOnce(
      convPoolPlan({
        c: s.c,
        o: s.o,
        h: s.h,
        w: s.w,
        kh: s.k,
        kw: s.k,
        pad: s.pad,
        dil: s.dil,
        packed: nativeKernels.packWeights(w, s.o, kg, zw),
        mult,
        zo,
        relu,
        groups: s.g,
      }),
      x,
      s.batch,
    );
  const dims: [number, number, number, number] = [s.batch, s.o, ho, wo];
  const reference = (mult: Float64Array, zo: number, relu: boolean) =>
    convThenPool(convArgs, dims, mult, zo, relu);
  const sums = () => js.qconv2d({ ...convArgs, wScale: 1, output: { kind: 'i32' } }) as Int32Array;
  return { plan, reference, sums, dims, kg };
}

describe.skipIf(!nativeAvailable)(
  'plan: a fused max pool over images side by side equals conv then pool',
  () => {
    afterAll(() => setThreads(2));

    for (const [i, s] of SHAPES.entries()) {
      test(s.name, () => {
        for (const zeroPoints of [true, false]) {
          const { plan, reference, kg } = setup(s, 100 + 7 * i, zeroPoints);
          // multipliers that put a typical sum (sqrt(kg) 147 74) at 0.01 to 4 times 255
          const mult = Float64Array.from(
            ints(50 + i, s.o, 1, 400),
            (v) => (v / 100) * (0.0234 / Math.sqrt(kg)),
          );
          for (const [zo, relu] of [
            [3, false],
            [0, true],
            [11, true],
          ] as const) {
            const want = reference(mult, zo, relu);
            for (const threads of [1, 2]) {
              setThreads(threads);
              expect(
                plan(mult, zo, relu),
                `zw ${zeroPoints}, zo ${zo}, relu ${relu}, ${threads} threads`,
              ).toEqual(want);
            }
          }
        }
      });
    }

    test('float32 on the wrong side of a rounding half for a pooled value: the float64 result', () => {
      const s = SHAPES[0]!;
      const { plan, reference, sums, dims } = setup(s, 900, true);
      const found = pooledTieMultipliers(sums(), dims, 3, 1e4);
      expect(found.filter((m) => m !== undefined).length, 'channels with a tie').toBeGreaterThan(s.o / 2);
      const mult = Float64Array.from(found, (m) => m ?? 1e-3);
      const want = reference(mult, 3, false);
      for (const threads of [1, 2]) {
        setThreads(threads);
        expect(plan(mult, 3, false), `${threads} threads`).toEqual(want);
      }
    });
  },
);
