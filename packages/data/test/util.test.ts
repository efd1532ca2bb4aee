import { Rng } from '@qbnn/core';
import { describe, expect, it } from 'vitest';
import { permutation } from '../src/index.js';

describe('permutation', () => {
  it('is a permutation, deterministic by stream', () => {
    const p = permutation(1000, new Rng(1));
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(permutation(1000, new Rng(1)))).toEqual(Array.from(p));
    expect(Array.from(permutation(0, new Rng(1)))).toEqual([]);
    expect(Array.from(permutation(1, new Rng(1)))).toEqual([0]);
  });

  it('draws the 6 orders of 3 items equally often (chi-square)', () => {
    const rng = new Rng(9);
    const counts = new Map<string, number>();
    const trials = 30000;
    for (let t = 0; t < trials; t++) {
      const k = permutation(3, rng).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - trials / 6) ** 2 / (trials / 6);
    expect(chi2).toBeLessThan(20.5); // p = 0.001 at 5 degrees of freedom
  });
});
