import { describe, expect, it } from 'vitest';
import {
  BOSTON_FEATURES,
  kFold,
  standardizeSplit,
  synthHeteroscedastic,
  synthLinear,
  unstandardizeTarget,
} from '../src/index.js';
import { bostonFolds, loadBoston } from '../src/node.js';

function meanStd(a: ArrayLike<number>): [number, number] {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i];
  m /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - m) ** 2;
  return [m, Math.sqrt(v / a.length)];
}

function column(x: Float32Array, d: number, j: number): Float32Array {
  const out = new Float32Array(x.length / d);
  for (let i = 0; i < out.length; i++) out[i] = x[i * d + j];
  return out;
}

describe('loadBoston', () => {
  const b = loadBoston();

  it('has the 506 tracts, 13 features and MEDV of the UCI housing set', () => {
    expect(b.n).toBe(506);
    expect(b.nFeatures).toBe(13);
    expect(b.x.length).toBe(506 * 13);
    expect(b.y.length).toBe(506);
    expect(b.featureNames).toEqual(BOSTON_FEATURES);
    // first row of housing.data: 0.00632 18.00 2.310 0 0.5380 6.5750 65.20 4.0900 1 296.0 15.30 396.90 4.98 24.00
    expect(Array.from(b.x.subarray(0, 13))).toEqual(
      Array.from(
        Float32Array.from([0.00632, 18, 2.31, 0, 0.538, 6.575, 65.2, 4.09, 1, 296, 15.3, 396.9, 4.98]),
      ),
    );
    expect(b.y[0]).toBe(24);
    expect(b.y[505]).toBeCloseTo(11.9, 5);
    // well-known facts: MEDV mean 22.5328, sample std 9.1971, censored at 50 (16 tracts), 35 tracts on the river
    const [m, s] = meanStd(b.y);
    expect(m).toBeCloseTo(22.5328, 3);
    expect(s * Math.sqrt(506 / 505)).toBeCloseTo(9.1971, 3);
    expect(Math.min(...b.y)).toBe(5);
    expect(b.y.filter((v) => v === 50).length).toBe(16);
    expect(column(b.x, 13, 3).filter((v) => v === 1).length).toBe(35);
  });
});

describe('kFold', () => {
  it('cuts 506 rows into 10 folds of 51 x 6 and 50 x 4 that partition the rows', () => {
    const folds = kFold(506, { k: 10, seed: 5 });
    expect(folds.map((f) => f.test.length)).toEqual([51, 51, 51, 51, 51, 51, 50, 50, 50, 50]);
    const inTest = new Uint8Array(506);
    for (const f of folds) {
      expect(f.train.length + f.test.length).toBe(506);
      const mark = new Uint8Array(506);
      for (const i of f.train) mark[i]++;
      for (const i of f.test) {
        mark[i]++;
        inTest[i]++;
      }
      expect(mark.every((v) => v === 1)).toBe(true);
    }
    expect(inTest.every((v) => v === 1)).toBe(true);
  });

  it('is deterministic by seed; unshuffled folds are contiguous (the paper)', () => {
    const a = kFold(100, { k: 5, seed: 1 });
    expect(Array.from(a[2].test)).toEqual(Array.from(kFold(100, { k: 5, seed: 1 })[2].test));
    expect(Array.from(a[2].test)).not.toEqual(Array.from(kFold(100, { k: 5, seed: 2 })[2].test));
    const p = kFold(10, { k: 3, shuffle: false });
    expect(p.map((f) => Array.from(f.test))).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    expect(Array.from(p[1].train)).toEqual([0, 1, 2, 3, 7, 8, 9]);
    expect(kFold(506).length).toBe(10);
  });

  it('rejects k out of range', () => {
    expect(() => kFold(5, { k: 6 })).toThrow(/k must be at most n = 5/);
    expect(() => kFold(5, { k: 1 })).toThrow(/k must be an integer >= 2, got 1/);
  });
});

describe('standardizeSplit', () => {
  const b = loadBoston();
  const [fold] = kFold(b.n, { seed: 3 });
  const s = standardizeSplit(b, fold.train, fold.test);

  it('gives train columns mean 0 and std 1 with statistics of the train rows only', () => {
    for (let j = 0; j < 13; j++) {
      const [m, sd] = meanStd(column(s.train.x, 13, j));
      expect(Math.abs(m)).toBeLessThan(1e-5);
      expect(sd).toBeCloseTo(1, 5);
      const [rm, rsd] = meanStd(Array.from(fold.train, (i) => b.x[i * 13 + j]));
      expect(s.xMean[j]).toBeCloseTo(rm, 4);
      expect(s.xStd[j]).toBeCloseTo(rsd, 4);
    }
    const [ym, ysd] = meanStd(s.train.y);
    expect(Math.abs(ym)).toBeLessThan(1e-5);
    expect(ysd).toBeCloseTo(1, 5);
    // test rows use the train statistics: one hand-checked value
    const t0 = fold.test[0];
    expect(s.test.x[5]).toBeCloseTo((b.x[t0 * 13 + 5] - s.xMean[5]) / s.xStd[5], 5);
    expect(s.test.y[0]).toBeCloseTo((b.y[t0] - s.yMean) / s.yStd, 5);
  });

  it('does not look at the test rows', () => {
    const y = b.y.slice();
    for (const i of fold.test) y[i] = 1e6;
    const s2 = standardizeSplit({ ...b, y }, fold.train, fold.test);
    expect(s2.yMean).toBe(s.yMean);
    expect(s2.yStd).toBe(s.yStd);
  });

  it('undoes the target standardisation', () => {
    const back = unstandardizeTarget(s.test.y, s.yMean, s.yStd);
    for (let i = 0; i < fold.test.length; i++) expect(back[i]).toBeCloseTo(b.y[fold.test[i]], 4);
    expect(unstandardizeTarget([2], s.yMean, s.yStd, true)[0]).toBeCloseTo(2 * s.yStd, 5);
  });

  it('bostonFolds gives 10 standardised splits', () => {
    const f = bostonFolds({ seed: 3 });
    expect(f.length).toBe(10);
    expect(f[0].train.n + f[0].test.n).toBe(506);
    expect(f[0].yMean).toBe(s.yMean);
    expect(f[9].test.n).toBe(50);
  });
});

function ols(x: Float32Array, y: Float32Array): [number, number, number] {
  const [mx] = meanStd(x);
  const [my] = meanStd(y);
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  const slope = sxy / sxx;
  const icpt = my - slope * mx;
  const r = Array.from(x, (v, i) => y[i] - (slope * v + icpt));
  return [slope, icpt, meanStd(r)[1]];
}

describe('synthetic regression', () => {
  it('synthLinear: y = 2x + 8 + N(0, 1), x ~ N(0, 1)', () => {
    const d = synthLinear({ n: 20000, seed: 1 });
    expect(d.nFeatures).toBe(1);
    const [mx, sx] = meanStd(d.x);
    expect(Math.abs(mx)).toBeLessThan(0.03);
    expect(sx).toBeCloseTo(1, 1);
    const [slope, icpt, rs] = ols(d.x, d.y);
    expect(slope).toBeCloseTo(2, 1);
    expect(Math.abs(slope - 2)).toBeLessThan(0.03);
    expect(Math.abs(icpt - 8)).toBeLessThan(0.03);
    expect(Math.abs(rs - 1)).toBeLessThan(0.03);
    const clean = synthLinear({ n: 20000, seed: 1, noise: false });
    expect(Array.from(clean.x.subarray(0, 10))).toEqual(Array.from(d.x.subarray(0, 10)));
    for (let i = 0; i < 100; i++) expect(clean.y[i]).toBeCloseTo(2 * clean.x[i] + 8, 5);
    expect(Array.from(synthLinear({ n: 5, seed: 1 }).y)).toEqual(Array.from(d.y.subarray(0, 5)));
  });

  it('synthHeteroscedastic: noise std 0.1 + 0.5|x| on x ~ U(-3, 3)', () => {
    const d = synthHeteroscedastic({ n: 40000, seed: 2 });
    expect(Math.min(...d.x)).toBeGreaterThanOrEqual(-3);
    expect(Math.max(...d.x)).toBeLessThanOrEqual(3);
    const [slope, icpt] = ols(d.x, d.y);
    expect(Math.abs(slope - 2)).toBeLessThan(0.03);
    expect(Math.abs(icpt - 8)).toBeLessThan(0.03);
    // the residual spread follows sigma(x) in every bin of |x|
    for (const [lo, hi] of [
      [0, 0.5],
      [1, 1.5],
      [2.5, 3],
    ]) {
      let r2 = 0;
      let s2 = 0;
      let k = 0;
      for (let i = 0; i < d.n; i++) {
        const a = Math.abs(d.x[i]);
        if (a < lo || a >= hi) continue;
        expect(d.noiseStd[i]).toBeCloseTo(0.1 + 0.5 * a, 5);
        r2 += (d.y[i] - (2 * d.x[i] + 8)) ** 2;
        s2 += d.noiseStd[i] ** 2;
        k++;
      }
      expect(k).toBeGreaterThan(5000);
      expect(Math.sqrt(r2 / s2)).toBeGreaterThan(0.95);
      expect(Math.sqrt(r2 / s2)).toBeLessThan(1.05);
    }
  });
});
