// A 2x2 max pool folded into the convolution before it (plan.cc fusePools; conv_direct.cc pools a
// stride-1 convolution's sums in its epilogue, requantising 16 pooled values at once in float32
// where exact, else in float64) against core's JS kernels called one by one: qconv2d to u8, then
// qpool2d. A hand-built plan quantises integer inputs (scale 1), runs the convolution with fixed
// weights and the pool, and returns the pooled bytes as logits through an identity linear layer
// (f32 output, multiplier 1).
import { referenceKernels as js } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels, setThreads } from '../src/index.js';
import { convPoolPlan, convThenPool, ints, pooledTieMultipliers, runPlanOnce } from './helpers.js';

const B = 2;
const C = 4;
const O = 16;
const H = 12;
const W = 12;
const KG = C * 9;

const x = Float64Array.from(ints(7, B * C * H * W, 0, 255));
const w = Int8Array.from(ints(8, O * KG, -40, 127));
const zw = Int32Array.from(ints(9, O, -3, 3));

/** The plan's pooled u8 outputs of the convolution (multipliers `mult`, output zero point zo). */
function planConvPool(mult: Float64Array, zo: number, relu: boolean): number[] {
  const packed = nativeKernels.packWeights(w, O, KG, zw);
  const layer = { c: C, o: O, h: H, w: W, kh: 3, kw: 3, pad: 1, dil: 1, packed, mult, zo, relu };
  return runPlanOnce(convPoolPlan(layer), x, B);
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
  return convThenPool(convArgs, [B, O, H, W], mult, zo, relu);
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
      for (const [zo, relu] of [
        [3, false],
        [0, true],
      ] as const) {
        const found = pooledTieMultipliers(sums, [B, O, H, W], zo, 1e5);
        expect(found.indexOf(undefined), 'a channel without a tie').toBe(-1);
        const mult = Float64Array.from(found, (m) => m ?? 0);
        const want = reference(mult, zo, relu);
        for (const threads of [1, 2]) {
          setThreads(threads);
          expect(planConvPool(mult, zo, relu), `zo ${zo}, ${threads} threads`).toEqual(want);
        }
      }
    });
  },
);
