// core's quantize against ONNX Runtime's own QuantizeLinear (the peer the contract names), on
// inputs built to sit on exact .5 ties of the float32 quotient.
import { quantize, Rng } from '@qbnn/core';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { quantizeLinearModel } from '../src/peers/onnx-model.js';

describe('quantize equals ONNX Runtime QuantizeLinear', () => {
  for (const [scale, zero, signed] of [
    [0.1, 0, true],
    [1 / 255, 0, false],
    [3 / 127, 0, true],
    [0.05, 128, false],
    [1 / 3, 10, false],
  ] as const) {
    it(`scale ${scale}, zero point ${zero}, ${signed ? 's8' : 'u8'}: element for element, ties included`, async () => {
      const u = new Rng(7).uniform(2000);
      const s32 = Math.fround(scale);
      // half the inputs on ties (k + 1/2) s, half anywhere, some beyond the range
      const x = Float32Array.from(u, (v, i) =>
        i % 2 === 0 ? (Math.floor(v * 600) - 300 + 0.5) * s32 : (v - 0.5) * 300 * s32,
      );
      const session = await ort.InferenceSession.create(quantizeLinearModel(x.length, scale, zero, signed));
      const y = (await session.run({ x: new ort.Tensor('float32', x, [x.length]) })).y.data as Int8Array;
      const ours = quantize(x, { scale, zeroPoint: zero, bits: 8, signed });
      expect(Array.from(ours)).toEqual(Array.from(y));
    });
  }
});
