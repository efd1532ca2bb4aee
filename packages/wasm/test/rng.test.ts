import { philoxFill, QNORMAL_THRESHOLDS, qnormalFill, qnormalFromWord } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { qnormalStreams, sameBytes, thresholdWords } from '../../core/test/kernel-cases.js';
import { wasmAvailable, wasmPhilox, wasmQnormalFromWords, wasmKernels as wk } from '../src/index.js';

describe.skipIf(!wasmAvailable())('Philox4x32-10 and the quantised normal', () => {
  test('Random123 known answers', () => {
    const o = wasmPhilox([0, 0], 0, new Uint32Array(4));
    expect([...o].map((x) => x.toString(16).padStart(8, '0'))).toEqual([
      '6627e8d5',
      'e169c58d',
      'bc57ac4c',
      '9b00dbd8',
    ]);
  });

  test('wasm Philox equals philoxFill, including counters past 2^32 and partial blocks', () => {
    for (const [k0, k1, pos, len] of [
      [1, 2, 0, 103],
      [0xdeadbeef, 0x12345678, 0xfffffff0, 333],
      [7, 9, 2 ** 40 + 3, 17],
      [0xffffffff, 0xffffffff, 2 ** 53 - 100, 64],
      [3, 4, 2 ** 53 - 3, 64], // the block counter passes 2^53 (past the largest exact double)
    ]) {
      const a = new Uint32Array(len);
      philoxFill(k0, k1, pos, a);
      expect(wasmPhilox([k0, k1], pos, new Uint32Array(len))).toEqual(a);
    }
  });

  test('word -> value mapping equals qnormalFromWord at every threshold boundary and at random words', () => {
    const w = thresholdWords();
    expect(w.length).toBeGreaterThan(255 * 5);
    sameBytes(
      wasmQnormalFromWords(w),
      Int8Array.from(w, (u) => qnormalFromWord(u)),
      'mapping',
    );
    // Each threshold is the first word of the next value.
    for (let j = 0; j < 255; j++) {
      const t = QNORMAL_THRESHOLDS[j];
      expect([...wasmQnormalFromWords(Uint32Array.of(t - 1, t))]).toEqual([j - 128, j - 127]);
    }
  });

  test('qnormal equals qnormalFill for many streams, offsets and lengths', () => {
    qnormalStreams(wk);
  });

  test('a fill longer than one step (2^20 words) and a long stream hit the reference histogram', () => {
    const n = 2 ** 21 + 4099;
    const a = wk.qnormal({ key: [42, 43], position: 2 ** 33, out: new Int8Array(n) });
    sameBytes(a, qnormalFill([42, 43], 2 ** 33, new Int8Array(n)), 'long stream');
    expect(new Set(a).size).toBeGreaterThan(200);
  });
});
