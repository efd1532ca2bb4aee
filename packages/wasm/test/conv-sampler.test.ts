import { referenceKernels as js, sampleGaussianWeights } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import {
  int,
  nearHalfSampleCases,
  packedInputPacks,
  randomConvs,
  rng,
  sameBytes,
  sampleCase,
  sampledPacks,
  zooConvs,
} from '../../core/test/kernel-cases.js';
import { unpackWeights, wasmAvailable, wasmKernels as wk } from '../src/index.js';
import { onVariant, variants } from './helpers.js';

describe.skipIf(!wasmAvailable())('qconv2d is bit-identical to the JS reference', () => {
  for (const v of variants()) {
    test(`random geometries: groups, stride, padding, dilation (${v})`, () =>
      onVariant(v, () => randomConvs(wk, js, v, 150)));
    test(`random layers of real width: up to 40 -> 60 channels, 5x5, batch 7 (${v})`, () =>
      onVariant(v, () => randomConvs(wk, js, v, 40, true)));
    test(`the zoo's layers: LeNet-5, ResNet-18 3x3, strided, 1x1 shortcut, RGB stem (${v})`, () =>
      onVariant(v, () => zooConvs(wk, js, v)));
  }

  test('a batch larger than one copy step is processed in batch chunks', () => {
    // 17 images of 1 x 1024 x 1024: more than the 16 MiB moved into wasm memory a step.
    const x = new Uint8Array(17 * 1024 * 1024);
    for (let i = 0; i < x.length; i++) x[i] = Math.imul(i, 2654435761) >>> 24;
    const args = {
      x,
      xShape: [17, 1, 1024, 1024] as [number, number, number, number],
      xScale: 0.05,
      xZeroPoint: 17,
      wShape: [2, 1, 1, 1] as [number, number, number, number],
      wScale: [0.01, 0.02],
      stride: [8, 8] as [number, number],
      padding: [1, 0] as [number, number],
      output: { kind: 'u8', scale: 0.01, zeroPoint: 128 } as const,
    };
    const w = Int8Array.of(-77, 101);
    sameBytes(
      wk.qconv2d({ ...args, w: wk.packWeights(w, 2, 1, [3, -2]) }),
      js.qconv2d({ ...args, w: js.packWeights(w, 2, 1, [3, -2]) }),
      'batch chunks',
    );
  });
});

describe.skipIf(!wasmAvailable())('fused Gaussian sampler', () => {
  for (const v of variants()) {
    test(`samples the reference's bytes straight into the packed layout (${v})`, () =>
      onVariant(v, () => sampledPacks(wk, js, unpackWeights)));
    test(`reads packed 2..8-bit mu, sigma and weights (${v})`, () =>
      onVariant(v, () => packedInputPacks(wk, unpackWeights)));
    test(`step-2 values within float32 error of a half-integer (${v})`, () =>
      onVariant(v, () => {
        for (const [i, a] of nearHalfSampleCases().entries())
          sameBytes(unpackWeights(wk.sampleGaussianPacked(a)), sampleGaussianWeights(a), `case ${i}`);
      }));
  }

  test('absurd multipliers (infinite products, inf - inf = NaN) store what the reference stores', () => {
    // The wasm clamp uses f64x2.pmin/pmax, not min/max: this pins that a NaN or an infinity
    // in either stage ends where the reference's Math.min/max and Int8Array store put it.
    for (const [m1, m2, m3] of [
      [1e308, 1e308, 1e308],
      [1e-308, 1e308, 1e308],
      [1e308, 1, 1e308],
      [Number.MAX_VALUE, Number.MAX_VALUE, 1e-300],
    ]) {
      for (const bits of [8, 4]) {
        const a = sampleCase(41, 9, 37, bits);
        a.m1.fill(m1);
        a.m2.fill(m2);
        a.m3.fill(m3);
        const want = sampleGaussianWeights(a);
        sameBytes(unpackWeights(wk.sampleGaussianPacked(a)), want, `m = ${m1}, ${m2}, ${m3}, ${bits} bits`);
        sameBytes(wk.sampleGaussianPacked(a).rowSums, js.sampleGaussianPacked(a).rowSums, 'rowSums');
      }
    }
  });

  test('a sampled pack feeds qgemm like the reference', () => {
    const a = sampleCase(77, 300, 500, 8);
    const r = rng(3);
    const x = Uint8Array.from({ length: 9 * 500 }, () => int(r, 0, 255));
    const args = { a: x, m: 9, aScale: 0.1, aZeroPoint: 7, wScale: 0.01, output: { kind: 'i32' } as const };
    sameBytes(
      wk.qgemm({ ...args, w: wk.sampleGaussianPacked(a) }),
      js.qgemm({ ...args, w: js.sampleGaussianPacked(a) }),
      'gemm on sample',
    );
  });

  test('a sampled pack stays valid across later calls, evictions and variants; disposed packs are refused', () => {
    const r = rng(8);
    const x = Uint8Array.from({ length: 5 * 300 }, () => int(r, 0, 255));
    const args = { a: x, m: 5, aScale: 0.1, aZeroPoint: 7, wScale: 0.01, output: { kind: 'i32' } as const };
    const cases = [sampleCase(1, 40, 300, 8), sampleCase(2, 33, 300, 4), sampleCase(3, 8, 300, 8)];
    const want = cases.map((c) => js.qgemm({ ...args, w: js.sampleGaussianPacked(c) }));
    // A is resident until B is sampled (then copied out); other calls in between lay out after it.
    const a = wk.sampleGaussianPacked(cases[0]);
    wk.qnormal({ key: [1, 1], position: 0, out: new Int8Array(100_000) });
    const other = wk.packWeights(cases[2].mu, 8, 300, 0);
    wk.qgemm({ ...args, w: other });
    sameBytes(wk.qgemm({ ...args, w: a }), want[0], 'resident pack after other calls');
    const b = wk.sampleGaussianPacked(cases[1]);
    sameBytes(wk.qgemm({ ...args, w: a }), want[0], 'evicted pack');
    sameBytes(wk.qgemm({ ...args, w: b }), want[1], 'resident pack');
    for (const v of variants())
      onVariant(v, () => sameBytes(wk.qgemm({ ...args, w: b }), want[1], `under ${v}`));
    b.dispose?.();
    expect(() => wk.qgemm({ ...args, w: b })).toThrow(/qgemm: w was disposed/);
    const c = wk.sampleGaussianPacked(cases[2]);
    sameBytes(wk.qgemm({ ...args, w: c }), want[2], 'after a disposed resident pack');
    sameBytes(unpackWeights(a), sampleGaussianWeights(cases[0]), 'unpack of an evicted pack');
    sameBytes(unpackWeights(c), sampleGaussianWeights(cases[2]), 'unpack of a resident pack');
  });

  test('a destination pack is checked like the reference, and the result is a new pack', () => {
    const a = sampleCase(4, 6, 10, 8);
    const into = wk.packWeights(new Int8Array(60), 6, 10, 0);
    const p = wk.sampleGaussianPacked({ ...a, out: into });
    sameBytes(unpackWeights(p), sampleGaussianWeights(a), 'sample with out');
    expect(() => wk.sampleGaussianPacked({ ...a, out: wk.packWeights(new Int8Array(50), 5, 10, 0) })).toThrow(
      /sampleGaussian: out is packed \[5, 10\], expected \[6, 10\]/,
    );
    expect(() => wk.sampleGaussianPacked({ ...a, out: js.packWeights(new Int8Array(60), 6, 10, 0) })).toThrow(
      /sampleGaussian: out was packed by provider 'js'/,
    );
  });
});
