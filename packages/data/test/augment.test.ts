import { Rng } from '@qbnn/core';
import { describe, expect, it } from 'vitest';
import {
  addGaussianNoise,
  applyShift,
  type ImageSet,
  rotatePlane,
  roundHalfEven,
  SHIFT_LEVELS,
  scaleBrightness,
  shiftPlane,
} from '../src/index.js';
import { loadMnist } from '../src/node.js';

const P3 = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]); // rows [1 2 3] [4 5 6] [7 8 9]
const rows = (a: Float32Array, w: number) =>
  Array.from({ length: a.length / w }, (_, r) => Array.from(a.subarray(r * w, (r + 1) * w)));

describe('rotatePlane', () => {
  it('rotates a 3x3 by 90 degrees counter-clockwise, exactly, with either interpolation', () => {
    for (const interp of ['nearest', 'bilinear'] as const) {
      expect(rows(rotatePlane(P3, 3, 3, 90, interp), 3)).toEqual([
        [3, 6, 9],
        [2, 5, 8],
        [1, 4, 7],
      ]);
      expect(rows(rotatePlane(P3, 3, 3, -90, interp), 3)).toEqual([
        [7, 4, 1],
        [8, 5, 2],
        [9, 6, 3],
      ]);
      expect(Array.from(rotatePlane(P3, 3, 3, 180, interp))).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
      expect(Array.from(rotatePlane(P3, 3, 3, 360, interp))).toEqual(Array.from(P3));
    }
    // an even size rotates about the centre between pixels
    expect(rows(rotatePlane(Float32Array.from([1, 2, 3, 4]), 2, 2, 90), 2)).toEqual([
      [2, 4],
      [1, 3],
    ]);
    // a non-square plane: 2 rows x 4 columns by 180 degrees
    expect(Array.from(rotatePlane(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2, 4, 180))).toEqual([
      8, 7, 6, 5, 4, 3, 2, 1,
    ]);
  });

  it('matches hand-computed pixels at 45 degrees (bilinear with zero fill, and nearest)', () => {
    // out (x=0, y=0): offset (-1, -1) reads the source at (1, 1 - sqrt 2) = (1, -0.414): between the
    // zero row above and row 0, weight 1 - 0.414 on pixel (1, 0) = 2.
    const r = Math.SQRT1_2;
    const bl = rotatePlane(P3, 3, 3, 45, 'bilinear');
    expect(bl[0]).toBeCloseTo((2 - Math.SQRT2) * 2, 5);
    // out (x=1, y=0): offset (0, -1) reads (1 + r, 1 - r): weights (1-r)r, r r, (1-r)(1-r), r(1-r)
    // on pixels 2, 3, 5, 6 = 5 - sqrt 2
    expect(bl[1]).toBeCloseTo((1 - r) * r * 2 + r * r * 3 + (1 - r) * (1 - r) * 5 + r * (1 - r) * 6, 5);
    expect(bl[1]).toBeCloseTo(5 - Math.SQRT2, 5);
    expect(bl[4]).toBe(5); // the centre stays
    const nn = rotatePlane(P3, 3, 3, 45, 'nearest');
    expect(nn[0]).toBe(2); // round(1, -0.414) = (1, 0)
    expect(nn[1]).toBe(3); // round(1.707, 0.293) = (2, 0)
    expect(nn[4]).toBe(5);
  });

  it('rejects in-place use and wrong sizes', () => {
    expect(() => rotatePlane(P3, 3, 3, 10, 'nearest', P3)).toThrow(/different arrays/);
    expect(() => rotatePlane(P3, 2, 3, 10)).toThrow(/needs 6 values/);
  });
});

describe('shiftPlane, scaleBrightness, addGaussianNoise', () => {
  const row = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // 2 x 4
  it('shifts by whole pixels with zero fill', () => {
    expect(rows(shiftPlane(row, 2, 4, 1), 4)).toEqual([
      [0, 1, 2, 3],
      [0, 5, 6, 7],
    ]);
    expect(rows(shiftPlane(row, 2, 4, -2), 4)).toEqual([
      [3, 4, 0, 0],
      [7, 8, 0, 0],
    ]);
    expect(Array.from(shiftPlane(row, 2, 4, 4))).toEqual(new Array(8).fill(0));
  });

  it('scales brightness and clips to [0, 1]', () => {
    expect(Array.from(scaleBrightness(Float32Array.from([0, 0.2, 0.5, 0.8]), 1.5))).toEqual(
      Array.from(Float32Array.from([0, 0.3, 0.75, 1])),
    );
    expect(Array.from(scaleBrightness(Float32Array.from([0.2, 0.3]), 3.5))).toEqual([Math.fround(0.7), 1]);
  });

  it('adds seeded Gaussian noise of the given std, clipped to [0, 1]', () => {
    const src = new Float32Array(20000).fill(0.5);
    const a = addGaussianNoise(src, 0.1, new Rng(4));
    const b = addGaussianNoise(src, 0.1, new Rng(4));
    expect(Array.from(a.subarray(0, 50))).toEqual(Array.from(b.subarray(0, 50)));
    let m = 0;
    let v = 0;
    for (const x of a) m += x - 0.5;
    m /= a.length;
    for (const x of a) v += (x - 0.5 - m) ** 2;
    expect(Math.abs(m)).toBeLessThan(0.003);
    expect(Math.sqrt(v / a.length)).toBeCloseTo(0.1, 2);
    const big = addGaussianNoise(src, 3, new Rng(4));
    expect(Math.min(...big)).toBe(0);
    expect(Math.max(...big)).toBe(1);
  });

  it('rounds half to even like the paper (Python round)', () => {
    expect([0.5, 1.5, 2.5, 2.8, -2.5, 8.4].map(roundHalfEven)).toEqual([0, 2, 2, 3, -2, 8]);
  });
});

function tiny(n: number, c = 1, h = 3, w = 3): ImageSet {
  const images = new Float32Array(n * c * h * w);
  for (let i = 0; i < images.length; i++) images[i] = ((i * 7) % 11) / 10;
  return {
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 10),
    shape: [n, c, h, w],
    classNames: [],
  };
}

describe('applyShift', () => {
  it('uses the paper levels: rotation 15..75, brightness 1.5..3.5, shift 0.1..0.5 of the width', () => {
    expect(SHIFT_LEVELS.rotation).toEqual([15, 30, 45, 60, 75]);
    expect(SHIFT_LEVELS.brightness).toEqual([1.5, 2, 2.5, 3, 3.5]);
    expect(SHIFT_LEVELS.shift).toEqual([0.1, 0.2, 0.3, 0.4, 0.5]);
    const s = tiny(2, 1, 28, 28);
    // 0.1..0.5 of 28 px = 2.8, 5.6, 8.4, 11.2, 14 -> 3, 6, 8, 11, 14 px
    expect([1, 2, 3, 4, 5].map((level) => applyShift(s, { kind: 'shift', level }).applied[0])).toEqual([
      3, 6, 8, 11, 14,
    ]);
    expect(applyShift(s, { kind: 'rotation', level: 3 }).applied[1]).toBe(45);
    expect(applyShift(s, { kind: 'brightness', level: 5 }).applied[0]).toBe(3.5);
  });

  it('applies the same transform to every image and channel, labels untouched', () => {
    const s = tiny(3, 2);
    const r = applyShift(s, { kind: 'rotation', value: 90 });
    expect(r.shape).toEqual([3, 2, 3, 3]);
    expect(Array.from(r.labels)).toEqual(Array.from(s.labels));
    for (let p = 0; p < 6; p++) {
      const plane = s.images.subarray(p * 9, (p + 1) * 9);
      expect(Array.from(r.images.subarray(p * 9, (p + 1) * 9))).toEqual(
        Array.from(rotatePlane(plane, 3, 3, 90)),
      );
    }
    const b = applyShift(s, { kind: 'brightness', level: 1 });
    expect(b.images[4]).toBeCloseTo(Math.min(1, s.images[4] * 1.5), 6);
    const sh = applyShift(tiny(1, 1, 1, 10), { kind: 'shift', level: 2 }); // 2 px right
    expect(Array.from(sh.images.subarray(0, 4))).toEqual([
      0,
      0,
      tiny(1, 1, 1, 10).images[0],
      tiny(1, 1, 1, 10).images[1],
    ]);
  });

  it('is deterministic by seed, per image, in the random modes', () => {
    const s = tiny(200);
    const u = applyShift(s, { kind: 'rotation', level: 2, sampling: 'uniform', seed: 7 });
    expect(Math.min(...u.applied)).toBeGreaterThanOrEqual(-30);
    expect(Math.max(...u.applied)).toBeLessThanOrEqual(30);
    expect(new Set(u.applied).size).toBeGreaterThan(150);
    const again = applyShift(tiny(5), { kind: 'rotation', level: 2, sampling: 'uniform', seed: 7 });
    expect(Array.from(again.applied)).toEqual(Array.from(u.applied.subarray(0, 5)));
    expect(Array.from(again.images)).toEqual(Array.from(u.images.subarray(0, 45)));
    const other = applyShift(s, { kind: 'rotation', level: 2, sampling: 'uniform', seed: 8 });
    expect(Array.from(other.applied.subarray(0, 5))).not.toEqual(Array.from(again.applied));
    const sg = applyShift(tiny(200, 1, 1, 10), { kind: 'shift', level: 1, sampling: 'random-sign', seed: 1 });
    expect(new Set(sg.applied)).toEqual(new Set([1, -1]));
    const rs = applyShift(s, { kind: 'rotation', level: 1, sampling: 'random-sign', seed: 1 });
    expect(new Set(rs.applied)).toEqual(new Set([15, -15]));
    const br = applyShift(s, { kind: 'brightness', level: 1, sampling: 'uniform', seed: 1 });
    expect(Math.min(...br.applied)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...br.applied)).toBeLessThanOrEqual(2.5);
    const n1 = applyShift(s, { kind: 'noise', level: 1, seed: 3 });
    const n2 = applyShift(s, { kind: 'noise', level: 1, seed: 3 });
    expect(Array.from(n1.images)).toEqual(Array.from(n2.images));
    expect(Array.from(n1.images)).not.toEqual(
      Array.from(applyShift(s, { kind: 'noise', level: 1, seed: 4 }).images),
    );
  });

  it('rejects unknown kinds, levels and modes', () => {
    const s = tiny(1);
    expect(() => applyShift(s, { kind: 'blur' as 'noise', level: 1 })).toThrow(/kind must be/);
    expect(() => applyShift(s, { kind: 'rotation', level: 6 })).toThrow(
      /level must be an integer in \[1, 5\]/,
    );
    expect(() => applyShift(s, { kind: 'brightness', level: 1, sampling: 'random-sign' })).toThrow(
      /brightness/,
    );
  });

  it('shifts real MNIST digits: four quarter turns give the digit back, pixels stay in [0, 1]', () => {
    const { test } = loadMnist({ trainSize: 0, testSize: 20, seed: 2 });
    let r: ImageSet = test;
    for (let k = 0; k < 4; k++) r = applyShift(r, { kind: 'rotation', value: 90 });
    expect(Array.from(r.images)).toEqual(Array.from(test.images));
    for (const kind of ['rotation', 'brightness', 'shift', 'noise'] as const) {
      for (const level of [1, 5]) {
        const out = applyShift(test, { kind, level, seed: 1 });
        expect(out.images.every((v) => v >= 0 && v <= 1)).toBe(true);
        expect(Array.from(out.images)).not.toEqual(Array.from(test.images));
      }
    }
    // a shift by half the width (14 px) leaves the left half blank
    const half = applyShift(test, { kind: 'shift', level: 5 });
    for (let y = 0; y < 28; y++) for (let x = 0; x < 14; x++) expect(half.images[y * 28 + x]).toBe(0);
  });
});
