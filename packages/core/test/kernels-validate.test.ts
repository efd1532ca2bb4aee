import { describe, expect, test } from 'vitest';
import { QbnnError } from '../src/errors.js';
import {
  checkChannelScales,
  checkGaussianSampleArgs,
  checkGemmOutput,
  checkQConv2dArgs,
  checkQGemmArgs,
  convOutSize,
  type KernelLimits,
  packWeights,
  REFERENCE_KERNEL_LIMITS,
} from '../src/index.js';
import type { PackedWeights, QConv2dArgs } from '../src/kernels/types.js';

/** The error a call throws: code and message. */
function errorOf(fn: () => unknown): { code: string; message: string } | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof QbnnError) return { code: e.code, message: e.message };
    throw e;
  }
  return undefined;
}

// A provider that accepts any pack and records which ones it was asked about.
function recorder() {
  const seen: string[] = [];
  const resolve = (w: PackedWeights, name: string) => {
    seen.push(name);
    return w.n;
  };
  return { seen, resolve };
}

describe('kernel argument validation for providers', () => {
  const conv: QConv2dArgs = {
    x: new Uint8Array(2 * 4 * 7 * 6),
    xShape: [2, 4, 7, 6],
    xScale: 0.5,
    xZeroPoint: 3,
    w: packWeights(new Int8Array(6 * 2 * 3 * 2), 6, 12, 0),
    wShape: [6, 2, 3, 2],
    wScale: 0.1,
    groups: 2,
    padding: [1, 0],
    dilation: [2, 1],
    output: { kind: 'u8', scale: 1, zeroPoint: 9, relu: true },
  };

  test('checkQConv2dArgs normalises the geometry (defaults, convOutSize, groups) and allocates out', () => {
    const { seen, resolve } = recorder();
    const g = checkQConv2dArgs(conv, resolve);
    expect(g).toMatchObject({ batch: 2, c: 4, h: 7, w: 6, o: 6, cg: 2, kh: 3, kw: 2, groups: 2, og: 3 });
    expect(g).toMatchObject({ kg: 12, strideH: 1, strideW: 1, padH: 1, padW: 0, dilationH: 2, dilationW: 1 });
    expect(g.ho).toBe(convOutSize(7, 3, 1, 1, 2));
    expect(g.wo).toBe(convOutSize(6, 2, 1, 0, 1));
    expect(g.xZeroPoint).toBe(3);
    // One pack of all rows: resolved once, kept as `whole`.
    expect(seen).toEqual(['qconv2d: w']);
    expect(g.packs).toEqual([6]);
    expect(g.whole).toBe(conv.w);
    expect(g.output).toEqual({ kind: 'u8', zeroPoint: 9, lo: 9, relu: true });
    expect(g.out).toBeInstanceOf(Uint8Array);
    expect(g.out.length).toBe(2 * 6 * g.ho * g.wo);
  });

  test('per-group packs are resolved in order, each with its own name', () => {
    const { seen, resolve } = recorder();
    const half = packWeights(new Int8Array(3 * 12), 3, 12, 0);
    const g = checkQConv2dArgs({ ...conv, w: [half, half] }, resolve);
    expect(seen).toEqual(['qconv2d: w[0]', 'qconv2d: w[1]']);
    expect(g.whole).toBeUndefined();
    expect(g.packs).toEqual([3, 3]);
  });

  test('a provider may tighten the limits; the message names the argument and the bound', () => {
    const tight: KernelLimits = { ...REFERENCE_KERNEL_LIMITS, maxConvPair: 4, maxM: 2 };
    const { resolve } = recorder();
    expect(errorOf(() => checkQConv2dArgs({ ...conv, stride: [5, 1] }, resolve, tight))).toEqual({
      code: 'ERR_ARG',
      message: 'qconv2d: stride[0] must be an integer in [1, 4], got 5',
    });
    expect(errorOf(() => checkQConv2dArgs({ ...conv, stride: [5, 1] }, resolve))).toBeUndefined();
    const w = packWeights(new Int8Array(2 * 3), 2, 3, 0);
    const gemm = { a: new Uint8Array(9), m: 3, aScale: 1, aZeroPoint: 0, w, wScale: 1 } as const;
    expect(errorOf(() => checkQGemmArgs({ ...gemm, output: { kind: 'i32' } }, resolve, tight))).toEqual({
      code: 'ERR_ARG',
      message: 'qgemm: m must be an integer in [0, 2], got 3',
    });
  });

  test('checked output stages are shared, so repeated calls allocate nothing', () => {
    const a = checkGemmOutput({ kind: 'u8', scale: 0.2, zeroPoint: 7 }, [0.1, 0.2], 2);
    expect(checkGemmOutput({ kind: 'u8', scale: 0.9, zeroPoint: 7, relu: false }, 0.3, 5)).toBe(a);
    expect(checkGemmOutput({ kind: 'u8', scale: 0.9, zeroPoint: 7, relu: true }, 0.3, 5)).not.toBe(a);
    expect(checkGemmOutput({ kind: 'f32' }, 1, 1)).toBe(checkGemmOutput({ kind: 'f32' }, 2, 3));
    // Weight scales are checked whatever the kind.
    expect(errorOf(() => checkGemmOutput({ kind: 'i32' }, [1, 0], 2))).toEqual({
      code: 'ERR_ARG',
      message: 'wScale[1] must be a finite number > 0, got 0',
    });
  });
});

describe('per-element checks name the failing element (the name is built only when one fails)', () => {
  const n = 4;
  const k = 3;
  const args = () => ({
    mu: new Int8Array(n * k),
    muZeroPoint: new Int32Array(n),
    sigma: new Uint8Array(n * k),
    sigmaZeroPoint: new Int32Array(n),
    noiseZeroPoint: new Int32Array(n),
    weightZeroPoint: new Int32Array(n),
    m1: new Float64Array(n).fill(0.5),
    m2: new Float64Array(n).fill(0.5),
    m3: new Float64Array(n).fill(0.5),
    n,
    k,
    bits: 4,
    key: [1, 2] as [number, number],
    position: 0,
  });

  test('sampler zero points: the first one out of range, its bound and value', () => {
    const a = args();
    a.weightZeroPoint[2] = 8; // 4-bit signed range [-8, 7]
    a.weightZeroPoint[3] = 9;
    expect(errorOf(() => checkGaussianSampleArgs(a))).toEqual({
      code: 'ERR_ARG',
      message: 'sampleGaussian: weightZeroPoint[2] must be an integer in [-8, 7], got 8',
    });
    const b = args();
    b.sigmaZeroPoint[3] = -1;
    expect(errorOf(() => checkGaussianSampleArgs(b))).toEqual({
      code: 'ERR_ARG',
      message: 'sampleGaussian: sigmaZeroPoint[3] must be an integer in [0, 255], got -1',
    });
    expect(errorOf(() => checkGaussianSampleArgs(args()))).toBeUndefined();
  });

  test('per-channel scales: NaN, zero, negative and infinite elements', () => {
    for (const [bad, code, message] of [
      [Number.NaN, 'ERR_NAN', 'wScale[1] must be a number, got NaN'],
      [0, 'ERR_ARG', 'wScale[1] must be a finite number > 0, got 0'],
      [-2, 'ERR_ARG', 'wScale[1] must be a finite number > 0, got -2'],
      [Number.POSITIVE_INFINITY, 'ERR_ARG', 'wScale[1] must be a finite number > 0, got Infinity'],
    ] as const)
      expect(errorOf(() => checkChannelScales('wScale', [1, bad, 3], 3))).toEqual({ code, message });
    expect(errorOf(() => checkChannelScales('wScale', new Float64Array([1, 2e-300, 3]), 3))).toBeUndefined();
  });
});
