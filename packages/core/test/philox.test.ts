import { describe, expect, test } from 'vitest';
import { bernoulliFill } from '../src/rng/bernoulli.js';
import { Rng } from '../src/rng/index.js';
import { philox4x32, philoxFill } from '../src/rng/philox.js';
import { qnormalFill, qnormalFromWord } from '../src/rng/qnormal.js';

const hex = (a: Uint32Array) => [...a].map((x) => x.toString(16).padStart(8, '0'));

describe('philox4x32-10', () => {
  // Known-answer vectors published with Random123 (kat_vectors, philox4x32 10 rounds).
  test('matches the Random123 known answers', () => {
    const o = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, o);
    expect(hex(o)).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const f = 0xffffffff;
    philox4x32(f, f, f, f, f, f, o);
    expect(hex(o)).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    philox4x32(0xa4093822, 0x299f31d0, 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, o);
    expect(hex(o)).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });

  test('a fill is the concatenation of its blocks, whatever the split', () => {
    const whole = new Uint32Array(37);
    philoxFill(7, 9, 100, whole);
    const a = new Uint32Array(16);
    const b = new Uint32Array(21);
    philoxFill(7, 9, 100, a);
    philoxFill(7, 9, 104, b);
    expect([...a, ...b]).toEqual([...whole]);
  });
});

describe('positions near 2^53 (issue 17 D9)', () => {
  /** Block b's words by counters formed in BigInt (the native kernels' uint64 arithmetic). */
  function blocksByBigInt(k0: number, k1: number, first: bigint, blocks: number): number[] {
    const out: number[] = [];
    const o = new Uint32Array(4);
    for (let i = 0n; i < BigInt(blocks); i++) {
      const b = (first + i) & 0xffffffffffffffffn;
      philox4x32(k0, k1, Number(b & 0xffffffffn), Number(b >> 32n), 0, 0, o);
      out.push(...o);
    }
    return out;
  }

  test('a fill across 2^53 gives the 64-bit counters exactly: no block repeats', () => {
    const start = 2 ** 53 - 3;
    const w = new Uint32Array(40);
    philoxFill(11, 22, start, w);
    expect([...w]).toEqual(blocksByBigInt(11, 22, BigInt(start), 10));
    const blocks = Array.from({ length: 10 }, (_, i) => hex(w.subarray(4 * i, 4 * i + 4)).join(''));
    expect(new Set(blocks).size).toBe(10);
    // An offset added beyond 2^53 is carried in 32-bit words, as a chunked fill does.
    const v = new Uint32Array(8);
    philoxFill(11, 22, Number.MAX_SAFE_INTEGER, v, 2 ** 40 + 5);
    expect([...v]).toEqual(blocksByBigInt(11, 22, BigInt(Number.MAX_SAFE_INTEGER) + 2n ** 40n + 5n, 2));
    // Across the 2^32 boundary of the low word too.
    const u = new Uint32Array(12);
    philoxFill(1, 2, 2 ** 32 - 1, u);
    expect([...u]).toEqual(blocksByBigInt(1, 2, 2n ** 32n - 1n, 3));
  });

  test('qnormal and bernoulli fills chunk past 2^53 on the 64-bit counters', () => {
    const key: [number, number] = [5, 6];
    const start = Number.MAX_SAFE_INTEGER - 2;
    // Chunks of 16384 words: the second chunk starts 4096 blocks later, beyond 2^53.
    const q = qnormalFill(key, start, new Int8Array(16384 + 64));
    const words = blocksByBigInt(5, 6, BigInt(start) + 4096n, 16);
    expect([...q.subarray(16384)]).toEqual(words.map(qnormalFromWord));
    const m = bernoulliFill(key, start, 0.5, new Uint8Array(16384 + 64));
    expect([...m.subarray(16384)]).toEqual(words.map((u) => (u >= 2 ** 31 ? 1 : 0)));
  });

  test('the Rng refuses to pass 2^53 - 1 blocks and invalid positions', () => {
    const r = Rng.fromKey(1, 2, Number.MAX_SAFE_INTEGER - 1);
    r.uint32(4);
    expect(r.position).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => r.uint32(4)).toThrow(
      expect.objectContaining({ code: 'ERR_ARG', message: expect.stringMatching(/stream is exhausted/) }),
    );
    expect(r.position).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => Rng.fromKey(1, 2, 2 ** 53)).toThrow(/fromKey: position must be a non-negative safe integer/);
    expect(() => Rng.fromKey(1, 2, -1)).toThrow(/fromKey: position/);
    expect(() => new Rng(1).skip(2 ** 53)).toThrow(/skip: blocks/);
    expect(() => philoxFill(1, 2, 2 ** 53, new Uint32Array(4))).toThrow(/philoxFill: firstBlock/);
    expect(() => philoxFill(1, 2, 0, new Uint32Array(4), 0.5)).toThrow(/philoxFill: blockOffset/);
  });
});
