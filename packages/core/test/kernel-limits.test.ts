import { describe, expect, it } from 'vitest';
import { referenceKernels as js, MAX_KERNEL_ELEMENTS } from '../src/index.js';
import { detachedInt8, errorOf } from './kernel-cases.js';

// Issue 17, D4 (kernel part): calls whose size could not be allocated failed with an untyped
// "Invalid typed array length"; a detached destination was silently skipped. Every provider
// validates through kernels/validate.ts, so the native and wasm providers fail the same way
// (the shared rejection suite, kernel-cases.ts, holds these calls too).
describe('kernel size limits and detached buffers', () => {
  it('a GEMM output of m * n = 2^33 values is an ERR_ARG before anything is allocated', () => {
    const w = js.packWeights(new Int8Array(8), 8, 1, 0);
    const a = new Uint8Array(16);
    expect(
      errorOf(() =>
        js.qgemm({ a, m: 2 ** 30, aScale: 1, aZeroPoint: 0, w, wScale: 1, output: { kind: 'f32' } }),
      ),
    ).toBe(
      `ERR_ARG: qgemm: an output of m * n = ${2 ** 30} * 8 = ${2 ** 33} values exceeds MAX_KERNEL_ELEMENTS = ${MAX_KERNEL_ELEMENTS}; split the call`,
    );
  });

  it('conv padding 2^20 is an ERR_ARG naming the output size, not a RangeError', () => {
    const w = js.packWeights(new Int8Array(1), 1, 1, 0);
    const conv = (padding: [number, number], kw = 1) =>
      js.qconv2d({
        x: new Uint8Array(1),
        xShape: [1, 1, 1, 1],
        xScale: 1,
        xZeroPoint: 0,
        w,
        wShape: [1, 1, 1, kw],
        wScale: 1,
        padding,
        output: { kind: 'u8', scale: 1, zeroPoint: 0 },
      });
    const side = 2 ** 21 + 1;
    expect(errorOf(() => conv([2 ** 20, 2 ** 20]))).toBe(
      `ERR_ARG: qconv2d: an output of batch * o * ho * wo = 1 * 1 * ${side} * ${side} = ${side * side} values exceeds MAX_KERNEL_ELEMENTS = ${MAX_KERNEL_ELEMENTS}; split the call`,
    );
    // a large but allowed padding still computes: every output is the padded zero point's 0
    const y = conv([2 ** 12, 0]) as Uint8Array;
    expect(y.length).toBe(2 ** 13 + 1);
    expect(y.every((v) => v === 0)).toBe(true);
  });

  it('a detached qnormal destination is an ERR_ARG, not silently skipped', () => {
    expect(errorOf(() => js.qnormal({ key: [1, 2], position: 0, out: detachedInt8(16) }))).toBe(
      'ERR_ARG: qnormal: out is detached (its ArrayBuffer was transferred)',
    );
    // an empty (attached) destination is fine
    expect(js.qnormal({ key: [1, 2], position: 0, out: new Int8Array(0) }).length).toBe(0);
    const w = js.packWeights(new Int8Array(2), 2, 1, 0);
    const out = new Int32Array(0);
    structuredClone(out.buffer, { transfer: [out.buffer] });
    expect(
      errorOf(() =>
        js.qgemm({
          a: new Uint8Array(0),
          m: 0,
          aScale: 1,
          aZeroPoint: 0,
          w,
          wScale: 1,
          output: { kind: 'i32' },
          out,
        }),
      ),
    ).toBe('ERR_ARG: out is detached (its ArrayBuffer was transferred)');
  });
});
