// A 2x2 max pool folded into the convolution before it (plan.cc fusePools; conv_direct.cc pools a
// stride-1 convolution's sums in its epilogue, requantising 16 pooled values at once in float32
// where exact, else in float64) against core's JS kernels called one by one: qconv2d to u8, then
// qpool2d. A hand-built plan quantises integer inputs (scale 1), runs the convolution with fixed
// weights and the pool, and returns the pooled bytes as logits through an identity linear layer
// (f32 output, multiplier 1).
import { referenceKernels as js, type PlanDescription, type PlanStep, qpool2d } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels, setThreads } from '../src/index.js';
import { identityLayer, runPlanOnce } from './helpers.js';

const B = 2;
const C = 4;
const O = 16;
const H = 12;
const W = 12;
const KG = C * 9;
const POOLED = O * (H / 2) * (W / 2);

/** Deterministic integers in [lo, hi] (a small LCG). */
function ints(seed: number, n: number, lo: number, hi: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}

const x = Float64Array.from(ints(7, B * C * H * W, 0, 255));
const w = Int8Array.from(ints(8, O * KG, -40, 127));
const zw = Int32Array.from(ints(9, O, -3, 3));

/** The plan's pooled u8 outputs of the convolution (multipliers `mult`, output zero point zo). */
function planConvPool(mult: Float64Array, zo: number, relu: boolean): number[] {
  const slot = (index: number) => ({ shared: false, index });
  const steps: PlanStep[] = [
    { op: 'quantize', out: slot(0), scale: 1, zeroPoint: 0, qmax: 255 },
    { op: 'layer', layer: 0, in: slot(0), out: slot(1) },
    {
      op: 'pool',
      in: slot(1),
      out: slot(2),
      kind: 'max',
      shape: [O, H, W],
      kernel: [2, 2],
      stride: [2, 2],
      padding: [0, 0],
      zeroPoint: zo,
    },
    { op: 'layer', layer: 1, in: slot(2), out: slot(3) },
  ];
  const desc: PlanDescription = {
    inputSize: C * H * W,
    classes: POOLED,
    taskSlots: [C * H * W, O * H * W, POOLED, 4 * POOLED],
    sharedSlots: [],
    steps,
    sharedSteps: steps.map(() => false),
    layers: [
      {
        op: 'conv2d',
        n: O,
        k: KG,
        inSize: C * H * W,
        outSize: O * H * W,
        inZeroPoint: 0,
        conv: { input: [C, H, W], wShape: [O, C, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1] },
        output: { kind: 'u8', zeroPoint: zo, relu, qmax: 255 },
        weights: {
          kind: 'sets',
          sets: [{ packed: nativeKernels.packWeights(w, O, KG, zw), mult }],
          cycle: false,
        },
      },
      identityLayer(POOLED),
    ],
    output: slot(3),
  };
  return runPlanOnce(desc, x, B);
}

const convArgs = {
  x: Uint8Array.from(x),
  xShape: [B, C, H, W] as [number, number, number, number],
  xScale: 1,
  xZeroPoint: 0,
  w: js.packWeights(w, O, KG, zw),
  wShape: [O, C, 3, 3] as [number, number, number, number],
  padding: [1, 1] as [number, number],
};

/** The JS kernels one by one: the u8 convolution, then the max pool. */
function reference(mult: Float64Array, zo: number, relu: boolean): number[] {
  const conv = js.qconv2d({
    ...convArgs,
    wScale: mult,
    output: { kind: 'u8', scale: 1, zeroPoint: zo, relu },
  });
  return [
    ...qpool2d({
      x: conv as Uint8Array,
      xShape: [B, O, H, W],
      zeroPoint: zo,
      pool: { kind: 'max', kernel: [2, 2] },
    }),
  ];
}

describe.skipIf(!nativeAvailable)(
  'plan: a max pool folded into the convolution equals conv then pool',
  () => {
    afterAll(() => setThreads(2));

    test('float32 lands on the wrong side of a rounding half for a pooled value: the float64 result', () => {
      // Each channel's multiplier m makes one pooled (window maximum) corrected sum v land just above
      // a half-integer in float64 while the float32 fma fl32(v) fl32(m) + zo lands just below it:
      // the pooled requantisation must send that vector to float64.
      const sums = js.qconv2d({ ...convArgs, wScale: 1, output: { kind: 'i32' } }) as Int32Array;
      const f32 = (v: number, m: number, zo: number) => Math.fround(Math.fround(v) * Math.fround(m) + zo);
      for (const [zo, relu] of [
        [3, false],
        [0, true],
      ] as const) {
        const mult = new Float64Array(O);
        for (let oc = 0; oc < O; oc++) {
          let found = false;
          for (let i = 0; i < B * (H / 2) * (W / 2) && !found; i++) {
            const b = Math.floor(i / 36);
            const y = Math.floor((i % 36) / 6);
            const c = i % 6;
            const at = (yy: number, cc: number) => sums[((b * O + oc) * H + yy) * W + cc];
            const v = Math.max(
              at(2 * y, 2 * c),
              at(2 * y, 2 * c + 1),
              at(2 * y + 1, 2 * c),
              at(2 * y + 1, 2 * c + 1),
            );
            if (v < 1e5) continue;
            for (let h = 200 - zo; h < 255 - zo && !found; h++) {
              let m = (h + 0.5) / v;
              for (let k = 0; k < 8 && v * m <= h + 0.5; k++) m *= 1 + 2 ** -52;
              const p = v * m;
              found = p > h + 0.5 && p - (h + 0.5) < 2 ** -20 && f32(v, m, zo) < h + 0.5 + zo;
              if (found) mult[oc] = m;
            }
          }
          expect(found, `channel ${oc}`).toBe(true);
        }
        const want = reference(mult, zo, relu);
        for (const threads of [1, 2]) {
          setThreads(threads);
          expect(planConvPool(mult, zo, relu), `zo ${zo}, ${threads} threads`).toEqual(want);
        }
      }
    });
  },
);
