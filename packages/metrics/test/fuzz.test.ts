// Property-based fuzzing of every public entry point of @qbnn/metrics (issue 17): whatever the
// arguments, each call returns a result holding no NaN (except the NaNs the API documents as
// "not applicable") or throws a MetricsError with a known code whose message names the function.
// Never an untyped error, a hang or an allocation not backed by the input.
// QBNN_FUZZ_RUNS and QBNN_FUZZ_SEED (scripts/fuzz.mjs) turn this into a longer campaign.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as M from '../src/index.js';

const RUNS = Number(process.env.QBNN_FUZZ_RUNS ?? 150);
const SEED = Number(process.env.QBNN_FUZZ_SEED ?? 17);
const params = { numRuns: RUNS, seed: SEED };

// ---- hostile values ---------------------------------------------------------------------------

const special = fc.constantFrom(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  1,
  -1,
  0.5,
  1e308,
  -1e308,
  5e-324,
  2 ** 53,
);
const num = fc.oneof(fc.double(), special, fc.double({ min: 0, max: 1, noNaN: true }));
const notArray = fc.constantFrom<unknown>(
  null,
  undefined,
  'abc',
  42,
  {},
  { length: 5 },
  { length: 2 ** 32 },
  () => 1,
);
/** An array of hostile numbers in one of the accepted containers, or something that is not an array. */
const arrayOf = (v: fc.Arbitrary<number>, maxLength = 24) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.array(v, { maxLength }) },
    { weight: 2, arbitrary: fc.array(v, { maxLength }).map((a) => Float64Array.from(a)) },
    { weight: 1, arbitrary: fc.array(v, { maxLength }).map((a) => Float32Array.from(a)) },
    { weight: 1, arbitrary: notArray as fc.Arbitrary<unknown> },
  );
const count = fc.oneof(
  fc.integer({ min: -2, max: 6 }),
  fc.constantFrom<unknown>(
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    2 ** 31,
    2 ** 53,
    1e12,
    1e300,
    '3',
    null,
  ),
);
const label = fc.oneof(fc.integer({ min: -1, max: 5 }), special);
const mask = fc.oneof(
  fc.array(fc.oneof(fc.boolean(), fc.constantFrom<unknown>(0, 1, 2, -1, Number.NaN, 'x')), { maxLength: 24 }),
  notArray,
);
/** Valid probabilities [rows, C] with, sometimes, one entry replaced by a hostile number. */
const probabilities = fc
  .record({
    rows: fc.integer({ min: 1, max: 12 }),
    classes: fc.integer({ min: 1, max: 5 }),
    seed: fc.integer(),
    corrupt: fc.option(fc.tuple(fc.nat(), num), { freq: 3 }),
  })
  .map(({ rows, classes, seed, corrupt }) => {
    let s = seed | 0;
    const p = new Float64Array(rows * classes);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < classes; c++) {
        s = (Math.imul(s, 1103515245) + 12345) | 0;
        p[r * classes + c] = ((s >>> 8) & 0xffff) + 1;
        sum += p[r * classes + c];
      }
      for (let c = 0; c < classes; c++) p[r * classes + c] /= sum;
    }
    if (corrupt) p[corrupt[0] % p.length] = corrupt[1];
    return { p, classes, rows };
  });

// ---- the outcome check --------------------------------------------------------------------------

/** A NaN the API documents as "not applicable" (empty bin, nothing retained, mean input). */
type NaNAllowed = (key: string, parent: Record<string, unknown>) => boolean;
const documented: NaNAllowed = (key, parent) =>
  (parent.count === 0 && ['meanConfidence', 'accuracy', 'gap'].includes(key)) ||
  (parent.retained === 0 && key === 'accuracy') ||
  (parent.reached === false && key === 'accuracy');
const meanInput: NaNAllowed = (key, parent) =>
  documented(key, parent) ||
  ['expectedAleatoricEntropy', 'mutualInformation', 'aleatoricEntropy'].includes(key);

function firstNaN(v: unknown, allowed: NaNAllowed, path = 'result', depth = 0): string | null {
  if (typeof v === 'number') return Number.isNaN(v) ? path : null;
  if (v === null || typeof v !== 'object' || depth > 6) return null;
  if (ArrayBuffer.isView(v)) {
    const a = v as unknown as ArrayLike<number>;
    for (let i = 0; i < a.length; i++) if (Number.isNaN(a[i])) return `${path}[${i}]`;
    return null;
  }
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'number' && Number.isNaN(x) && allowed(k, v as Record<string, unknown>)) continue;
    if (ArrayBuffer.isView(x) && allowed(k, v as Record<string, unknown>)) continue;
    const found = firstNaN(x, allowed, `${path}.${k}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/** Runs `call`: a result must hold no undocumented NaN; an error must be a MetricsError naming `fn`. */
function outcome(fn: string, call: () => unknown, allowed: NaNAllowed = documented): void {
  let result: unknown;
  try {
    result = call();
  } catch (e) {
    if (!(e instanceof M.MetricsError)) throw new Error(`${fn}: untyped error ${String(e)}`);
    expect(['ERR_ARG', 'ERR_SHAPE', 'ERR_NAN']).toContain(e.code);
    expect(e.message.startsWith(fn)).toBe(true);
    return;
  }
  const nan = firstNaN(result, allowed);
  if (nan) throw new Error(`${fn}: NaN escaped at ${nan}`);
}

const shapeArb = fc.record(
  { samples: fc.option(count, { nil: undefined }), n: count, classes: count },
  { requiredKeys: ['n', 'classes'] },
);

// ---- properties ---------------------------------------------------------------------------------

describe('fuzz: @qbnn/metrics entry points give a clean result or a MetricsError', () => {
  it('numeric helpers', () => {
    fc.assert(
      fc.property(num, arrayOf(num), count, (x, arr, bins) => {
        outcome('entropy', () => M.entropy(arr as number[]));
        outcome('safeLog', () => M.safeLog(x));
        outcome('erfc', () => M.erfc(x));
        outcome('normalCdf', () => M.normalCdf(x));
        outcome('normalQuantile', () => M.normalQuantile(x));
        outcome('calibrationBinIndex', () => M.calibrationBinIndex(x, bins as number));
      }),
      params,
    );
  });

  it('classification', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          probabilities,
          arrayOf(num).map((p) => ({ p, classes: 3, rows: 4 })),
        ),
        fc.option(count, { nil: undefined }),
        fc.array(label, { maxLength: 14 }),
        shapeArb,
        fc.record({
          bins: fc.option(count, { nil: undefined }),
          tolerance: fc.option(num, { nil: undefined }),
        }),
        fc.boolean(),
        (probs, samples, labels, shape, opts, consistent) => {
          // Half the cases use a shape that matches the array, so the paths past validation run.
          const rows = probs.rows;
          const s =
            (samples as number) > 0 && rows % (samples as number) === 0 ? (samples as number) : undefined;
          const sh = consistent ? { samples: s, n: s ? rows / s : rows, classes: probs.classes } : shape;
          const ys = consistent ? labels.slice(0, sh.n as number) : labels;
          const allowed = sh.samples === undefined ? meanInput : documented;
          const p = probs.p as number[];
          const o = opts as M.ClassificationOptions;
          outcome(
            'classificationMetrics',
            () => M.classificationMetrics(p, ys, sh as M.ClassificationShape, o),
            allowed,
          );
          outcome('uncertaintyScores', () => M.uncertaintyScores(p, sh as M.ClassificationShape, o), allowed);
          outcome('averagePredictiveEntropy', () =>
            M.averagePredictiveEntropy(p, sh as M.ClassificationShape, o),
          );
          outcome(
            'ClassificationAccumulator',
            () => {
              const acc = new M.ClassificationAccumulator({
                ...o,
                classes: sh.classes as number,
                samples: sh.samples as number,
              });
              acc.update(p, ys);
              return acc.result();
            },
            allowed,
          );
          const conf = Array.from(ys, (y) => (typeof y === 'number' ? y / 5 : y));
          outcome('calibration', () =>
            M.calibration(
              conf,
              ys.map((y) => y === 1),
              o,
            ),
          );
        },
      ),
      params,
    );
  });

  it('ranking and referral', () => {
    fc.assert(
      fc.property(
        arrayOf(num),
        mask,
        arrayOf(num),
        num,
        fc.record({
          maxFraction: fc.option(num, { nil: undefined }),
          step: fc.option(num, { nil: undefined }),
        }),
        fc.option(arrayOf(num, 6), { nil: undefined }),
        (scores, positive, other, level, grid, fractions) => {
          const sc = scores as number[];
          const pos = positive as boolean[];
          outcome('auroc', () => M.auroc(sc, pos));
          outcome('averagePrecision', () => M.averagePrecision(sc, pos));
          outcome('fprAtTpr', () => M.fprAtTpr(sc, pos, level));
          outcome('rocCurve', () => M.rocCurve(sc, pos));
          outcome('oodMetrics', () => M.oodMetrics(sc, other as number[], { tpr: level }));
          outcome('OodAccumulator', () => new M.OodAccumulator().update(sc, pos).result({ tpr: level }));
          const opts = fractions === undefined ? grid : { fractions: fractions as number[] };
          outcome('referralCurve', () => M.referralCurve(pos, sc, opts as M.ReferralOptions));
          outcome('referralRateForAccuracy', () => M.referralRateForAccuracy(pos, sc, level));
        },
      ),
      params,
    );
  });

  it('regression', () => {
    fc.assert(
      fc.property(
        arrayOf(num),
        arrayOf(num),
        arrayOf(num),
        fc.record({ samples: fc.option(count, { nil: undefined }), n: count }, { requiredKeys: ['n'] }),
        fc.option(arrayOf(num, 5), { nil: undefined }),
        fc.boolean(),
        (means, variances, targets, shape, levels, consistent) => {
          const t = targets as number[];
          const fit =
            consistent &&
            Array.isArray(t) &&
            t.length > 0 &&
            Array.isArray(means) &&
            Array.isArray(variances);
          const sh = fit ? { n: t.length } : shape;
          // A consistent case takes its means and variances from the generated arrays, cycled.
          const cycle = (a: unknown) =>
            fit ? Array.from(t, (_, i) => (a as number[])[i % (a as number[]).length] ?? 1e308) : a;
          const m = cycle(means) as number[];
          const v = cycle(variances) as number[];
          const o = { levels: levels as number[] };
          outcome('regressionMetrics', () => M.regressionMetrics(m, v, t, sh as M.RegressionShape, o));
          outcome('predictiveMoments', () => M.predictiveMoments(m, v, sh as M.RegressionShape));
          outcome('rmse', () => M.rmse(m, t, sh as M.RegressionShape));
          outcome('mae', () => M.mae(m, t, sh as M.RegressionShape));
          outcome('RegressionAccumulator', () =>
            new M.RegressionAccumulator({ ...o, samples: sh.samples as number }).update(m, v, t).result(),
          );
        },
      ),
      params,
    );
  });
});
