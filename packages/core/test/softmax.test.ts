// The engine-independent exponential and MC mean softmax (kernels/softmax.ts) against float64
// Math.exp (an independent reference): within 2 ulp over the whole range it is used on,
// including the range-reduction boundaries, the 2^k scale split and the subnormal tail.
import { describe, expect, it } from 'vitest';
import { expNonPositive, meanSoftmax } from '../src/index.js';

/** One float64 unit in the last place at |x|. */
function ulp64(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -1022) return 2 ** -1074;
  return 2 ** (Math.floor(Math.log2(a)) - 52);
}

function ulp32(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

describe('expNonPositive', () => {
  it('is within 2 ulp of Math.exp on [-746, 0], at every boundary and in the subnormal tail', () => {
    const xs: number[] = [
      0, -0, -1e-300, -5e-324, -1e-17, -0.5, -1, -10, -100, -700, -708.39, -708.4, -745.13, -745.2,
    ];
    for (let k = -1077; k <= 0; k++) {
      const c = k * Math.LN2;
      xs.push(c, c + 0.5 * Math.LN2, c - 0.5 * Math.LN2, c + 1e-9, c - 1e-9);
    }
    let seed = 12345;
    for (let i = 0; i < 200_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      xs.push(-(seed / 2 ** 32) * (i % 2 ? 746 : 40));
    }
    let worst = 0;
    for (const x of xs) {
      if (x < -746 || x > 0) continue;
      const want = Math.exp(x);
      const got = expNonPositive(x);
      const err = Math.abs(got - want) / ulp64(want);
      worst = Math.max(worst, err);
      if (err > 2) expect.fail(`exp(${x}): ${got} vs Math.exp ${want} (${err} ulp)`);
    }
    expect(worst).toBeLessThanOrEqual(2);
    expect(expNonPositive(-746.5)).toBe(0);
    expect(expNonPositive(-1e308)).toBe(0);
    expect(expNonPositive(0)).toBe(1);
  });
});

describe('meanSoftmax', () => {
  it('equals the float64 mean of softmax with Math.exp within one float32 rounding', () => {
    const L = 7;
    const B = 5;
    const C = 10;
    let seed = 99;
    const logits = Float32Array.from({ length: L * B * C }, (_, i) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      // ordinary logits, one row with a huge spread (exp underflows), one of equal values
      if (i < C) return i === 3 ? 900 : -900;
      if (i < 2 * C) return 2.5;
      return (seed / 2 ** 32) * 40 - 20;
    });
    const got = meanSoftmax(logits, L, B, C);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        let want = 0;
        for (let l = 0; l < L; l++) {
          const row = Array.from(logits.subarray((l * B + b) * C, (l * B + b + 1) * C));
          const m = Math.max(...row);
          const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
          want += Math.exp(row[c] - m) / s / L;
        }
        const g = got[b * C + c];
        if (Math.abs(g - want) > ulp32(want)) expect.fail(`p[${b}, ${c}] = ${g}, float64 reference ${want}`);
      }
    }
    for (let b = 0; b < B; b++) {
      const sum = got.subarray(b * C, (b + 1) * C).reduce((a, v) => a + v, 0);
      expect(sum).toBeCloseTo(1, 6);
    }
  });
});
