import { describe, expect, test } from 'vitest';
import { packWeights, qgemm } from '../src/kernels/reference.js';
import { type GemmOutput, MAX_GEMM_K } from '../src/kernels/types.js';
import { codeOf, Rng, randInts, randS8, randU8, refRound } from './helpers.js';

/** float64 brute force: acc[m, n] = sum_k (a - Za)(w - Zw[n]) + bias[n]. */
function bruteAcc(
  a: Uint8Array,
  w: Int8Array,
  m: number,
  n: number,
  k: number,
  za: number,
  zw: number[],
  bias?: Int32Array,
): Float64Array {
  const acc = new Float64Array(m * n);
  for (let r = 0; r < m; r++)
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += (a[r * k + i] - za) * (w[c * k + i] - zw[c]);
      acc[r * n + c] = s + (bias ? bias[c] : 0);
    }
  return acc;
}

interface Case {
  m: number;
  n: number;
  k: number;
  perChannel: boolean;
  relu: boolean;
  bias: boolean;
}

function runCase(rng: Rng, cs: Case): void {
  const { m, n, k } = cs;
  const a = randU8(rng, m * k);
  const w = randS8(rng, n * k);
  const za = randInts(rng, 1, 0, 255)[0];
  const zw = cs.perChannel ? randInts(rng, n, -128, 127) : Array(n).fill(randInts(rng, 1, -20, 20)[0]);
  const aScale = 0.01 + rng.uniform(1)[0] * 0.05;
  const ws = cs.perChannel
    ? Array.from(rng.uniform(n), (u) => 0.001 + u * 0.02)
    : [0.004 + rng.uniform(1)[0] * 0.01];
  const bias = cs.bias ? Int32Array.from(randInts(rng, n, -50000, 50000)) : undefined;
  const packed = packWeights(w, n, k, cs.perChannel ? Int32Array.from(zw) : zw[0]);
  const acc = bruteAcc(a, w, m, n, k, za, zw, bias);
  const wScale = cs.perChannel ? Float64Array.from(ws) : ws[0];
  const wsOf = (c: number) => (cs.perChannel ? ws[c] : ws[0]);

  const i32 = qgemm({ a, m, aScale, aZeroPoint: za, w: packed, wScale, bias, output: { kind: 'i32' } });
  expect(i32).toBeInstanceOf(Int32Array);
  expect([...i32]).toEqual([...acc]);

  const f32 = qgemm({ a, m, aScale, aZeroPoint: za, w: packed, wScale, bias, output: { kind: 'f32' } });
  for (let i = 0; i < m * n; i++) expect(f32[i]).toBe(Math.fround(acc[i] * (aScale * wsOf(i % n))));

  // Output range chosen to cover the typical accumulator spread (some values saturate).
  let lo = 0;
  let hi = 0;
  for (const v of acc) {
    lo = Math.min(lo, v * aScale * wsOf(0));
    hi = Math.max(hi, v * aScale * wsOf(0));
  }
  const so = Math.max((hi - lo) / 200, 1e-6);
  const zo = Math.min(255, Math.max(0, refRound(-lo / so)));
  const output: GemmOutput = { kind: 'u8', scale: so, zeroPoint: zo, relu: cs.relu };
  const u8 = qgemm({ a, m, aScale, aZeroPoint: za, w: packed, wScale, bias, output });
  expect(u8).toBeInstanceOf(Uint8Array);
  for (let i = 0; i < m * n; i++) {
    const mult = (aScale * wsOf(i % n)) / so;
    const q = refRound(acc[i] * mult) + zo;
    const ref = Math.min(255, Math.max(cs.relu ? zo : 0, q));
    expect(u8[i]).toBe(ref);
    // Semantics: the real-valued product, dequantised, is within half a step unless clamped.
    const real = acc[i] * aScale * wsOf(i % n);
    if (ref > (cs.relu ? zo : 0) && ref < 255)
      expect(Math.abs(so * (ref - zo) - real)).toBeLessThanOrEqual(so * 0.5 + 1e-9);
  }
}

describe('reference qgemm', () => {
  test('matches a float64 brute force on random shapes (M=1, N=1, odd K), per-tensor and per-channel', () => {
    const rng = new Rng(42);
    const shapes = [
      [1, 1, 1],
      [1, 7, 13],
      [5, 1, 9],
      [3, 4, 5],
      [8, 16, 33],
      [7, 3, 127],
      [2, 5, 1000],
    ];
    for (const [m, n, k] of shapes)
      for (const perChannel of [false, true])
        for (const relu of [false, true]) runCase(rng, { m, n, k, perChannel, relu, bias: relu });
  });

  test('worst-case values are exact: u8 255 x s8 -128 with K up to 4096, and K = MAX_GEMM_K', () => {
    for (const k of [1, 255, 4096]) {
      const a = new Uint8Array(2 * k).fill(255);
      const w = new Int8Array(3 * k).fill(-128);
      for (const [za, zw] of [
        [0, 0],
        [0, 127],
        [255, -128],
      ]) {
        const out = qgemm({
          a,
          m: 2,
          aScale: 1,
          aZeroPoint: za,
          w: packWeights(w, 3, k, zw),
          wScale: 1,
          output: { kind: 'i32' },
        });
        expect([...out]).toEqual(Array(6).fill(k * (255 - za) * (-128 - zw)));
      }
    }
    const k = MAX_GEMM_K;
    const a = new Uint8Array(k).fill(255);
    const w = new Int8Array(k).fill(-128);
    const out = qgemm({
      a,
      m: 1,
      aScale: 1,
      aZeroPoint: 0,
      w: packWeights(w, 1, k, 127),
      wScale: 1,
      output: { kind: 'i32' },
    });
    expect(out[0]).toBe(k * 255 * -255);
    expect(out[0]).toBeGreaterThan(-(2 ** 31));
    const big = new Int8Array(k + 1);
    expect(
      codeOf(() =>
        qgemm({
          a: new Uint8Array(k + 1),
          m: 1,
          aScale: 1,
          aZeroPoint: 0,
          w: packWeights(big, 1, k + 1, 0),
          wScale: 1,
          output: { kind: 'i32' },
        }),
      ),
    ).toBe('ERR_UNSUPPORTED');
  });

  test('requantisation rounds ties to even and the ReLU clamp sits at the output zero point', () => {
    // acc = a * w with Za = Zw = 0; multiplier 0.5 makes odd accumulators exact ties.
    const a = Uint8Array.from([1, 3, 5, 7, 2]);
    const w = packWeights(Int8Array.from([1, -1]), 2, 1, 0);
    const out = qgemm({
      a,
      m: 5,
      aScale: 0.5,
      aZeroPoint: 0,
      w,
      wScale: 1,
      output: { kind: 'u8', scale: 1, zeroPoint: 10 },
    });
    // rows: acc = [a, -a] * 0.5 -> 0.5, 1.5, 2.5, 3.5, 1 and negatives.
    expect([...out]).toEqual([10, 10, 12, 8, 12, 8, 14, 6, 11, 9]);
    const relu = qgemm({
      a,
      m: 5,
      aScale: 0.5,
      aZeroPoint: 0,
      w,
      wScale: 1,
      output: { kind: 'u8', scale: 1, zeroPoint: 10, relu: true },
    });
    expect([...relu]).toEqual([10, 10, 12, 10, 12, 10, 14, 10, 11, 10]);
  });

  test('an extreme bias wraps the accumulator modulo 2^32 like int32 hardware', () => {
    const w = packWeights(Int8Array.of(127), 1, 1, 0);
    const bias = Int32Array.of(2 ** 31 - 1);
    const base = { a: Uint8Array.of(255), m: 1, aScale: 1, aZeroPoint: 0, w, wScale: 1, bias };
    const wrapped = 255 * 127 + (2 ** 31 - 1) - 2 ** 32;
    expect(qgemm({ ...base, output: { kind: 'i32' } })[0]).toBe(wrapped);
    expect(qgemm({ ...base, output: { kind: 'f32' } })[0]).toBe(Math.fround(wrapped));
    expect(qgemm({ ...base, output: { kind: 'u8', scale: 1, zeroPoint: 0 } })[0]).toBe(0);
  });

  test('writes into a caller buffer and validates every argument', () => {
    const w = packWeights(Int8Array.from([1, 2, 3, 4, 5, 6]), 2, 3, [0, 1]);
    const a = Uint8Array.from([1, 2, 3]);
    const base = {
      a,
      m: 1,
      aScale: 0.1,
      aZeroPoint: 3,
      w,
      wScale: [0.1, 0.2],
      output: { kind: 'i32' } as GemmOutput,
    };
    const out = new Int32Array(2);
    expect(qgemm({ ...base, out })).toBe(out);
    expect([...out]).toEqual([(1 - 3) * 1 + (2 - 3) * 2 + 0, (1 - 3) * 3 + (2 - 3) * 4 + 0 * 5]);
    expect(codeOf(() => qgemm({ ...base, a: new Uint8Array(4) }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qgemm({ ...base, a: new Int8Array(3) as unknown as Uint8Array }))).toBe('ERR_ARG');
    expect(codeOf(() => qgemm({ ...base, m: 1.5 }))).toBe('ERR_ARG');
    expect(codeOf(() => qgemm({ ...base, aZeroPoint: 256 }))).toBe('ERR_ARG');
    expect(codeOf(() => qgemm({ ...base, aScale: 0 }))).toBe('ERR_ARG');
    expect(codeOf(() => qgemm({ ...base, wScale: [0.1, 0.2, 0.3] }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qgemm({ ...base, wScale: [0.1, Number.NaN] }))).toBe('ERR_NAN');
    expect(codeOf(() => qgemm({ ...base, bias: new Int32Array(3) }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qgemm({ ...base, out: new Float32Array(2) }))).toBe('ERR_ARG');
    expect(codeOf(() => qgemm({ ...base, out: new Int32Array(3) }))).toBe('ERR_SHAPE');
    expect(codeOf(() => qgemm({ ...base, output: { kind: 'u8', scale: 1, zeroPoint: -1 } }))).toBe('ERR_ARG');
    expect(codeOf(() => qgemm({ ...base, output: { kind: 'f16' } as unknown as GemmOutput }))).toBe(
      'ERR_ARG',
    );
    expect(codeOf(() => qgemm({ ...base, w: { ...w, provider: 'native' } }))).toBe('ERR_ARG');
    expect(codeOf(() => packWeights(new Int8Array(5), 2, 3, 0))).toBe('ERR_SHAPE');
    expect(codeOf(() => packWeights(new Int8Array(6), 2, 3, 128))).toBe('ERR_ARG');
    expect(codeOf(() => packWeights(new Int8Array(6), 2, 3, [0, 0, 0]))).toBe('ERR_SHAPE');
  });

  test('packWeights copies the weights and computes row sums', () => {
    const w = Int8Array.from([1, -2, 3, -128, 127, 5]);
    const p = packWeights(w, 2, 3, [-1, 2]);
    w[0] = 100;
    expect([...p.data]).toEqual([1, -2, 3, -128, 127, 5]);
    expect([...p.rowSums]).toEqual([2, 4]);
    expect([...p.zeroPoint]).toEqual([-1, 2]);
  });
});
