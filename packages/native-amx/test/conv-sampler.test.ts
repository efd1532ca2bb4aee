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

function convCase(seed: number) {
  const r = rng(seed);
  const groups = r() < 0.3 ? int(r, 2, 3) : 1;
  const cg = int(r, 1, 4);
  const og = int(r, 1, 9);
  const c = cg * groups;
  const o = og * groups;
  const kh = int(r, 1, 3);
  const kw = int(r, 1, 3);
  const dil: [number, number] = [int(r, 1, 2), int(r, 1, 2)];
  const pad: [number, number] = [int(r, 0, 2), int(r, 0, 2)];
  const stride: [number, number] = [int(r, 1, 2), int(r, 1, 3)];
  const h = int(r, dil[0] * (kh - 1) + 1, 12);
  const wd = int(r, dil[1] * (kw - 1) + 1, 12);
  const batch = int(r, 1, 2);
  const x = Uint8Array.from({ length: batch * c * h * wd }, () => int(r, 0, 255));
  const kg = cg * kh * kw;
  const w = Int8Array.from({ length: o * kg }, () => int(r, -128, 127));
  const zw = Int32Array.from({ length: o }, () => int(r, -10, 10));
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
  }
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
