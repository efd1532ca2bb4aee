import { type GemmOutput, referenceKernels, sampleGaussianWeights } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import {
  adversarialSampleCases,
  convCase,
  convPacks,
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
import {
  nativeAvailable,
  nativeInfo,
  nativeKernels,
  setIsa,
  setThreads,
  unpackWeights,
} from '../src/index.js';
import { prepareQConv2d } from '../src/provider.js';
import { paths } from './helpers.js';

const js = referenceKernels;
const nat = nativeKernels;

describe.skipIf(!nativeAvailable)('qconv2d is bit-identical to the JS reference', () => {
  afterAll(() => setIsa('best'));
  for (const path of paths()) {
    test(`random geometries: groups, stride, padding, dilation (${path})`, () => {
      setIsa(path as never);
      randomConvs(nat, js, path, 120);
    });
    test(`random layers of real width: up to 40 -> 60 channels, 5x5, batch 7 (${path})`, () => {
      setIsa(path as never);
      randomConvs(nat, js, path, 40, true);
    });
    test(`the zoo's layers: LeNet-5 conv1/conv2, ResNet-18 3x3, strided, 1x1 shortcut, RGB stem (${path})`, () => {
      setIsa(path as never);
      zooConvs(nat, js, path);
    });
  }
  test('requantisation saturates exactly when acc x multiplier is far outside the int32 range', () => {
    const r = rng(5);
    for (const path of paths()) {
      setIsa(path as never);
      for (const scale of [1e-9, 1e-4, 3e8]) {
        const w = Int8Array.from({ length: 16 * 72 }, () => int(r, -128, 127));
        const args = {
          x: Uint8Array.from({ length: 2 * 8 * 36 }, () => int(r, 0, 255)),
          xShape: [2, 8, 6, 6] as [number, number, number, number],
          xScale: 0.5,
          xZeroPoint: 100,
          wShape: [16, 8, 3, 3] as [number, number, number, number],
          wScale: 0.5,
          padding: [1, 1] as [number, number],
          output: { kind: 'u8', scale, zeroPoint: 7, relu: scale > 1 } as GemmOutput,
        };
        const want = js.qconv2d({ ...args, w: js.packWeights(w, 16, 72, 0) });
        const got = nat.qconv2d({ ...args, w: nat.packWeights(w, 16, 72, 0) });
        sameBytes(got, want, `${path} scale ${scale}`);
      }
    }
    setIsa('best');
  });

  test('a prepared convolution (weights reordered once) equals the reference on every input it runs', () => {
    setIsa('best');
    let ran = 0;
    for (let s = 1; s <= 40; s++) {
      const cs = convCase(s * 7919, s % 2 === 0);
      const prepared = prepareQConv2d({ ...cs, w: convPacks(nat, cs) });
      if (prepared === undefined) continue; // no AVX-512 VNNI here
      ran++;
      for (let input = 0; input < 2; input++) {
        const r = rng(s * 31 + input);
        const x = Uint8Array.from(cs.x, () => int(r, 0, 255));
        const want = js.qconv2d({ ...cs, x, w: convPacks(js, cs) });
        sameBytes(prepared.run(x), want, `prepared case ${s} input ${input}`);
      }
      // bad input is the typed argument error, never a native read past the array
      const bad = (f: () => unknown, name: RegExp) => {
        const err = (() => {
          try {
            f();
          } catch (e) {
            return e as { code?: string; message: string };
          }
        })();
        expect(err?.code, `case ${s}`).toBe('ERR_ARG');
        expect(err?.message).toMatch(name);
      };
      bad(() => prepared.run(cs.x.subarray(1)), /x must be a Uint8Array of/);
      bad(() => prepared.run(Int8Array.from(cs.x) as unknown as Uint8Array), /x must be a Uint8Array of/);
      const out = prepared.run(cs.x);
      const Same = out.constructor as new (n: number) => typeof out;
      const Other = out instanceof Float32Array ? Int32Array : Float32Array;
      const outError = new RegExp(`out must be a ${Same.name} of ${out.length} values`);
      bad(() => prepared.run(cs.x, new Same(out.length + 1)), outError);
      bad(() => prepared.run(cs.x, new Other(out.length) as unknown as typeof out), outError);
      prepared.dispose();
      bad(() => prepared.run(cs.x), /disposed/);
      prepared.dispose(); // a second dispose is a no-op
    }
    if (nativeInfo()?.available.includes('avx512vnni')) expect(ran).toBe(40);
  });

  test('results do not depend on the thread count', () => {
    setIsa('best');
    for (let s = 1; s <= 6; s++) {
      const cs = convCase(s * 4049, true);
      const outs = [1, 2, 3].map((t) => {
        setThreads(t);
        return nat.qconv2d({ ...cs, w: convPacks(nat, cs) });
      });
      setThreads(2);
      for (const o of outs) sameBytes(o, outs[0], `threads, case ${s}`);
    }
  });
});

describe.skipIf(!nativeAvailable)('fused Gaussian sampler', () => {
  afterAll(() => {
    setIsa('best');
    setThreads(2);
  });
  for (const path of ['scalar', 'best']) {
    test(`samples the reference's bytes straight into the packed layout (${path} rng path)`, () => {
      setIsa(path as never);
      sampledPacks(nat, js, unpackWeights);
    });
  }

  for (const path of ['scalar', 'best']) {
    test(`reads packed 2..8-bit mu, sigma and weights directly (${path} path)`, () => {
      setIsa(path as never);
      packedInputPacks(nat, unpackWeights);
    });
    test(`multipliers at and near float64 ties, huge, tiny: the reference's bytes (${path} path)`, () => {
      setIsa(path as never);
      for (const [i, a] of adversarialSampleCases().entries())
        sameBytes(unpackWeights(nat.sampleGaussianPacked(a)), sampleGaussianWeights(a), `case ${i}`);
    });
    test(`rows whose sigma zero point is 0 beside rows where it is not, sigma 0 and 255: the reference's bytes (${path} path)`, () => {
      // (the AVX-512 sampler forms eps sigma another way when the row's Zsig is 0, as PTQ makes
      // every row of the zoo models)
      setIsa(path as never);
      for (const [n, k, bits] of [
        [24, 200, 8],
        [17, 75, 8],
        [9, 130, 4],
      ] as const) {
        const a = sampleCase(1500 + n, n, k, bits);
        const r = rng(n);
        const sigma = Uint8Array.from(a.sigma as Uint8Array, (v, i) =>
          i % 5 === 0 ? 255 : i % 7 === 0 ? 0 : v,
        );
        for (const allZero of [true, false]) {
          const sigmaZeroPoint = Int32Array.from({ length: n }, (_, row) =>
            allZero || row % 2 === 0 ? 0 : int(r, 1, 40),
          );
          // large m1 on some rows: eps sigma m1 clamps to the noise range there
          const m1 = Float64Array.from(a.m1, (m, row) => (row % 3 === 0 ? m * 50 : m));
          const b = { ...a, sigma, sigmaZeroPoint, m1 };
          sameBytes(
            unpackWeights(nat.sampleGaussianPacked(b)),
            sampleGaussianWeights(b),
            `n=${n} k=${k} all ${allZero}`,
          );
          sameBytes(nat.sampleGaussianPacked(b).rowSums, js.sampleGaussianPacked(b).rowSums, 'rowSums');
        }
      }
    });
    test(`step-2 values within float32 error of a half-integer: the reference's bytes (${path} path)`, () => {
      setIsa(path as never);
      for (const [i, a] of nearHalfSampleCases().entries())
        sameBytes(unpackWeights(nat.sampleGaussianPacked(a)), sampleGaussianWeights(a), `case ${i}`);
    });
  }

  test('a sampled pack feeds qgemm like the reference (large, threaded)', () => {
    setIsa('best');
    const a = sampleCase(77, 300, 500, 8);
    const pn = nat.sampleGaussianPacked(a);
    const pj = js.sampleGaussianPacked(a);
    const r = rng(3);
    const x = Uint8Array.from({ length: 9 * 500 }, () => int(r, 0, 255));
    const args = { a: x, m: 9, aScale: 0.1, aZeroPoint: 7, wScale: 0.01, output: { kind: 'i32' } as const };
    sameBytes(nat.qgemm({ ...args, w: pn }), js.qgemm({ ...args, w: pj }), 'gemm on sample');
    // Same bytes whatever the thread count.
    const outs = [1, 2, 3].map((t) => {
      setThreads(t);
      return unpackWeights(nat.sampleGaussianPacked(a));
    });
    for (const o of outs) sameBytes(o, outs[0], 'threads');
  });
});
