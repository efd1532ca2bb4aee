import { describe, expect, test } from 'vitest';
import { packWeights, qconv2d, qconv2dPool, qpool2d } from '../src/kernels/reference.js';
import type { Pool2dSpec } from '../src/kernels/types.js';
import { Rng } from '../src/rng/rng.js';
import { codeOf, randInts, randS8, randU8, refRound } from './helpers.js';

const intOf = (rng: Rng, lo: number, hi: number) => randInts(rng, 1, lo, hi)[0];

/**
 * Pooling written from the definition, independently of poolPlanes: every tap of the padded
 * window is visited; a padded tap is the value 0 (code Z) for avg and is skipped for max.
 */
function directPool(
  x: Uint8Array,
  [b, c, h, w]: [number, number, number, number],
  z: number,
  kind: 'max' | 'avg',
  [kh, kw]: [number, number],
  [sh, sw]: [number, number],
  [ph, pw]: [number, number],
): Uint8Array {
  const ho = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const wo = Math.floor((w + 2 * pw - kw) / sw) + 1;
  const out = new Uint8Array(b * c * ho * wo);
  let o = 0;
  for (let pl = 0; pl < b * c; pl++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        const vals: number[] = [];
        let real = -Infinity;
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const y = oy * sh - ph + i;
            const xx = ox * sw - pw + j;
            const inside = y >= 0 && y < h && xx >= 0 && xx < w;
            const v = inside ? x[pl * h * w + y * w + xx] : z;
            if (inside) real = Math.max(real, v);
            vals.push(v - z);
          }
        const mean = vals.reduce((s, v) => s + v, 0) / (kh * kw);
        out[o++] = kind === 'max' ? real : Math.min(255, Math.max(0, refRound(mean) + z));
      }
  return out;
}

describe('qpool2d (u8 max / avg pooling)', () => {
  test('matches the definition on random geometries, kinds and zero points', () => {
    const rng = new Rng(5);
    for (let s = 0; s < 300; s++) {
      const kh = intOf(rng, 1, 4);
      const kw = intOf(rng, 1, 4);
      const stride: [number, number] = [intOf(rng, 1, 3), intOf(rng, 1, 3)];
      const padding: [number, number] = [intOf(rng, 0, kh >> 1), intOf(rng, 0, kw >> 1)];
      const shape: [number, number, number, number] = [
        intOf(rng, 1, 2),
        intOf(rng, 1, 3),
        intOf(rng, kh, 9),
        intOf(rng, kw, 9),
      ];
      const kind = intOf(rng, 0, 1) === 0 ? 'max' : 'avg';
      const z = intOf(rng, 0, 255);
      const x = randU8(rng, shape[0] * shape[1] * shape[2] * shape[3]);
      const want = directPool(x, shape, z, kind, [kh, kw], stride, padding);
      const got = qpool2d({
        x,
        xShape: shape,
        zeroPoint: z,
        pool: { kind, kernel: [kh, kw], stride, padding },
      });
      expect(Buffer.from(got).equals(Buffer.from(want)), `case ${s}`).toBe(true);
    }
  });

  test('stride defaults to the kernel; exact .5 averages round half to even', () => {
    // 2x2 windows of sum 2 and 6 (means 0.5 and 1.5) with Z = 0: 0 and 2.
    const x = Uint8Array.of(0, 1, 1, 3, 1, 0, 1, 1);
    const got = qpool2d({ x, xShape: [1, 1, 2, 4], zeroPoint: 0, pool: { kind: 'avg', kernel: [2, 2] } });
    expect([...got]).toEqual([0, 2]);
  });

  test('rejects bad specs with typed errors', () => {
    const x = new Uint8Array(16);
    const base = { x, xShape: [1, 1, 4, 4] as [number, number, number, number], zeroPoint: 0 };
    const pool = (p: Partial<Pool2dSpec>) => () =>
      qpool2d({ ...base, pool: { kind: 'max', kernel: [2, 2], ...p } as Pool2dSpec });
    expect(codeOf(pool({ kind: 'min' as never }))).toBe('ERR_ARG');
    expect(codeOf(pool({ kernel: undefined as never }))).toBe('ERR_ARG');
    expect(codeOf(pool({ padding: [2, 0] }))).toBe('ERR_ARG');
    expect(codeOf(pool({ kernel: [5, 1] }))).toBe('ERR_SHAPE');
    expect(codeOf(pool({ stride: [0, 1] }))).toBe('ERR_ARG');
    expect(codeOf(() => qpool2d({ ...base, zeroPoint: 256, pool: { kind: 'max', kernel: [2, 2] } }))).toBe(
      'ERR_ARG',
    );
    expect(
      codeOf(() => qpool2d({ ...base, out: new Uint8Array(3), pool: { kind: 'max', kernel: [2, 2] } })),
    ).toBe('ERR_SHAPE');
  });
});

describe('qconv2dPool', () => {
  test('equals qpool2d(qconv2d(...)) and rejects non-u8 outputs', () => {
    const rng = new Rng(9);
    for (let s = 0; s < 40; s++) {
      const c = intOf(rng, 1, 5);
      const o = intOf(rng, 1, 6);
      const k = intOf(rng, 1, 3);
      const h = intOf(rng, k + 1, 10);
      const kg = c * k * k;
      const zw = Array.from({ length: o }, () => intOf(rng, -3, 3));
      const w = packWeights(randS8(rng, o * kg), o, kg, zw);
      const pool: Pool2dSpec = {
        kind: intOf(rng, 0, 1) ? 'max' : 'avg',
        kernel: [2, 2],
        padding: [intOf(rng, 0, 1), 0],
      };
      const args = {
        x: randU8(rng, 2 * c * h * h),
        xShape: [2, c, h, h] as [number, number, number, number],
        xScale: 0.05,
        xZeroPoint: intOf(rng, 0, 255),
        w,
        wShape: [o, c, k, k] as [number, number, number, number],
        wScale: 0.01,
        padding: [1, 1] as [number, number],
        output: {
          kind: 'u8' as const,
          scale: 2 + rng.uniform(1)[0] * 30,
          zeroPoint: intOf(rng, 0, 60),
          relu: intOf(rng, 0, 1) === 1,
        },
      };
      const conv = qconv2d(args) as Uint8Array;
      const ho = (h + 2 - k) / 1 + 1;
      const want = qpool2d({ x: conv, xShape: [2, o, ho, ho], zeroPoint: args.output.zeroPoint, pool });
      const got = qconv2dPool({ ...args, pool });
      expect(Buffer.from(got).equals(Buffer.from(want)), `case ${s}`).toBe(true);
    }
    const bad = { kind: 'f32' } as never;
    expect(
      codeOf(() =>
        qconv2dPool({
          x: new Uint8Array(16),
          xShape: [1, 1, 4, 4],
          xScale: 1,
          xZeroPoint: 0,
          w: packWeights(new Int8Array(1), 1, 1, 0),
          wShape: [1, 1, 1, 1],
          wScale: 1,
          output: bad,
          pool: { kind: 'max', kernel: [2, 2] },
        }),
      ),
    ).toBe('ERR_ARG');
  });
});
