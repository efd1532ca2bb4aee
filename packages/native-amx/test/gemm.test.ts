import { type GemmOutput, MAX_GEMM_K, referenceKernels } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels, setIsa, setThreads, unpackWeights } from '../src/index.js';
import { int, paths, rng, sameBytes } from './helpers.js';

const js = referenceKernels;
const nat = nativeKernels;

interface Case {
  m: number;
  n: number;
  k: number;
  a: Uint8Array;
  w: Int8Array;
  za: number;
  zw: number | Int32Array;
  aScale: number;
  wScale: number | Float64Array;
  bias?: Int32Array;
  output: GemmOutput;
}

function makeCase(seed: number, m: number, n: number, k: number, extreme = false): Case {
  const r = rng(seed);
  const a = new Uint8Array(m * k);
  const w = new Int8Array(n * k);
  if (extreme) {
    // The worst case of every int16-pair scheme: 255 x -128 everywhere (or 255 x 127).
    a.fill(255);
    w.fill(r() < 0.5 ? -128 : 127);
    for (let i = 0; i < w.length; i += 7) w[i] = -128;
  } else {
    for (let i = 0; i < a.length; i++) a[i] = int(r, 0, 255);
    for (let i = 0; i < w.length; i++) w[i] = int(r, -128, 127);
  }
  const perChannel = r() < 0.5;
  const zw = perChannel ? Int32Array.from({ length: n }, () => int(r, -20, 20)) : int(r, -5, 5);
  const wScale = perChannel ? Float64Array.from({ length: n }, () => 0.001 + r() * 0.05) : 0.01 + r() * 0.02;
  const bias = r() < 0.6 ? Int32Array.from({ length: n }, () => int(r, -200_000, 200_000)) : undefined;
  const kind = int(r, 0, 3);
  const output: GemmOutput =
    kind === 0
      ? { kind: 'i32' }
      : kind === 1
        ? { kind: 'f32' }
        : { kind: 'u8', scale: 0.5 + r() * 40, zeroPoint: int(r, 0, 255), relu: kind === 3 };
  return {
    m,
    n,
    k,
    a,
    w,
    za: extreme ? 0 : int(r, 0, 255),
    zw,
    aScale: 0.01 + r() * 0.1,
    wScale,
    bias,
    output,
  };
}

function runBoth(c: Case, path: string): void {
  const pj = js.packWeights(c.w, c.n, c.k, c.zw);
  const pn = nat.packWeights(c.w, c.n, c.k, c.zw);
  expect([...pn.rowSums]).toEqual([...pj.rowSums]);
  expect([...pn.zeroPoint]).toEqual([...pj.zeroPoint]);
  const args = {
    a: c.a,
    m: c.m,
    aScale: c.aScale,
    aZeroPoint: c.za,
    wScale: c.wScale,
    bias: c.bias,
    output: c.output,
  };
  const want = js.qgemm({ ...args, w: pj });
  const got = nat.qgemm({ ...args, w: pn });
  sameBytes(got, want, `${path} ${c.output.kind} m=${c.m} n=${c.n} k=${c.k}`);
  pn.dispose?.();
}

// Per path: how many random shapes, and a cost budget of larger ones in multiply-adds (the JS
// oracle and the emulated tiles are slow).
const SMALL_SHAPES = 600;
const budget = (path: string) => (path === 'amx-emulated' || path === 'scalar' ? 8e6 : 16e6);

describe.skipIf(!nativeAvailable)('qgemm is bit-identical to the JS reference', () => {
  afterAll(() => {
    setIsa('best');
    setThreads(2);
  });

  for (const path of paths()) {
    test(`random shapes, all output kinds (${path})`, () => {
      setIsa(path as never);
      const r = rng(path.length * 7919 + 1);
      let macs = 0;
      let seed = 1;
      // The edges first: M = 1, N = 1, K = 1, K not a multiple of 4 / 64, N not of 16.
      const fixed: [number, number, number][] = [
        [1, 1, 1],
        [1, 1, 5],
        [1, 17, 3],
        [7, 1, 64],
        [33, 33, 65],
        [6, 64, 129],
        [13, 50, 255],
        [31, 47, 1023],
        // Several 64-channel panels, K cut into slices (partial sums between slices), a tail row block.
        [13, 130, 2500],
        [6, 64, 1025],
      ];
      for (const [m, n, k] of fixed) {
        runBoth(makeCase(seed++, m, n, k), path);
        macs += m * n * k;
      }
      for (let i = 0; i < SMALL_SHAPES; i++) {
        runBoth(makeCase(seed++, int(r, 1, 24), int(r, 1, 70), int(r, 1, 150)), path);
      }
      while (macs < budget(path)) {
        const m = int(r, 1, 40);
        const n = int(r, 1, 80);
        const k = int(r, 1, r() < 0.2 ? 4096 : 300);
        runBoth(makeCase(seed++, m, n, k), path);
        macs += m * n * k;
      }
    });

    test(`worst-case values 255 x -128 / 127 with K up to 4096 (${path})`, () => {
      setIsa(path as never);
      for (const [m, n, k] of [
        [3, 20, 4096],
        [8, 33, 4093],
        [1, 16, 2048],
      ] as [number, number, number][]) {
        for (let s = 0; s < 2; s++) runBoth(makeCase(100 + s, m, n, k, true), path);
      }
    });
  }

  test('K at the contract maximum (MAX_GEMM_K) with extreme values', () => {
    setIsa('best');
    runBoth(makeCase(7, 2, 3, MAX_GEMM_K, true), 'best');
  });

  test('results do not depend on the thread count', () => {
    setIsa('best');
    const c = makeCase(99, 97, 300, 515);
    c.output = { kind: 'u8', scale: 20, zeroPoint: 3 };
    const p = nat.packWeights(c.w, c.n, c.k, c.zw);
    const args = {
      a: c.a,
      m: c.m,
      aScale: c.aScale,
      aZeroPoint: c.za,
      wScale: c.wScale,
      bias: c.bias,
      output: c.output,
    };
    const outs = [1, 2, 3, 5].map((t) => {
      setThreads(t);
      return nat.qgemm({ ...args, w: p });
    });
    for (const o of outs) sameBytes(o, outs[0], 'threads');
    sameBytes(outs[0], js.qgemm({ ...args, w: js.packWeights(c.w, c.n, c.k, c.zw) }), 'vs js');
  });

  test('cached requantisation factors follow scales changed in place', () => {
    setIsa('best');
    const c = makeCase(21, 5, 40, 70);
    const wScale = Float64Array.from({ length: 40 }, (_, i) => 0.01 + i * 1e-4);
    const pn = nat.packWeights(c.w, c.n, c.k, c.zw);
    const pj = js.packWeights(c.w, c.n, c.k, c.zw);
    for (const output of [{ kind: 'u8', scale: 3, zeroPoint: 9 } as const, { kind: 'f32' } as const]) {
      for (let round = 0; round < 3; round++) {
        const args = { a: c.a, m: c.m, aScale: 0.05, aZeroPoint: c.za, wScale, output };
        sameBytes(
          nat.qgemm({ ...args, w: pn }),
          js.qgemm({ ...args, w: pj }),
          `${output.kind} round ${round}`,
        );
        wScale[round * 7] *= 1.5; // the same array, new values
      }
    }
  });

  test('packWeights round-trips through the packed layout', () => {
    const c = makeCase(5, 1, 37, 71);
    const p = nat.packWeights(c.w, c.n, c.k, c.zw);
    sameBytes(unpackWeights(p), c.w, 'unpack');
  });

  test('a large GEMM on every path through the thread pool', () => {
    const c = makeCase(11, 130, 200, 1000);
    c.output = { kind: 'i32' };
    const want = js.qgemm({ ...c, aZeroPoint: c.za, w: js.packWeights(c.w, c.n, c.k, c.zw) });
    const p = nat.packWeights(c.w, c.n, c.k, c.zw);
    setThreads(2);
    for (const path of paths()) {
      setIsa(path as never);
      sameBytes(nat.qgemm({ ...c, aZeroPoint: c.za, w: p }), want, path);
    }
  });
});
