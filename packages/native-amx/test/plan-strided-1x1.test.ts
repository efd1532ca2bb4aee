// An unpadded 1x1 convolution with strides (ResNet's shortcuts) in a plan: plan.cc copies out the
// pixels its strides read and runs a stride-1 convolution over them (2 x 2 strides over planes of
// an even number of rows of 2-32 pixels: one vpermb per 64 bytes; other column strides of 2: a
// vector copy per row, rows past 64 bytes in two steps; a scalar copy otherwise). Against core's JS qconv2d
// on the whole input: a copy that picks the wrong rows or columns changes the bytes.
import { referenceKernels as js, type PlanDescription } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels, setThreads } from '../src/index.js';
import { identityLayer, runPlanOnce } from './helpers.js';

/** Deterministic integers in [lo, hi] (a small LCG). */
function ints(seed: number, n: number, lo: number, hi: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}

interface Case {
  name: string;
  c: number;
  o: number;
  h: number;
  w: number;
  stride: [number, number];
}

const CASES: Case[] = [
  // rows of a power of two <= 32 pixels, planes of an even number of rows: one vpermb per 64 bytes
  { name: 'stride 2, 8 x 16 planes (runs of rows)', c: 3, o: 8, h: 8, w: 16, stride: [2, 2] },
  { name: 'stride 2, 6 x 4 planes (runs of rows)', c: 8, o: 5, h: 6, w: 4, stride: [2, 2] },
  { name: 'stride 2, odd 15 x 15', c: 5, o: 8, h: 15, w: 15, stride: [2, 2] },
  { name: 'stride 2, rows of 70 (two steps a row)', c: 3, o: 4, h: 5, w: 70, stride: [2, 2] },
  { name: 'strides 3 x 2', c: 4, o: 6, h: 10, w: 9, stride: [3, 2] },
  { name: 'strides 2 x 3 (scalar copy)', c: 2, o: 5, h: 7, w: 11, stride: [2, 3] },
];

const B = 3;

describe.skipIf(!nativeAvailable)('plan: a strided 1x1 convolution equals qconv2d on the whole input', () => {
  afterAll(() => setThreads(2));

  for (const t of CASES) {
    test(t.name, () => {
      const [sh, sw] = t.stride;
      const ho = Math.floor((t.h - 1) / sh) + 1;
      const wo = Math.floor((t.w - 1) / sw) + 1;
      const inSize = t.c * t.h * t.w;
      const outSize = t.o * ho * wo;
      const x = Float64Array.from(ints(7, B * inSize, 0, 255));
      const w = Int8Array.from(ints(8, t.o * t.c, -100, 127));
      const zw = Int32Array.from(ints(9, t.o, -3, 3));
      const mult = Float64Array.from(ints(10, t.o, 1, 9), (v) => v * 0.0011);
      const zo = 7;
      const want = js.qconv2d({
        x: Uint8Array.from(x),
        xShape: [B, t.c, t.h, t.w],
        xScale: 1,
        xZeroPoint: 0,
        w: js.packWeights(w, t.o, t.c, zw),
        wShape: [t.o, t.c, 1, 1],
        wScale: mult,
        stride: t.stride,
        output: { kind: 'u8', scale: 1, zeroPoint: zo, relu: true },
      });
      const slot = (index: number) => ({ shared: false, index });
      const steps = [
        { op: 'quantize', out: slot(0), scale: 1, zeroPoint: 0, qmax: 255 },
        { op: 'layer', layer: 0, in: slot(0), out: slot(1) },
        { op: 'layer', layer: 1, in: slot(1), out: slot(2) },
      ] as PlanDescription['steps'];
      const desc: PlanDescription = {
        inputSize: inSize,
        classes: outSize,
        taskSlots: [inSize, outSize, 4 * outSize],
        sharedSlots: [],
        steps,
        sharedSteps: steps.map(() => false),
        layers: [
          {
            op: 'conv2d',
            n: t.o,
            k: t.c,
            inSize,
            outSize,
            inZeroPoint: 0,
            conv: {
              input: [t.c, t.h, t.w],
              wShape: [t.o, t.c, 1, 1],
              stride: t.stride,
              padding: [0, 0],
              dilation: [1, 1],
            },
            output: { kind: 'u8', zeroPoint: zo, relu: true, qmax: 255 },
            weights: {
              kind: 'sets',
              sets: [{ packed: nativeKernels.packWeights(w, t.o, t.c, zw), mult }],
              cycle: false,
            },
          },
          identityLayer(outSize),
        ],
        output: slot(2),
      };
      for (const threads of [1, 2]) {
        setThreads(threads);
        expect(runPlanOnce(desc, x, B), `${threads} threads`).toEqual([...want]);
      }
    });
  }
});
