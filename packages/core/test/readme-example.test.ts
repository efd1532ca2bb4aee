import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { computeQuantParams, dequantize, getKernelProvider, quantize, Rng } from '../src/index.js';

// Keeps the numbers quoted in README.md honest.
describe('README example', () => {
  test('quantise, GEMM through the registry, qnormal give the documented values', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const wParams = computeQuantParams({ min: -1, max: 1, bits: 8, symmetric: true });
    const wQ = quantize([0.5, -0.25, 1.0, -1.0, 0.75, 0.1], wParams);
    expect([...wQ]).toEqual([64, -32, 127, -127, 95, 13]);
    expect(readme).toContain('Int8Array [64, -32, 127, -127, 95, 13]');
    const xParams = computeQuantParams({ min: 0, max: 1, bits: 8 });
    const xQ = quantize([0.2, 0.9, 0.4], xParams);
    // 0.9 / (1/255) is 229.5 in float64 (230 by ties to even) but 229.49998 in float32: ONNX's 229
    expect([...xQ]).toEqual([51, 229, 102]);
    expect(readme).toContain('Uint8Array [51, 229, 102]');
    const kernels = getKernelProvider();
    const packed = kernels.packWeights(wQ as Int8Array, 2, 3, wParams.zeroPoint);
    const args = {
      a: xQ as Uint8Array,
      m: 1,
      aScale: xParams.scale,
      aZeroPoint: 0,
      w: packed,
      wScale: wParams.scale,
    };
    const y = kernels.qgemm({ ...args, output: { kind: 'f32' } });
    expect(y[0]).toBeCloseTo(0.2745, 4);
    expect(y[1]).toBeCloseTo(0.5127, 4);
    expect(readme).toContain('~ [0.2745, 0.5127] = x . w^T');
    const oParams = computeQuantParams({ min: 0, max: 1, bits: 8 });
    const yQ = kernels.qgemm({
      ...args,
      output: { kind: 'u8', scale: oParams.scale, zeroPoint: 0, relu: true },
    });
    const yd = dequantize(yQ, oParams);
    expect(yd[0]).toBeCloseTo(0.2745, 4);
    expect(yd[1]).toBeCloseTo(0.5137, 4);
    const eps = new Rng(42).qnormal(8);
    expect([...eps]).toEqual([12, -3, -61, -17, 95, -19, 1, -5]);
    expect(readme).toContain('Int8Array [12, -3, -61, -17, 95, -19, 1, -5]');
  });
});
