import { describe, expect, it } from 'vitest';
import { poolU8 } from '../src/engine/u8-ops.js';
import { lcg } from './helpers.js';

/** Max pooling by the definition (padded taps never win). */
function naiveMax(
  x: Uint8Array,
  [B, C, H, W]: number[],
  [kh, kw]: number[],
  [sh, sw]: number[],
  [ph, pw]: number[],
): number[] {
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  const out: number[] = [];
  for (let bc = 0; bc < B * C; bc++)
    for (let oy = 0; oy < Ho; oy++)
      for (let ox = 0; ox < Wo; ox++) {
        let m = -1;
        for (let dy = 0; dy < kh; dy++)
          for (let dx = 0; dx < kw; dx++) {
            const iy = oy * sh - ph + dy;
            const ix = ox * sw - pw + dx;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) m = Math.max(m, x[bc * H * W + iy * W + ix]);
          }
        out.push(m);
      }
  return out;
}

describe('poolU8', () => {
  const cases: [number[], number[], number[], number[]][] = [
    [
      [2, 3, 8, 8],
      [2, 2],
      [2, 2],
      [0, 0],
    ],
    [
      [1, 2, 7, 9],
      [2, 2],
      [2, 2],
      [0, 0],
    ],
    [
      [2, 2, 9, 7],
      [3, 3],
      [2, 2],
      [0, 0],
    ],
    [
      [1, 3, 6, 6],
      [3, 2],
      [1, 1],
      [0, 0],
    ],
    [
      [1, 2, 7, 7],
      [3, 3],
      [2, 2],
      [1, 1],
    ],
  ];
  for (const [shape, k, s, p] of cases) {
    it(`max ${k.join('x')} stride ${s.join(',')} pad ${p.join(',')} on [${shape}] equals the definition`, () => {
      const rnd = lcg(shape.reduce((a, b) => a * 31 + b, 7));
      const x = Uint8Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.floor(rnd() * 256));
      const r = poolU8(
        x,
        shape as [number, number, number, number],
        'max',
        k as [number, number],
        s as [number, number],
        p as [number, number],
        0,
      );
      expect(Array.from(r.out)).toEqual(naiveMax(x, shape, k, s, p));
    });
  }
});
