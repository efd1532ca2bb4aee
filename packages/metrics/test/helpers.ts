import { expect } from 'vitest';
import { MetricsError } from '../src/index.js';

/** A tiny seeded generator for test data (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random per-sample softmax probabilities [L, N, C] and labels. */
export function randomClassification(seed: number, L: number, N: number, C: number, sharp = 3) {
  const r = rng(seed);
  const probs = new Float64Array(L * N * C);
  const base = Array.from({ length: N * C }, () => sharp * (r() - 0.5) * 2);
  for (let l = 0; l < L; l++) {
    for (let i = 0; i < N; i++) {
      let s = 0;
      const row = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        row[c] = Math.exp(base[i * C + c] + (r() - 0.5));
        s += row[c];
      }
      for (let c = 0; c < C; c++) probs[(l * N + i) * C + c] = row[c] / s;
    }
  }
  const labels = Int32Array.from({ length: N }, () => Math.floor(r() * C));
  return { probs, labels };
}

/** Slice examples [a, b) of an [L, N, C] array into a batch [L, b - a, C]. */
export function sliceExamples(
  probs: ArrayLike<number>,
  L: number,
  N: number,
  C: number,
  a: number,
  b: number,
) {
  const out = new Float64Array(L * (b - a) * C);
  for (let l = 0; l < L; l++) {
    for (let i = a; i < b; i++) {
      for (let c = 0; c < C; c++) out[(l * (b - a) + (i - a)) * C + c] = probs[(l * N + i) * C + c];
    }
  }
  return out;
}

/** Random cut points splitting [0, n) into batches (some possibly empty). */
export function randomCuts(seed: number, n: number, parts: number): number[] {
  const r = rng(seed);
  const cuts = Array.from({ length: parts - 1 }, () => Math.floor(r() * (n + 1))).sort((x, y) => x - y);
  return [0, ...cuts, n];
}

/** Expect fn to throw a MetricsError with the given code and a message matching re. */
export function expectError(fn: () => unknown, code: string, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MetricsError);
  expect((err as MetricsError).code).toBe(code);
  expect((err as MetricsError).message).toMatch(re);
}
