// Property-based fuzzing (issue 17) of core's quantisation entry points: any arguments give a
// result (finite, integers in range where integers are promised) or a typed QbnnError; never an
// untyped error, a NaN, or an allocation that the input does not back.
// QBNN_FUZZ_RUNS / QBNN_FUZZ_SEED lengthen the campaign (scripts/fuzz.mjs).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  accumulatorScales,
  channelMinMax,
  checkQuantParams,
  computePerChannelQuantParams,
  computeQuantParams,
  dequantize,
  fakeQuantize,
  gaussianSampleMultipliers,
  minMax,
  QbnnError,
  qRange,
  quantize,
  requantMultipliers,
  roundHalfEven,
} from '../src/index.js';

const params = {
  numRuns: Number(process.env.QBNN_FUZZ_RUNS ?? 200),
  seed: Number(process.env.QBNN_FUZZ_SEED ?? 17),
};

const special = fc.constantFrom(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  1e308,
  -1e308,
  5e-324,
  2 ** 31,
  2 ** 53,
);
const num = fc.oneof(
  fc.double({ min: -300, max: 300, noNaN: true }),
  fc.integer({ min: -130, max: 260 }),
  special,
);
const junk = fc.constantFrom<unknown>(null, undefined, 'abc', {}, { length: 2 ** 31 }, [Number.NaN], true);
const arr = fc.oneof(
  { weight: 4, arbitrary: fc.array(num, { maxLength: 12 }) },
  { weight: 2, arbitrary: fc.array(num, { maxLength: 12 }).map((a) => Float64Array.from(a)) },
  {
    weight: 1,
    arbitrary: fc.array(fc.integer({ min: -128, max: 127 }), { maxLength: 12 }).map((a) => Int8Array.from(a)),
  },
  { weight: 1, arbitrary: junk },
);
const small = fc.oneof(fc.integer({ min: -1, max: 9 }), special, junk);
const shape = fc.oneof(fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }), junk);
const spec = fc.oneof(
  fc.record(
    { bits: small, signed: fc.oneof(fc.boolean(), junk), symmetric: fc.oneof(fc.boolean(), junk) },
    { requiredKeys: ['bits'] },
  ),
  junk,
);
const qparams = fc.oneof(
  fc.record({
    scale: fc.oneof(num, arr),
    zeroPoint: fc.oneof(num, arr),
    bits: small,
    signed: fc.oneof(fc.boolean(), junk),
    axis: small,
  }),
  junk,
);
/** Valid parameters from a valid range, so the paths past validation run too. */
const validParams = fc
  .record({
    bits: fc.integer({ min: 2, max: 8 }),
    lo: fc.double({ min: -50, max: 0, noNaN: true }),
    hi: fc.double({ min: 0, max: 50, noNaN: true }),
    symmetric: fc.boolean(),
  })
  .map(({ bits, lo, hi, symmetric }) => computeQuantParams({ bits, min: lo, max: hi, symmetric }));

function typed(call: () => unknown): unknown {
  try {
    return call();
  } catch (e) {
    if (!(e instanceof QbnnError)) throw new Error(`untyped error: ${String(e)}`);
    expect(['ERR_ARG', 'ERR_SHAPE', 'ERR_NAN']).toContain(e.code);
    return undefined;
  }
}

function noNaN(v: unknown): void {
  if (typeof v === 'number') expect(Number.isNaN(v)).toBe(false);
  else if (ArrayBuffer.isView(v))
    for (const x of v as unknown as number[]) expect(Number.isNaN(x)).toBe(false);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) noNaN(x);
}

describe('fuzz: core quantisation entry points', () => {
  it('parameters from ranges, ranges from values', () => {
    fc.assert(
      fc.property(spec, num, num, arr, arr, shape, small, (s, lo, hi, a, b, sh, axis) => {
        const p = typed(() => computeQuantParams({ ...(s as object), min: lo, max: hi } as never)) as
          | { scale: number; zeroPoint: number; bits: number; signed: boolean }
          | undefined;
        if (p) {
          expect(p.scale > 0 && Number.isFinite(p.scale)).toBe(true);
          const { qmin, qmax } = qRange(p.bits, p.signed);
          expect(Number.isInteger(p.zeroPoint) && p.zeroPoint >= qmin && p.zeroPoint <= qmax).toBe(true);
        }
        noNaN(typed(() => computePerChannelQuantParams({ ...(s as object), min: a, max: b, axis } as never)));
        noNaN(typed(() => minMax(a as never)));
        noNaN(typed(() => channelMinMax(a as never, sh as never, axis as never)));
        typed(() => qRange(axis as never, true));
        typed(() =>
          checkQuantParams('p', { scale: lo, zeroPoint: hi, bits: axis, signed: true } as never, 1),
        );
        // roundHalfEven is the unchecked rounding primitive (NaN passes through, as Math.round).
        if (Number.isFinite(lo)) expect(Number.isInteger(roundHalfEven(lo))).toBe(true);
      }),
      params,
    );
  });

  it('quantize, dequantize and fakeQuantize', () => {
    fc.assert(
      fc.property(
        fc.oneof(validParams, qparams),
        arr,
        fc.oneof(fc.constant(undefined), shape),
        (p, values, sh) => {
          const opts = sh === undefined ? {} : { shape: sh as number[] };
          const q = typed(() => quantize(values as never, p as never, opts)) as
            | Int8Array
            | Uint8Array
            | undefined;
          if (q) {
            const { qmin, qmax } = qRange(
              (p as { bits: number }).bits,
              (p as { signed: boolean }).signed === true,
            );
            expect(q.length).toBe((values as number[]).length);
            for (const v of q) expect(v >= qmin && v <= qmax).toBe(true);
          }
          noNaN(typed(() => dequantize(values as never, p as never, opts)));
          noNaN(typed(() => fakeQuantize(values as never, p as never, opts)));
        },
      ),
      params,
    );
  });

  it('requantisation and sampler multipliers', () => {
    fc.assert(
      fc.property(num, fc.oneof(num, arr), num, small, fc.oneof(num, arr), (a, w, o, n, x) => {
        noNaN(typed(() => requantMultipliers(a, w as never, o, n as never)));
        noNaN(typed(() => accumulatorScales(a, w as never, n as never)));
        noNaN(
          typed(() =>
            gaussianSampleMultipliers({
              muScale: w,
              sigmaScale: x,
              noiseScale: a,
              weightScale: o,
              n,
            } as never),
          ),
        );
      }),
      params,
    );
  });
});

describe('what the quantisation fuzz found', () => {
  it('an object with a length is not an array (quantize allocated 2 GiB for { length: 2^31 })', () => {
    const p = computeQuantParams({ bits: 8, min: -1, max: 1 });
    const fake = { length: 2 ** 31 } as unknown as number[];
    for (const call of [
      () => quantize(fake, p),
      () => dequantize(fake, p),
      () => fakeQuantize(fake, p),
      () => minMax(fake),
    ]) {
      expect(call).toThrow(
        expect.objectContaining({
          code: 'ERR_ARG',
          message: expect.stringMatching(/must be an array or typed array/),
        }),
      );
    }
  });

  it('a spec that is not an object is an ERR_ARG, not a TypeError', () => {
    expect(() => computeQuantParams(null as never)).toThrow(
      expect.objectContaining({ code: 'ERR_ARG', message: expect.stringMatching(/^spec must be an object/) }),
    );
    expect(() => computePerChannelQuantParams({ bits: 8, min: null, max: [1], axis: 0 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_ARG', message: expect.stringMatching(/^min must be an array/) }),
    );
    expect(() => computeQuantParams({ bits: 8, signed: 'yes', min: 0, max: 1 } as never)).toThrow(
      /spec.signed must be a boolean/,
    );
  });
});
