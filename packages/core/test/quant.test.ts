import { describe, expect, test } from 'vitest';
import { QbnnError } from '../src/errors.js';
import {
  channelMinMax,
  computePerChannelQuantParams,
  computeQuantParams,
  dequantize,
  fakeQuantize,
  gaussianSampleMultipliers,
  minMax,
  qRange,
  quantize,
  requantMultipliers,
  roundHalfEven,
} from '../src/quant/index.js';
import { QNORMAL_SCALE } from '../src/rng/qnormal.js';
import { Rng } from '../src/rng/rng.js';

/** Independent rounding reference: floor plus an explicit tie rule. */
function refRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof QbnnError) return e.code;
    throw e;
  }
  return undefined;
}

describe('roundHalfEven', () => {
  test('ties go to the even neighbour, others to the nearest', () => {
    const cases: [number, number][] = [
      [0.5, 0],
      [1.5, 2],
      [2.5, 2],
      [-0.5, 0],
      [-1.5, -2],
      [-2.5, -2],
      [0.49999999999999994, 0],
      [2.5000000000000004, 3],
      [-2.4999999999999996, -2],
      [1e300, 1e300],
      [4503599627370495.5, 4503599627370496],
      [4503599627370494.5, 4503599627370494],
    ];
    for (const [x, r] of cases) expect(roundHalfEven(x)).toBe(r);
  });

  test('agrees with a floor-based reference on random halves and non-halves', () => {
    const u = new Rng(1).uniform(4000);
    for (let i = 0; i < u.length; i++) {
      const tie = (Math.floor(u[i] * 2000) - 1000) / 2;
      const x = (u[i] - 0.5) * 600;
      expect(roundHalfEven(tie)).toBe(refRound(tie));
      expect(roundHalfEven(x)).toBe(refRound(x));
    }
  });
});

describe('qRange and computeQuantParams', () => {
  test('ranges for 2..8 bits', () => {
    expect(qRange(8, true)).toEqual({ qmin: -128, qmax: 127 });
    expect(qRange(8, false)).toEqual({ qmin: 0, qmax: 255 });
    expect(qRange(2, true)).toEqual({ qmin: -2, qmax: 1 });
    expect(qRange(4, false)).toEqual({ qmin: 0, qmax: 15 });
    for (const b of [1, 9, 2.5, Number.NaN]) expect(codeOf(() => qRange(b, true))).toBe('ERR_ARG');
  });

  test('asymmetric params follow the closed form and represent 0 exactly', () => {
    const p = computeQuantParams({ min: -1, max: 3, bits: 8 });
    expect(p.scale).toBe(4 / 255);
    expect(p.zeroPoint).toBe(0 - refRound(-1 / (4 / 255)));
    expect(p.signed).toBe(false);
    // A positive-only range is widened to include 0.
    const q = computeQuantParams({ min: 2, max: 6, bits: 4, signed: true });
    expect(q.scale).toBe(6 / 15);
    expect(q.zeroPoint).toBe(-8);
    const r = new Rng(2).uniform(600);
    for (let i = 0; i < 600; i += 3) {
      const bits = 2 + Math.floor(r[i] * 7);
      const a = (r[i + 1] - 0.7) * 10;
      const b = a + r[i + 2] * 10;
      for (const signed of [false, true]) {
        const pr = computeQuantParams({ min: a, max: b, bits, signed });
        const { qmin, qmax } = qRange(bits, signed);
        expect(pr.zeroPoint).toBeGreaterThanOrEqual(qmin);
        expect(pr.zeroPoint).toBeLessThanOrEqual(qmax);
        expect(dequantize(quantize([0], pr), pr)[0]).toBe(0);
        // Every value of the (widened) range comes back within half a step.
        const xs = [Math.min(a, 0), Math.max(b, 0), (a + b) / 2, a, b];
        const back = dequantize(quantize(xs, pr), pr, { out: new Float64Array(xs.length) });
        for (let j = 0; j < xs.length; j++) {
          expect(Math.abs(back[j] - xs[j])).toBeLessThanOrEqual(pr.scale * 0.5 * (1 + 1e-9) + 1e-12);
        }
      }
    }
  });

  test('symmetric forces zeroPoint 0 and signed storage, with max|x| at qmax', () => {
    const p = computeQuantParams({ min: -0.5, max: 2, bits: 8, symmetric: true });
    expect(p).toEqual({ scale: 2 / 127, zeroPoint: 0, bits: 8, signed: true });
    expect(
      codeOf(() => computeQuantParams({ min: -1, max: 1, bits: 8, symmetric: true, signed: false })),
    ).toBe('ERR_ARG');
  });

  test('degenerate and tiny ranges still give a finite positive scale', () => {
    const z = computeQuantParams({ min: 0, max: 0, bits: 8 });
    expect(z.scale).toBe(1);
    expect([...quantize([0, 0], z)]).toEqual([z.zeroPoint, z.zeroPoint]);
    const t = computeQuantParams({ min: 1e-320, max: 1e-320, bits: 8 });
    expect(t.scale).toBeGreaterThan(0);
    expect(Number.isFinite(1 / t.scale)).toBe(true);
    const s = computeQuantParams({ min: 0, max: 0, bits: 4, symmetric: true });
    expect(s.scale).toBe(1);
  });

  test('bad ranges are typed errors', () => {
    expect(codeOf(() => computeQuantParams({ min: Number.NaN, max: 1, bits: 8 }))).toBe('ERR_NAN');
    expect(codeOf(() => computeQuantParams({ min: 0, max: Number.POSITIVE_INFINITY, bits: 8 }))).toBe(
      'ERR_NAN',
    );
    expect(codeOf(() => computeQuantParams({ min: 2, max: 1, bits: 8 }))).toBe('ERR_ARG');
    expect(codeOf(() => computeQuantParams({ min: 0, max: 1, bits: 16 }))).toBe('ERR_ARG');
  });
});

describe('quantize / dequantize / fakeQuantize', () => {
  test('per-tensor quantize is saturate(roundHalfEven(f / S) + Z)', () => {
    const p = { scale: 0.5, zeroPoint: 3, bits: 4, signed: false };
    const xs = [-2, -1.75, -1.5, -1.25, 0, 0.25, 0.75, 1.25, 5, 6.25, 6.5, 100, -100];
    const q = quantize(xs, p);
    expect(q).toBeInstanceOf(Uint8Array);
    expect([...q]).toEqual(xs.map((x) => Math.min(15, Math.max(0, refRound(x / 0.5) + 3))));
    const s = quantize([-1000, 1000, -0.25], { scale: 0.5, zeroPoint: 0, bits: 8, signed: true });
    expect(s).toBeInstanceOf(Int8Array);
    expect([...s]).toEqual([-128, 127, 0]);
  });

  test('NaN and infinity are errors, never a silent 0', () => {
    const p = computeQuantParams({ min: -1, max: 1, bits: 8 });
    expect(codeOf(() => quantize([0, Number.NaN], p))).toBe('ERR_NAN');
    expect(codeOf(() => quantize([Number.NEGATIVE_INFINITY], p))).toBe('ERR_NAN');
    expect(codeOf(() => fakeQuantize([Number.NaN], p))).toBe('ERR_NAN');
    expect(codeOf(() => minMax([1, Number.NaN]))).toBe('ERR_NAN');
    expect(codeOf(() => dequantize([1, Number.NaN], p))).toBe('ERR_NAN');
    expect(codeOf(() => dequantize([1.5], p))).toBe('ERR_ARG');
    expect(codeOf(() => quantize(null as unknown as number[], p))).toBe('ERR_ARG');
  });

  test('bad parameters are typed errors', () => {
    expect(codeOf(() => quantize([1], { scale: 0, zeroPoint: 0, bits: 8, signed: true }))).toBe('ERR_ARG');
    expect(codeOf(() => quantize([1], { scale: -1, zeroPoint: 0, bits: 8, signed: true }))).toBe('ERR_ARG');
    expect(codeOf(() => quantize([1], { scale: 1, zeroPoint: 200, bits: 8, signed: true }))).toBe('ERR_ARG');
    expect(
      codeOf(() =>
        quantize([1], { scale: 1, zeroPoint: 0, bits: 8, signed: true }, { out: new Uint8Array(1) }),
      ),
    ).toBe('ERR_ARG');
    expect(
      codeOf(() => quantize([1, 2], { scale: 1, zeroPoint: 0, bits: 8, signed: true }, { shape: [3] })),
    ).toBe('ERR_SHAPE');
  });

  test('per-channel along any axis matches a brute-force loop over coordinates', () => {
    const shape = [3, 4, 5];
    const vals = Array.from(new Rng(3).normal(60), (v) => v * 2);
    for (const axis of [0, 1, 2]) {
      const mm = channelMinMax(vals, shape, axis);
      // Brute-force per-channel ranges by coordinates.
      for (let c = 0; c < shape[axis]; c++) {
        let lo = Number.POSITIVE_INFINITY;
        let hi = Number.NEGATIVE_INFINITY;
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 4; j++)
            for (let k = 0; k < 5; k++) {
              if ([i, j, k][axis] !== c) continue;
              const v = vals[i * 20 + j * 5 + k];
              lo = Math.min(lo, v);
              hi = Math.max(hi, v);
            }
        expect(mm.min[c]).toBe(lo);
        expect(mm.max[c]).toBe(hi);
      }
      for (const symmetric of [false, true]) {
        const p = computePerChannelQuantParams({ ...mm, axis, bits: 6, symmetric });
        const q = quantize(vals, p, { shape });
        const d = dequantize(q, p, { shape, out: new Float64Array(60) });
        const fq = fakeQuantize(vals, p, { shape, out: new Float64Array(60) });
        const { qmin, qmax } = qRange(6, p.signed);
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 4; j++)
            for (let k = 0; k < 5; k++) {
              const idx = i * 20 + j * 5 + k;
              const c = [i, j, k][axis];
              const per = computeQuantParams({ min: mm.min[c], max: mm.max[c], bits: 6, symmetric });
              expect(p.scale[c]).toBe(per.scale);
              expect(p.zeroPoint[c]).toBe(per.zeroPoint);
              const ref = Math.min(qmax, Math.max(qmin, refRound(vals[idx] / per.scale) + per.zeroPoint));
              expect(q[idx]).toBe(ref);
              expect(d[idx]).toBe(per.scale * (ref - per.zeroPoint));
              expect(fq[idx]).toBe(d[idx]);
            }
      }
    }
  });

  test('per-channel length mismatches and a missing shape are errors', () => {
    const p = computePerChannelQuantParams({ min: [-1, -2], max: [1, 2], axis: 0, bits: 8 });
    expect(codeOf(() => quantize([1, 2, 3, 4, 5, 6], p, { shape: [3, 2] }))).toBe('ERR_SHAPE');
    expect(codeOf(() => quantize([1, 2, 3, 4], p))).toBe('ERR_ARG');
    expect(codeOf(() => quantize([1, 2, 3, 4], p, { shape: [2, 2, 1] }))).toBeUndefined();
    expect(codeOf(() => quantize([1, 2, 3, 4], { ...p, axis: 3 }, { shape: [2, 2] }))).toBe('ERR_ARG');
    expect(codeOf(() => computePerChannelQuantParams({ min: [0, 0], max: [1], axis: 0, bits: 8 }))).toBe(
      'ERR_SHAPE',
    );
  });

  test('fakeQuantize equals dequantize(quantize(x)) in float32', () => {
    const vals = new Rng(4).normal(1000);
    const p = computeQuantParams({ ...minMax(vals), bits: 3 });
    const fq = fakeQuantize(vals, p);
    expect(fq).toBeInstanceOf(Float32Array);
    expect([...fq]).toEqual([...dequantize(quantize(vals, p), p)]);
    expect(new Set(fq).size).toBeLessThanOrEqual(8);
  });
});

describe('multipliers', () => {
  test('requantMultipliers broadcasts per-tensor scales and computes (a * w) / o', () => {
    const m = requantMultipliers(0.02, [0.1, 0.3], 0.05, 2);
    expect([...m]).toEqual([(0.02 * 0.1) / 0.05, (0.02 * 0.3) / 0.05]);
    expect([...requantMultipliers(0.5, 0.25, 2, 3)]).toEqual([0.0625, 0.0625, 0.0625]);
    expect(codeOf(() => requantMultipliers(0.1, [0.1, 0.2], 1, 3))).toBe('ERR_SHAPE');
    expect(codeOf(() => requantMultipliers(0.1, 0.1, 0, 3))).toBe('ERR_ARG');
    expect(codeOf(() => requantMultipliers(Number.NaN, 0.1, 1, 3))).toBe('ERR_NAN');
  });

  test('gaussianSampleMultipliers follows the contract order', () => {
    const g = gaussianSampleMultipliers({
      muScale: 0.1,
      sigmaScale: [0.01, 0.02],
      noiseScale: 0.03,
      weightScale: 0.2,
      n: 2,
    });
    expect([...g.m1]).toEqual([(QNORMAL_SCALE * 0.01) / 0.03, (QNORMAL_SCALE * 0.02) / 0.03]);
    expect([...g.m2]).toEqual([0.1 / 0.2, 0.1 / 0.2]);
    expect([...g.m3]).toEqual([0.03 / 0.2, 0.03 / 0.2]);
  });
});

/**
 * ONNX Runtime's QuantizeLinear written out as a brute-force loop: x and scale as float32, the
 * division in float32 (Math.fround of the quotient of two float32 values is the IEEE float32
 * quotient: float64 has more than 2 * 24 + 2 bits), round half to even by floor and comparison,
 * zero point added, saturated.
 */
function onnxQuantizeLinear(x: number, scale: number, zeroPoint: number, lo: number, hi: number): number {
  const d = Math.fround(Math.fround(x) / Math.fround(scale));
  const fl = Math.floor(d);
  const frac = d - fl;
  const r = frac < 0.5 ? fl : frac > 0.5 ? fl + 1 : fl % 2 === 0 ? fl : fl + 1;
  return Math.min(hi, Math.max(lo, r + zeroPoint));
}

describe('quantize equals ONNX QuantizeLinear', () => {
  test('element for element on tie-heavy inputs (x = (k + 1/2) s in float32), per tensor and per channel', () => {
    const rng = new Rng(17);
    const u = rng.uniform(6000);
    const scales = [0.1, 0.0236220472, 3 / 255, 0.007843137718737125, 1 / 3, 0.05];
    let float64Differs = 0;
    for (const [si, s] of scales.entries()) {
      const zero = si % 2 === 0 ? 0 : 128;
      const signed = zero === 0;
      const xs = Array.from({ length: 1000 }, (_, i) => {
        const k = Math.floor(u[si * 1000 + i] * 300) - 150;
        return Math.fround((k + 0.5) * Math.fround(s));
      });
      const p = { scale: s, zeroPoint: zero, bits: 8, signed };
      const [lo, hi] = signed ? [-128, 127] : [0, 255];
      const q = quantize(xs, p);
      xs.forEach((x, i) => {
        expect(q[i]).toBe(onnxQuantizeLinear(x, s, zero, lo, hi));
        const f64 = Math.min(hi, Math.max(lo, roundHalfEven(x / s) + zero));
        if (f64 !== q[i]) float64Differs++;
      });
    }
    // the inputs reach the ties where dividing in float64 would give the other integer
    expect(float64Differs).toBeGreaterThan(100);
    // per channel: channel c of [2, 3] uses scale c
    const pc = quantize(
      [0.05, 0.15, 0.25, 0.35, 0.45, 0.55],
      { scale: [0.1, 0.1], zeroPoint: [0, 0], bits: 8, signed: true, axis: 0 },
      { shape: [2, 3] },
    );
    expect(Array.from(pc)).toEqual(
      [0.05, 0.15, 0.25, 0.35, 0.45, 0.55].map((x) => onnxQuantizeLinear(x, 0.1, 0, -128, 127)),
    );
  });

  test('values beyond float32 saturate as in ONNX; infinite and NaN input are still errors', () => {
    const p = { scale: 0.1, zeroPoint: 0, bits: 8, signed: true };
    expect(Array.from(quantize([3.5e38, -1e300, 1e-300], p))).toEqual([127, -128, 0]);
    expect(() => quantize([Number.POSITIVE_INFINITY], p)).toThrow(QbnnError);
  });
});
