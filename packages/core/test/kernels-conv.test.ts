import { describe, expect, test } from 'vitest';
import { convOutSize, packWeights, qconv2d } from '../src/kernels/reference.js';
import type { QConv2dArgs } from '../src/kernels/types.js';
import { codeOf, Rng, randInts, randS8, randU8, refRound } from './helpers.js';

interface ConvCase {
  b: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  stride: [number, number];
  pad: [number, number];
  dil: [number, number];
  groups: number;
}

/** Direct float64 convolution (7 loops); out-of-bounds taps are skipped (they read Za, worth 0). */
function directConv(
  x: Uint8Array,
  wt: Int8Array,
  cs: ConvCase,
  za: number,
  zw: number[],
  bias?: Int32Array,
): { acc: Float64Array; ho: number; wo: number } {
  const cg = cs.c / cs.groups;
  const og = cs.o / cs.groups;
  const ho = Math.floor((cs.h + 2 * cs.pad[0] - cs.dil[0] * (cs.kh - 1) - 1) / cs.stride[0]) + 1;
  const wo = Math.floor((cs.w + 2 * cs.pad[1] - cs.dil[1] * (cs.kw - 1) - 1) / cs.stride[1]) + 1;
  const acc = new Float64Array(cs.b * cs.o * ho * wo);
  for (let b = 0; b < cs.b; b++)
    for (let oc = 0; oc < cs.o; oc++) {
      const g = Math.floor(oc / og);
      for (let oh = 0; oh < ho; oh++)
        for (let ow = 0; ow < wo; ow++) {
          let s = bias ? bias[oc] : 0;
          for (let ci = 0; ci < cg; ci++)
            for (let i = 0; i < cs.kh; i++)
              for (let j = 0; j < cs.kw; j++) {
                const ih = oh * cs.stride[0] - cs.pad[0] + i * cs.dil[0];
                const iw = ow * cs.stride[1] - cs.pad[1] + j * cs.dil[1];
                if (ih < 0 || ih >= cs.h || iw < 0 || iw >= cs.w) continue;
                const xv = x[((b * cs.c + g * cg + ci) * cs.h + ih) * cs.w + iw];
                const wv = wt[((oc * cg + ci) * cs.kh + i) * cs.kw + j];
                s += (xv - za) * (wv - zw[oc]);
              }
          acc[((b * cs.o + oc) * ho + oh) * wo + ow] = s;
        }
    }
  return { acc, ho, wo };
}

const CASES: ConvCase[] = [
  { b: 1, c: 1, h: 5, w: 5, o: 1, kh: 3, kw: 3, stride: [1, 1], pad: [0, 0], dil: [1, 1], groups: 1 },
  { b: 2, c: 3, h: 7, w: 6, o: 4, kh: 3, kw: 2, stride: [2, 1], pad: [1, 2], dil: [1, 1], groups: 1 },
  { b: 1, c: 4, h: 9, w: 8, o: 6, kh: 3, kw: 3, stride: [1, 2], pad: [2, 1], dil: [2, 3], groups: 2 },
  { b: 2, c: 6, h: 5, w: 5, o: 6, kh: 3, kw: 3, stride: [1, 1], pad: [1, 1], dil: [1, 1], groups: 6 },
  { b: 1, c: 6, h: 6, w: 7, o: 9, kh: 1, kw: 1, stride: [3, 2], pad: [0, 0], dil: [1, 1], groups: 3 },
  { b: 1, c: 2, h: 4, w: 4, o: 3, kh: 5, kw: 5, stride: [1, 1], pad: [3, 3], dil: [1, 1], groups: 1 },
];

describe('reference qconv2d', () => {
  test('matches a direct float64 convolution: stride, padding, dilation, groups, per-channel, relu', () => {
    const rng = new Rng(7);
    for (const cs of CASES) {
      const cg = cs.c / cs.groups;
      const og = cs.o / cs.groups;
      const kg = cg * cs.kh * cs.kw;
      const x = randU8(rng, cs.b * cs.c * cs.h * cs.w);
      const wt = randS8(rng, cs.o * kg);
      const za = randInts(rng, 1, 0, 255)[0];
      const zw = randInts(rng, cs.o, -10, 10);
      const bias = Int32Array.from(randInts(rng, cs.o, -3000, 3000));
      const ws = Float64Array.from(rng.uniform(cs.o), (u) => 0.002 + u * 0.01);
      const { acc, ho, wo } = directConv(x, wt, cs, za, zw, bias);
      expect(ho).toBe(convOutSize(cs.h, cs.kh, cs.stride[0], cs.pad[0], cs.dil[0]));
      expect(wo).toBe(convOutSize(cs.w, cs.kw, cs.stride[1], cs.pad[1], cs.dil[1]));
      const single = packWeights(wt, cs.o, kg, Int32Array.from(zw));
      const perGroup = Array.from({ length: cs.groups }, (_, g) =>
        packWeights(
          wt.subarray(g * og * kg, (g + 1) * og * kg),
          og,
          kg,
          Int32Array.from(zw.slice(g * og, (g + 1) * og)),
        ),
      );
      const base: QConv2dArgs = {
        x,
        xShape: [cs.b, cs.c, cs.h, cs.w],
        xScale: 0.05,
        xZeroPoint: za,
        w: single,
        wShape: [cs.o, cg, cs.kh, cs.kw],
        wScale: ws,
        bias,
        stride: cs.stride,
        padding: cs.pad,
        dilation: cs.dil,
        groups: cs.groups,
        output: { kind: 'i32' },
      };
      const i32 = qconv2d(base);
      expect([...i32]).toEqual([...acc]);
      expect([...qconv2d({ ...base, w: perGroup })]).toEqual([...acc]);

      const so = 0.3;
      const zo = 100;
      for (const relu of [false, true]) {
        const u8 = qconv2d({ ...base, output: { kind: 'u8', scale: so, zeroPoint: zo, relu } });
        for (let idx = 0; idx < acc.length; idx++) {
          const oc = Math.floor(idx / (ho * wo)) % cs.o;
          const q = refRound(acc[idx] * ((0.05 * ws[oc]) / so)) + zo;
          expect(u8[idx]).toBe(Math.min(255, Math.max(relu ? zo : 0, q)));
        }
      }
      const f32 = qconv2d({ ...base, output: { kind: 'f32' } });
      for (let idx = 0; idx < acc.length; idx++) {
        const oc = Math.floor(idx / (ho * wo)) % cs.o;
        expect(f32[idx]).toBe(Math.fround(acc[idx] * (0.05 * ws[oc])));
      }
    }
  });

  test('padding reads the input zero point, so a padded tap contributes exactly 0', () => {
    // All-ones weights over a constant image equal to Za: every output is 0 whatever the padding.
    const x = new Uint8Array(16).fill(77);
    const w = packWeights(new Int8Array(9).fill(1), 1, 9, 0);
    const out = qconv2d({
      x,
      xShape: [1, 1, 4, 4],
      xScale: 1,
      xZeroPoint: 77,
      w,
      wShape: [1, 1, 3, 3],
      wScale: 1,
      padding: [2, 2],
      output: { kind: 'i32' },
    });
    expect(out.length).toBe(36);
    expect(out.every((v) => v === 0)).toBe(true);
  });

  test('rejects inconsistent shapes and arguments with typed errors', () => {
    const w = packWeights(new Int8Array(2 * 4 * 9), 2, 36, 0);
    const base: QConv2dArgs = {
      x: new Uint8Array(4 * 25),
      xShape: [1, 4, 5, 5],
      xScale: 1,
      xZeroPoint: 0,
      w,
      wShape: [2, 4, 3, 3],
      wScale: 1,
      output: { kind: 'i32' },
    };
    expect(codeOf(() => qconv2d(base))).toBeUndefined();
    expect(codeOf(() => qconv2d({ ...base, x: new Uint8Array(99) }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qconv2d({ ...base, wShape: [2, 3, 3, 3] }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qconv2d({ ...base, groups: 3 }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qconv2d({ ...base, groups: 2, wShape: [2, 2, 3, 3] }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qconv2d({ ...base, stride: [0, 1] }))).toBe('ERR_ARG');
    expect(codeOf(() => qconv2d({ ...base, padding: [-1, 0] }))).toBe('ERR_ARG');
    expect(codeOf(() => qconv2d({ ...base, dilation: [3, 3] }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qconv2d({ ...base, xZeroPoint: 300 }))).toBe('ERR_ARG');
    expect(codeOf(() => qconv2d({ ...base, bias: new Int32Array(3) }))).toBe('ERR_SHAPE');
    expect(
      codeOf(() => qconv2d({ ...base, xShape: [1, 4, 5] as unknown as [number, number, number, number] })),
    ).toBe('ERR_SHAPE');
  });
});
