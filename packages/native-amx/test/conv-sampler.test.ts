import {
  type GemmOutput,
  gaussianSampleMultipliers,
  type PackedWeights,
  referenceKernels,
  sampleGaussianWeights,
} from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels, setIsa, setThreads, unpackWeights } from '../src/index.js';
import { int, paths, rng, sameBytes } from './helpers.js';

const js = referenceKernels;
const nat = nativeKernels;

/**
 * A random convolution. `wide`: the channel counts, kernels and batches of real layers (up to 40
 * input and 60 output channels, kernels up to 5x5, batches that span several batch tiles of the
 * direct kernel), half of them with symmetric (zero) weight zero points.
 */
function convCase(seed: number, wide = false) {
  const r = rng(seed);
  const groups = r() < (wide ? 0.15 : 0.3) ? int(r, 2, 3) : 1;
  const cg = wide ? int(r, 1, 40) : int(r, 1, 4);
  const og = wide ? int(r, 1, 60) : int(r, 1, 9);
  const c = cg * groups;
  const o = og * groups;
  const kh = int(r, 1, wide ? 5 : 3);
  const kw = int(r, 1, wide ? 5 : 3);
  const dil: [number, number] = [int(r, 1, 2), int(r, 1, 2)];
  const pad: [number, number] = [int(r, 0, 2), int(r, 0, 2)];
  const stride: [number, number] = [int(r, 1, 2), int(r, 1, 3)];
  const h = int(r, dil[0] * (kh - 1) + 1, wide ? 20 : 12);
  const wd = int(r, dil[1] * (kw - 1) + 1, wide ? 20 : 12);
  const batch = int(r, 1, wide ? 7 : 2);
  const x = Uint8Array.from({ length: batch * c * h * wd }, () => int(r, 0, 255));
  const kg = cg * kh * kw;
  const w = Int8Array.from({ length: o * kg }, () => int(r, -128, 127));
  const symmetric = wide && r() < 0.5;
  const zw = Int32Array.from({ length: o }, () => (symmetric ? 0 : int(r, -10, 10)));
  const wScale = Float64Array.from({ length: o }, () => 0.001 + r() * 0.03);
  const bias = r() < 0.5 ? Int32Array.from({ length: o }, () => int(r, -50_000, 50_000)) : undefined;
  const kind = int(r, 0, 3);
  const output: GemmOutput =
    kind === 0
      ? { kind: 'i32' }
      : kind === 1
        ? { kind: 'f32' }
        : { kind: 'u8', scale: 0.5 + r() * 20, zeroPoint: int(r, 0, 255), relu: kind === 3 };
  const onePack = groups > 1 && r() < 0.5; // a single pack of all O rows instead of one per group
  return {
    x,
    xShape: [batch, c, h, wd] as [number, number, number, number],
    xScale: 0.02,
    xZeroPoint: int(r, 0, 255),
    wShape: [o, cg, kh, kw] as [number, number, number, number],
    w,
    zw,
    og,
    kg,
    groups,
    onePack,
    wScale,
    bias,
    stride,
    padding: pad,
    dilation: dil,
    output,
  };
}

function packs(p: typeof nat, cs: ReturnType<typeof convCase>): PackedWeights | PackedWeights[] {
  if (cs.groups === 1 || cs.onePack) return p.packWeights(cs.w, cs.wShape[0], cs.kg, cs.zw);
  const list: PackedWeights[] = [];
  for (let g = 0; g < cs.groups; g++) {
    list.push(
      p.packWeights(
        cs.w.subarray(g * cs.og * cs.kg, (g + 1) * cs.og * cs.kg),
        cs.og,
        cs.kg,
        cs.zw.subarray(g * cs.og, (g + 1) * cs.og),
      ),
    );
  }
  return list;
}

describe.skipIf(!nativeAvailable)('qconv2d is bit-identical to the JS reference', () => {
  afterAll(() => setIsa('best'));
  for (const path of paths()) {
    test(`random geometries: groups, stride, padding, dilation (${path})`, () => {
      setIsa(path as never);
      for (let s = 1; s <= 120; s++) {
        const cs = convCase(s * 31 + path.length);
        const want = js.qconv2d({ ...cs, w: packs(js, cs) });
        const got = nat.qconv2d({ ...cs, w: packs(nat, cs) });
        sameBytes(got, want, `${path} case ${s} ${JSON.stringify(cs.wShape)} groups ${cs.groups}`);
      }
    });
    test(`random layers of real width: up to 40 -> 60 channels, 5x5, batch 7 (${path})`, () => {
      setIsa(path as never);
      for (let s = 1; s <= 40; s++) {
        const cs = convCase(s * 977 + path.length, true);
        const want = js.qconv2d({ ...cs, w: packs(js, cs) });
        const got = nat.qconv2d({ ...cs, w: packs(nat, cs) });
        sameBytes(
          got,
          want,
          `${path} wide case ${s} ${JSON.stringify(cs.xShape)} ${JSON.stringify(cs.wShape)}`,
        );
      }
    });
    test(`the zoo's layers: LeNet-5 conv1/conv2, ResNet-18 3x3, strided, 1x1 shortcut, RGB stem (${path})`, () => {
      setIsa(path as never);
      // [name, C, O, H, k, stride, pad, batch]
      const layers: [string, number, number, number, number, number, number, number][] = [
        ['lenet5.conv1', 1, 20, 28, 5, 1, 2, 2],
        ['lenet5.conv2', 20, 50, 14, 5, 1, 2, 6],
        ['resnet.3x3.w24', 24, 24, 16, 3, 1, 1, 2],
        ['resnet.3x3.w96', 96, 96, 8, 3, 1, 1, 3],
        ['resnet.3x3.w192', 192, 192, 4, 3, 1, 1, 5],
        ['resnet.3x3s2', 24, 48, 16, 3, 2, 1, 2],
        ['resnet.1x1s2', 48, 96, 8, 1, 2, 0, 3],
        ['resnet.stem', 3, 24, 16, 3, 1, 1, 2],
      ];
      const r = rng(99 + path.length);
      for (const [name, c, o, h, k, st, pd, batch] of layers) {
        const kg = c * k * k;
        for (const zeroW of [false, true]) {
          const w = Int8Array.from({ length: o * kg }, () => int(r, -128, 127));
          const zw = Int32Array.from({ length: o }, () => (zeroW ? 0 : int(r, -5, 5)));
          const args = {
            x: Uint8Array.from({ length: batch * c * h * h }, () => int(r, 0, 255)),
            xShape: [batch, c, h, h] as [number, number, number, number],
            xScale: 0.02,
            xZeroPoint: int(r, 0, 255),
            wShape: [o, c, k, k] as [number, number, number, number],
            wScale: Float64Array.from({ length: o }, () => 0.001 + r() * 0.01),
            bias: Int32Array.from({ length: o }, () => int(r, -20_000, 20_000)),
            stride: [st, st] as [number, number],
            padding: [pd, pd] as [number, number],
            output: { kind: 'u8', scale: 20 + r() * 200, zeroPoint: int(r, 0, 40), relu: true } as GemmOutput,
          };
          const want = js.qconv2d({ ...args, w: js.packWeights(w, o, kg, zw) });
          const got = nat.qconv2d({ ...args, w: nat.packWeights(w, o, kg, zw) });
          sameBytes(got, want, `${path} ${name} zeroW ${zeroW}`);
        }
      }
    });
  }
  test('results do not depend on the thread count', () => {
    setIsa('best');
    for (let s = 1; s <= 6; s++) {
      const cs = convCase(s * 4049, true);
      const outs = [1, 2, 3].map((t) => {
        setThreads(t);
        return nat.qconv2d({ ...cs, w: packs(nat, cs) });
      });
      setThreads(2);
      for (const o of outs) sameBytes(o, outs[0], `threads, case ${s}`);
    }
  });
});

function sampleCase(seed: number, n: number, k: number, bits: number) {
  const r = rng(seed);
  const qmax = 2 ** (bits - 1) - 1;
  const qmin = -(2 ** (bits - 1));
  const mu = Int8Array.from({ length: n * k }, () => int(r, qmin, qmax));
  const sigma = Uint8Array.from({ length: n * k }, () => int(r, 0, 255));
  const perChannel = r() < 0.5;
  const ch = (f: () => number) => (perChannel ? Float64Array.from({ length: n }, f) : f());
  const { m1, m2, m3 } = gaussianSampleMultipliers({
    n,
    muScale: ch(() => 0.001 + r() * 0.01),
    sigmaScale: ch(() => 0.0001 + r() * 0.001),
    noiseScale: ch(() => 0.0005 + r() * 0.01),
    weightScale: ch(() => 0.001 + r() * 0.02),
  });
  const zp = (lo: number, hi: number) => Int32Array.from({ length: n }, () => int(r, lo, hi));
  return {
    mu,
    muZeroPoint: zp(-3, 3),
    sigma,
    sigmaZeroPoint: zp(0, 20),
    noiseZeroPoint: zp(Math.max(qmin, -4), Math.min(qmax, 4)),
    weightZeroPoint: zp(Math.max(qmin, -4), Math.min(qmax, 4)),
    m1,
    m2,
    m3,
    n,
    k,
    bits,
    key: [int(r, 0, 2 ** 32 - 1), int(r, 0, 2 ** 32 - 1)] as [number, number],
    position: int(r, 0, 2 ** 40),
  };
}

describe.skipIf(!nativeAvailable)('fused Gaussian sampler', () => {
  afterAll(() => {
    setIsa('best');
    setThreads(2);
  });
  for (const path of ['scalar', 'best']) {
    test(`samples the reference's bytes straight into the packed layout (${path} rng path)`, () => {
      setIsa(path as never);
      let s = 1;
      for (const [n, k] of [
        [1, 1],
        [1, 7],
        [3, 5],
        [16, 64],
        [17, 33],
        [40, 129],
        [70, 301],
        [5, 4096],
      ] as [number, number][]) {
        for (const bits of [8, 4, 2]) {
          const a = sampleCase(s++, n, k, bits);
          const want = sampleGaussianWeights(a);
          const p = nat.sampleGaussianPacked(a);
          sameBytes(unpackWeights(p), want, `n=${n} k=${k} bits=${bits}`);
          const pj = js.sampleGaussianPacked(a);
          expect([...p.rowSums]).toEqual([...pj.rowSums]);
          expect([...p.zeroPoint]).toEqual([...pj.zeroPoint]);
        }
      }
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
