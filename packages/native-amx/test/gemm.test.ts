import { referenceKernels } from '@qbnn/core';
import { afterAll, describe, test } from 'vitest';
import { extremeGemms, gemmArgs, gemmCase, randomGemms, sameBytes } from '../../core/test/kernel-cases.js';
import { nativeAvailable, nativeKernels, setIsa, setThreads, unpackWeights } from '../src/index.js';
import { paths } from './helpers.js';

const js = referenceKernels;
const nat = nativeKernels;

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
      randomGemms(nat, js, path, SMALL_SHAPES, budget(path));
    });

    test(`worst-case values 255 x -128 / 127 with K up to MAX_GEMM_K (${path})`, () => {
      setIsa(path as never);
      extremeGemms(nat, js, path);
    });
  }

  test('results do not depend on the thread count', () => {
    setIsa('best');
    const c = gemmCase(99, 97, 300, 515);
    c.output = { kind: 'u8', scale: 20, zeroPoint: 3 };
    const p = nat.packWeights(c.w, c.n, c.k, c.zw);
    const args = gemmArgs(c);
    const outs = [1, 2, 3, 5].map((t) => {
      setThreads(t);
      return nat.qgemm({ ...args, w: p });
    });
    for (const o of outs) sameBytes(o, outs[0], 'threads');
    sameBytes(outs[0], js.qgemm({ ...args, w: js.packWeights(c.w, c.n, c.k, c.zw) }), 'vs js');
  });

  test('cached requantisation factors follow scales changed in place', () => {
    setIsa('best');
    const c = gemmCase(21, 5, 40, 70);
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
    const c = gemmCase(5, 1, 37, 71);
    const p = nat.packWeights(c.w, c.n, c.k, c.zw);
    sameBytes(unpackWeights(p), c.w, 'unpack');
  });

  test('a large GEMM on every path through the thread pool', () => {
    const c = gemmCase(11, 130, 200, 1000);
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
