import {
  type GaussianSampleArgs,
  type KernelProvider,
  QbnnError,
  type QConv2dArgs,
  type QGemmArgs,
  referenceKernels,
} from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels } from '../src/index.js';

/** Code and message of the error a call throws; an integer range's upper bound reads `max`. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof QbnnError)
      return `${e.code}: ${e.message.replace(/ in \[(-?\d+), \d+\]/, ' in [$1, max]')}`;
    throw e;
  }
  return 'ok';
}

// Both providers validate with @qbnn/core's kernels/validate.ts: a bad call fails with the same
// code and message whichever provider runs it (only the bounds a provider tightens differ).
describe.skipIf(!nativeAvailable)('the same argument checks in both providers', () => {
  const providers: KernelProvider[] = [referenceKernels, nativeKernels];
  const each = (call: (p: KernelProvider) => unknown) => providers.map((p) => errorOf(() => call(p)));

  test('qgemm', () => {
    const gemm = (p: KernelProvider, over: Partial<QGemmArgs>) =>
      p.qgemm({
        a: new Uint8Array(12),
        m: 3,
        aScale: 0.1,
        aZeroPoint: 0,
        w: p.packWeights(new Int8Array(8), 2, 4, 0),
        wScale: 0.1,
        output: { kind: 'i32' },
        ...over,
      });
    expect(each((p) => gemm(p, {}))).toEqual(['ok', 'ok']);
    const bad: Partial<QGemmArgs>[] = [
      { a: new Uint8Array(11) },
      { m: 1.5 },
      { aScale: Number.NaN },
      { aZeroPoint: 256 },
      { wScale: [1, 2, 3] },
      { wScale: [Number.NaN] },
      { bias: new Int32Array(3) },
      { out: new Float32Array(6) },
      { out: new Int32Array(5) },
      { output: { kind: 'u8', scale: 1, zeroPoint: 256 } },
      { output: { kind: 'f16' } as never },
    ];
    for (const over of bad) {
      const [js, nat] = each((p) => gemm(p, over));
      expect(nat, JSON.stringify(over)).toBe(js);
      expect(nat).not.toBe('ok');
    }
    expect(each((p) => gemm(p, { wScale: [1, 0] }))).toEqual([
      'ERR_ARG: wScale[1] must be a finite number > 0, got 0',
      'ERR_ARG: wScale[1] must be a finite number > 0, got 0',
    ]);
  });

  test('qconv2d', () => {
    const conv = (p: KernelProvider, over: Partial<QConv2dArgs>) =>
      p.qconv2d({
        x: new Uint8Array(4 * 25),
        xShape: [1, 4, 5, 5],
        xScale: 1,
        xZeroPoint: 0,
        w: p.packWeights(new Int8Array(2 * 36), 2, 36, 0),
        wShape: [2, 4, 3, 3],
        wScale: 1,
        output: { kind: 'i32' },
        ...over,
      });
    expect(each((p) => conv(p, {}))).toEqual(['ok', 'ok']);
    const bad: Partial<QConv2dArgs>[] = [
      { x: new Uint8Array(99) },
      { wShape: [2, 3, 3, 3] },
      { groups: 3 },
      { groups: 2, wShape: [2, 2, 3, 3] },
      { stride: [0, 1] },
      { padding: [-1, 0] },
      { dilation: [3, 3] },
      { xZeroPoint: 300 },
      { bias: new Int32Array(3) },
      { xShape: [1, 4, 5] as never },
      { out: new Uint8Array(18) },
    ];
    for (const over of bad) {
      const [js, nat] = each((p) => conv(p, over));
      expect(nat, JSON.stringify(over)).toBe(js);
      expect(nat).not.toBe('ok');
    }
  });

  test('qnormal, packWeights and the Gaussian sampler', () => {
    expect(new Set(each((p) => p.qnormal({ key: [1, 2], position: -1, out: new Int8Array(3) }))).size).toBe(
      1,
    );
    expect(each((p) => p.qnormal({ key: [1, 2], position: 0, out: new Uint8Array(3) as never }))).toEqual([
      'ERR_ARG: qnormal: out must be an Int8Array',
      'ERR_ARG: qnormal: out must be an Int8Array',
    ]);
    expect(new Set(each((p) => p.packWeights(new Int8Array(5), 2, 3, 0))).size).toBe(1);
    expect(new Set(each((p) => p.packWeights(new Int8Array(6), 2, 3, [0, 0, 0]))).size).toBe(1);
    const args: GaussianSampleArgs = {
      mu: new Int8Array(6),
      muZeroPoint: new Int32Array(2),
      sigma: new Uint8Array(6),
      sigmaZeroPoint: new Int32Array(2),
      noiseZeroPoint: new Int32Array(2),
      weightZeroPoint: new Int32Array(2),
      m1: Float64Array.of(1, 1),
      m2: Float64Array.of(1, 1),
      m3: Float64Array.of(1, 1),
      n: 2,
      k: 3,
      bits: 8,
      key: [1, 2],
      position: 0,
    };
    const bad: Partial<GaussianSampleArgs>[] = [
      { mu: new Int8Array(5) },
      { weightZeroPoint: Int32Array.of(0, 128) },
      { noiseZeroPoint: Int32Array.of(0) },
      { m1: Float64Array.of(1, Number.NaN) },
      { bits: 9 },
      { key: [1, -1] },
    ];
    for (const over of bad) {
      const [js, nat] = each((p) => p.sampleGaussianPacked({ ...args, ...over }));
      expect(nat, JSON.stringify(over)).toBe(js);
      expect(nat).not.toBe('ok');
    }
  });
});
