// The engine-independent Box-Muller of Rng.normal against float64 Math.log / Math.cos /
// Math.sin (an independent reference): within one float32 rounding everywhere, including the
// words at the ends of the ranges and every quarter turn.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  initBackend,
  normalFill,
  normalsFromWords,
  normalTensor,
  philoxFill,
  Rng,
  setNormalFill,
} from '../src/index.js';

function reference(w0: number, w1: number): [number, number] {
  const u1 = ((w0 >>> 8) + 1) / 16777216;
  const u2 = (w1 >>> 8) / 16777216;
  const r = Math.sqrt(-2 * Math.log(u1));
  return [r * Math.cos(2 * Math.PI * u2), r * Math.sin(2 * Math.PI * u2)];
}

/** One float32 unit in the last place at |x| (the spacing of float32 there). */
function ulp32(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

function expectClose(words: Uint32Array): void {
  const out = new Float32Array(words.length);
  normalsFromWords(words, out);
  // the worst element, as a multiple of its allowance: one float32 rounding of a value whose
  // float64 error is below 1e-15 r (one expect per element would be slow)
  let worst = 0;
  let at = -1;
  for (let i = 0; i < words.length; i += 2) {
    const [c, s] = reference(words[i], words[i + 1]);
    const r = Math.sqrt(-2 * Math.log(((words[i] >>> 8) + 1) / 16777216));
    for (const [got, want] of [
      [out[i], c],
      [out[i + 1], s],
    ]) {
      const e = Math.abs(got - want) / (ulp32(want) * 0.5000001 + 1e-15 * r);
      if (e > worst) [worst, at] = [e, i];
    }
  }
  expect(worst, `word pair ${at}`).toBeLessThanOrEqual(1);
}

describe('Rng.normal: Box-Muller with fixed polynomials', () => {
  it('equals float64 Box-Muller within a float32 rounding on random words', () => {
    const w = new Uint32Array(200_000);
    philoxFill(3, 4, 0, w);
    expectClose(w);
  });

  it('holds at the ends of u1 and on every quarter-turn boundary of u2', () => {
    const top = [0, 1, 2, 3, 255, 256, 0x3fffff, 0x400000, 0x7fffff, 0x800000, 0xb504f3, 0xffffff];
    const angles = [0, 1, 0x3fffff, 0x400000, 0x400001, 0x7fffff, 0x800000, 0xbfffff, 0xc00000, 0xffffff];
    const w: number[] = [];
    for (const a of top) for (const b of angles) w.push((a << 8) >>> 0, (b << 8) >>> 0);
    expectClose(Uint32Array.from(w));
    // u1 = 1 exactly: radius 0
    const out = new Float32Array(2);
    normalsFromWords(Uint32Array.from([0xffffff00, 0x12345600]), out);
    expect(Math.abs(out[0])).toBe(0);
  });

  it('uses ceil(n / 2) word pairs of the stream, odd n too, and the JS path without a fill', () => {
    const prev = normalFill();
    setNormalFill(null);
    try {
      const a = new Rng(7).normal(5);
      const b = new Rng(7).normal(6);
      expect(Array.from(a)).toEqual(Array.from(b.subarray(0, 5)));
      const r = new Rng(7);
      r.normal(5);
      expect(r.position).toBe(2);
      const big = new Rng(9).normal(4096);
      const w = new Uint32Array(4096);
      philoxFill(new Rng(9).key[0], new Rng(9).key[1], 0, w);
      const ref = new Float32Array(4096);
      normalsFromWords(w, ref);
      expect(big).toEqual(ref);
    } finally {
      setNormalFill(prev);
    }
  });

  it('hands large draws to a registered fill with the stream position', () => {
    const prev = normalFill();
    const calls: [number, number, number, number][] = [];
    setNormalFill((k0, k1, first, out) => {
      calls.push([k0, k1, first, out.length]);
      out.fill(1);
    });
    try {
      const r = Rng.fromKey(5, 6, 10);
      expect(r.normal(8)[0]).not.toBe(1); // small: JS
      expect(r.normal(1001)[0]).toBe(1);
      expect(calls).toEqual([[5, 6, 12, 1001]]);
      expect(r.position).toBe(12 + 251);
    } finally {
      setNormalFill(prev);
    }
  });
});

describe('normalTensor', () => {
  for (const backend of ['wasm', 'cpu'] as const)
    it(`holds rng.normal's values and advances the stream alike on ${backend}`, async () => {
      await initBackend({ backend });
      try {
        for (const shape of [[3], [50, 30], [2, 3, 17, 11]]) {
          const n = shape.reduce((a, b) => a * b, 1);
          const a = new Rng(11);
          const before = tf.memory().numTensors;
          const t = tf.tidy(() => normalTensor(a, shape));
          expect(t.shape).toEqual(shape);
          expect(t.dtype).toBe('float32');
          const b = new Rng(11);
          expect(t.dataSync()).toEqual(b.normal(n));
          expect(a.position).toBe(b.position);
          t.dispose();
          expect(tf.memory().numTensors).toBe(before);
        }
      } finally {
        await initBackend({ backend: 'wasm' });
      }
    });
});
