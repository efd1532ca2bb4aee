import { readFileSync } from 'node:fs';
import {
  getKernelProvider,
  listKernelProviders,
  philoxFill,
  QNORMAL_THRESHOLDS,
  qnormalFill,
  qnormalFromWord,
} from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { qnormalStreams, sameBytes, thresholdWords } from '../../core/test/kernel-cases.js';
import {
  isa,
  loadError,
  nativeAvailable,
  nativeInfo,
  nativeKernels,
  nativePhilox,
  nativeQnormalFromWords,
  setIsa,
} from '../src/index.js';

// On x86-64 and aarch64 Linux with a C++ compiler the addon must build; set
// QBNN_NATIVE_OPTIONAL=1 to allow a machine without one (the tests below then skip).
const optional = process.env.QBNN_NATIVE_OPTIONAL === '1';

describe('loading', () => {
  test('the addon loads (or says why)', () => {
    if (!optional) expect(loadError).toBeUndefined();
    expect(nativeAvailable).toBe(loadError === undefined);
  });

  test.skipIf(process.env.QBNN_EXPECT_SANITIZED !== '1')('the sanitized build is the one under test', () => {
    expect(nativeInfo()?.sanitized).toBe(true);
  });

  test.skipIf(process.env.QBNN_EXPECT_PORTABLE !== '1')('the portable build is the one under test', () => {
    expect(nativeInfo()?.arch).toBe('other');
    expect(nativeInfo()?.available).toEqual(['scalar', 'amx-emulated']);
  });

  test.skipIf(!nativeAvailable)('registers the native provider above the JS reference', () => {
    const p = getKernelProvider();
    expect(p.name).toBe('native');
    expect(p).toBe(nativeKernels);
    const list = listKernelProviders();
    expect(list[0].name).toBe('native');
    expect(list.find((x) => x.name === 'js')?.priority).toBe(0);
  });

  test.skipIf(!nativeAvailable)('reports and forces ISA paths', () => {
    const info = nativeInfo()!;
    expect(info.available).toContain('scalar');
    expect(info.available).toContain('amx-emulated');
    expect(isa()).toBe(info.best);
    for (const p of info.available) expect(setIsa(p)).toBe(p);
    setIsa('best');
    expect(isa()).toBe(info.best);
    if (!info.available.includes('amx')) expect(() => setIsa('amx')).toThrow(/not available/);
    expect(() => setIsa('sse9' as never)).toThrow(/unknown isa/);
    if (info.arch === 'x64' && /avx512_vnni/.test(cpuFlags())) expect(info.available).toContain('avx512vnni');
  });
});

function cpuFlags(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

describe.skipIf(!nativeAvailable)('Philox4x32-10 and the quantised normal', () => {
  test('Random123 known answers through the native Philox', () => {
    const o = new Uint32Array(4);
    nativePhilox([0, 0], 0, o);
    expect([...o].map((x) => x.toString(16).padStart(8, '0'))).toEqual([
      '6627e8d5',
      'e169c58d',
      'bc57ac4c',
      '9b00dbd8',
    ]);
  });

  test('native Philox equals philoxFill, including counters past 2^32 and past 2^53 (issue 17 D9)', () => {
    for (const [k0, k1, pos] of [
      [1, 2, 0],
      [0xdeadbeef, 0x12345678, 0xfffffff0],
      [7, 9, 2 ** 40 + 3],
      [7, 9, 2 ** 53 - 3],
      [7, 9, Number.MAX_SAFE_INTEGER],
    ]) {
      const a = new Uint32Array(103);
      const b = new Uint32Array(103);
      philoxFill(k0, k1, pos, a);
      nativePhilox([k0, k1], pos, b);
      expect(b).toEqual(a);
    }
  });

  test('native word -> value mapping equals qnormalFromWord at every threshold and at random words', () => {
    const w = thresholdWords();
    const want = Int8Array.from(w, (u) => qnormalFromWord(u));
    sameBytes(nativeQnormalFromWords(w, 'lookup'), want, 'lookup');
    sameBytes(nativeQnormalFromWords(w, 'binary'), want, 'binary search');
    if (nativeInfo()!.available.includes('avx512vnni')) {
      sameBytes(nativeQnormalFromWords(w, 'vector'), want, 'AVX-512 guided');
      sameBytes(nativeQnormalFromWords(w, 'search'), want, 'AVX-512 search');
    }
    if (nativeInfo()!.vbmi) sameBytes(nativeQnormalFromWords(w, 'bytes'), want, 'AVX-512 VBMI byte lanes');
  });

  test.skipIf(!nativeInfo()?.vbmi)(
    'the byte-lane mapping equals qnormalFromWord at every bucket edge of both halves',
    () => {
      // Its buckets: 2^24-word ones by the top byte, and in the tails (v < 18 * 2^24) octaves
      // 2^e (e = 22..28) cut in 32; words of the upper half are folded (v = ~u). Every bucket's
      // first and last word, on both sides, with their neighbours, and every threshold's mirror.
      const edges: number[] = [];
      const add = (v: number) => {
        for (const d of [-1, 0, 1]) {
          const x = v + d;
          if (x >= 0 && x < 2 ** 31) edges.push(x, 0xffffffff - x);
        }
      };
      for (let h = 0; h < 128; h++) add(h * 2 ** 24);
      for (let e = 20; e <= 29; e++) for (let m = 0; m < 32; m++) add(2 ** e + m * 2 ** (e - 5));
      for (const t of QNORMAL_THRESHOLDS) add(t < 2 ** 31 ? t : 0xffffffff - t);
      const w = Uint32Array.from(edges);
      const want = Int8Array.from(w, (u) => qnormalFromWord(u));
      sameBytes(nativeQnormalFromWords(w, 'bytes'), want, 'byte lanes at bucket edges');
    },
  );

  for (const path of ['scalar', 'best']) {
    test(`qnormal equals qnormalFill for many streams, offsets and lengths (${path})`, () => {
      setIsa(path as 'scalar' | 'best');
      try {
        qnormalStreams(nativeKernels);
        // A big fill exercises the pool's chunking (2^16-word chunks).
        const big = 300_000;
        sameBytes(
          nativeKernels.qnormal({ key: [5, 6], position: 2 ** 33, out: new Int8Array(big) }),
          qnormalFill([5, 6], 2 ** 33, new Int8Array(big)),
          'big fill',
        );
        // the block counter's low word carries inside the fill, inside a vector of blocks
        for (const [position, len] of [
          [2 ** 32 - 3, 100],
          [2 ** 32 - 37, 1000],
          [2 ** 33 - 1000, 20_000],
        ])
          sameBytes(
            nativeKernels.qnormal({ key: [7, 8], position, out: new Int8Array(len) }),
            qnormalFill([7, 8], position, new Int8Array(len)),
            `carry at position ${position}`,
          );
      } finally {
        setIsa('best');
      }
    });
  }

  test('qnormal hits every value -128..127 with the reference histogram on a long stream', () => {
    const n = 1 << 21;
    const a = nativeKernels.qnormal({ key: [42, 43], position: 0, out: new Int8Array(n) });
    const b = qnormalFill([42, 43], 0, new Int8Array(n));
    sameBytes(a, b, 'long stream');
    const seen = new Set(a);
    expect(seen.size).toBeGreaterThan(200);
  });
});
