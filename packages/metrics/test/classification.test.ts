import { describe, expect, test } from 'vitest';
import {
  accuracy,
  averagePredictiveEntropy,
  brierScore,
  ClassificationAccumulator,
  calibration,
  calibrationBinIndex,
  classificationMetrics,
  errorRate,
  expectedAleatoricEntropy,
  expectedCalibrationError,
  maximumCalibrationError,
  mutualInformation,
  negativeLogLikelihood,
  predictiveMean,
  reliabilityDiagram,
  uncertaintyScores,
} from '../src/index.js';
import { expectError, randomClassification, randomCuts, sliceExamples } from './helpers.js';

const ln = Math.log;
const H = (p: number[]) => -p.reduce((s, v) => s + (v > 0 ? v * ln(v) : 0), 0);

/** Brute-force reference straight from the definitions, on nested arrays. */
function reference(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  L: number,
  N: number,
  C: number,
  B = 10,
) {
  const p = (l: number, i: number) => Array.from({ length: C }, (_, c) => probs[(l * N + i) * C + c]);
  const rows: { conf: number; correct: number; nll: number; brier: number; ent: number; ale: number }[] = [];
  for (let i = 0; i < N; i++) {
    const samples = Array.from({ length: L }, (_, l) => p(l, i));
    const mean = Array.from({ length: C }, (_, c) => samples.reduce((s, q) => s + q[c], 0) / L);
    const conf = Math.max(...mean);
    const pred = mean.indexOf(conf);
    const y = labels[i];
    rows.push({
      conf,
      correct: pred === y ? 1 : 0,
      nll: -ln(Math.max(mean[y], 1e-12)),
      brier: mean.reduce((s, v, c) => s + (v - (c === y ? 1 : 0)) ** 2, 0),
      ent: H(mean),
      ale: samples.reduce((s, q) => s + H(q), 0) / L,
    });
  }
  const avg = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0) / N;
  let ece = 0;
  let mce = 0;
  const bins: { count: number; meanConfidence?: number; accuracy?: number }[] = [];
  for (let b = 0; b < B; b++) {
    const lo = b / B;
    const hi = (b + 1) / B;
    const inBin = rows.filter((r) => (r.conf > lo || (b === 0 && r.conf >= 0)) && r.conf <= hi);
    if (inBin.length === 0) {
      bins.push({ count: 0 });
      continue;
    }
    const mc = inBin.reduce((s, r) => s + r.conf, 0) / inBin.length;
    const acc = inBin.reduce((s, r) => s + r.correct, 0) / inBin.length;
    ece += (inBin.length / N) * Math.abs(acc - mc);
    mce = Math.max(mce, Math.abs(acc - mc));
    bins.push({ count: inBin.length, meanConfidence: mc, accuracy: acc });
  }
  return {
    accuracy: avg((r) => r.correct),
    nll: avg((r) => r.nll),
    brier: avg((r) => r.brier),
    ape: avg((r) => r.ent),
    ale: avg((r) => r.ale),
    mi: avg((r) => r.ent - r.ale),
    ece,
    mce,
    bins,
  };
}

describe('classificationMetrics', () => {
  test('a hand-computed 2x2x2 example', () => {
    // sample 0: x0 [0.8, 0.2], x1 [0.4, 0.6]; sample 1: x0 [0.6, 0.4], x1 [0.2, 0.8]; labels 0, 0
    const probs = new Float64Array([0.8, 0.2, 0.4, 0.6, 0.6, 0.4, 0.2, 0.8]);
    const m = classificationMetrics(probs, new Int32Array([0, 0]), { samples: 2, n: 2, classes: 2 });
    // predictive means: x0 [0.7, 0.3] (right), x1 [0.3, 0.7] (wrong)
    expect(m.accuracy).toBe(0.5);
    expect(m.error).toBe(0.5);
    expect(m.nll).toBeCloseTo((-ln(0.7) - ln(0.3)) / 2, 14);
    expect(m.brier).toBeCloseTo((0.09 + 0.09 + 0.49 + 0.49) / 2, 14);
    const hMean = -(0.7 * ln(0.7) + 0.3 * ln(0.3));
    const hAle = (-(0.8 * ln(0.8) + 0.2 * ln(0.2)) - (0.6 * ln(0.6) + 0.4 * ln(0.4))) / 2;
    expect(m.averagePredictiveEntropy).toBeCloseTo(hMean, 14);
    expect(m.expectedAleatoricEntropy).toBeCloseTo(hAle, 14);
    expect(m.mutualInformation).toBeCloseTo(hMean - hAle, 14);
    expect(m.mutualInformation).toBeCloseTo(0.0241572567811713, 12);
    // both confidences 0.7 -> bin 6 = (0.6, 0.7]; accuracy 0.5 there
    expect(m.ece).toBeCloseTo(0.2, 14);
    expect(m.mce).toBeCloseTo(0.2, 14);
    expect(m.bins[6]).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(m.bins[6].meanConfidence).toBeCloseTo(0.7, 14);
    expect(m.bins[6].lower).toBeCloseTo(0.6, 15);
    expect(m.bins[6].upper).toBeCloseTo(0.7, 15);
    expect(m.bins.filter((b) => b.count === 0)).toHaveLength(9);
    expect(Number.isNaN(m.bins[0].accuracy)).toBe(true);
    expect(Array.from(m.perExample.prediction)).toEqual([0, 1]);
    expect(Array.from(m.perExample.correct)).toEqual([1, 0]);
    expect(m.perExample.oneMinusMaxProb[0]).toBeCloseTo(0.3, 15);
  });

  test('matches the brute-force reference on random data (several shapes and bin counts)', () => {
    for (const [seed, L, N, C, B] of [
      [1, 5, 200, 10, 10],
      [2, 1, 50, 3, 10],
      [3, 30, 17, 2, 7],
      [4, 3, 300, 7, 15],
    ]) {
      const { probs, labels } = randomClassification(seed, L, N, C);
      const m = classificationMetrics(probs, labels, { samples: L, n: N, classes: C }, { bins: B });
      const r = reference(probs, labels, L, N, C, B);
      expect(m.accuracy).toBeCloseTo(r.accuracy, 14);
      expect(m.error).toBeCloseTo(1 - r.accuracy, 14);
      expect(m.nll).toBeCloseTo(r.nll, 12);
      expect(m.brier).toBeCloseTo(r.brier, 12);
      expect(m.averagePredictiveEntropy).toBeCloseTo(r.ape, 12);
      expect(m.expectedAleatoricEntropy).toBeCloseTo(r.ale, 12);
      expect(m.mutualInformation).toBeCloseTo(r.mi, 12);
      expect(m.ece).toBeCloseTo(r.ece, 12);
      expect(m.mce).toBeCloseTo(r.mce, 12);
      expect(m.bins).toHaveLength(B);
      m.bins.forEach((b, k) => {
        expect(b.count).toBe(r.bins[k].count);
        if (b.count > 0) {
          expect(b.meanConfidence).toBeCloseTo(r.bins[k].meanConfidence as number, 12);
          expect(b.accuracy).toBeCloseTo(r.bins[k].accuracy as number, 12);
          expect(b.gap).toBeCloseTo(
            (r.bins[k].accuracy as number) - (r.bins[k].meanConfidence as number),
            12,
          );
        }
      });
      if (L > 1) expect(m.mutualInformation).toBeGreaterThan(0);
    }
  });

  test('the individual functions agree with the combined call', () => {
    const L = 4;
    const N = 60;
    const C = 5;
    const { probs, labels } = randomClassification(9, L, N, C);
    const shape = { samples: L, n: N, classes: C };
    const m = classificationMetrics(probs, labels, shape);
    expect(accuracy(probs, labels, shape)).toBe(m.accuracy);
    expect(errorRate(probs, labels, shape)).toBe(m.error);
    expect(negativeLogLikelihood(probs, labels, shape)).toBe(m.nll);
    expect(brierScore(probs, labels, shape)).toBe(m.brier);
    expect(expectedCalibrationError(probs, labels, shape)).toBe(m.ece);
    expect(maximumCalibrationError(probs, labels, shape)).toBe(m.mce);
    expect(reliabilityDiagram(probs, labels, shape)).toEqual(m.bins);
    expect(averagePredictiveEntropy(probs, shape)).toBe(m.averagePredictiveEntropy);
    expect(expectedAleatoricEntropy(probs, shape)).toBe(m.expectedAleatoricEntropy);
    expect(mutualInformation(probs, shape)).toBe(m.mutualInformation);
    const u = uncertaintyScores(probs, shape);
    expect(u.entropy).toEqual(m.perExample.entropy);
    expect(u.mutualInformation).toEqual(m.perExample.mutualInformation);
    expect(u.aleatoricEntropy).toEqual(m.perExample.aleatoricEntropy);
    expect(u.oneMinusMaxProb).toEqual(m.perExample.oneMinusMaxProb);
    expect(u.prediction).toEqual(m.perExample.prediction);
    const mean = predictiveMean(probs, shape);
    for (let i = 0; i < N; i++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let l = 0; l < L; l++) s += probs[(l * N + i) * C + c];
        expect(mean[i * C + c]).toBeCloseTo(s / L, 15);
      }
    }
    const cal = calibration(m.perExample.confidence, m.perExample.correct);
    expect(cal.ece).toBe(m.ece);
    expect(cal.bins).toEqual(m.bins);
  });

  test('a predictive-mean input gives the same figures, with NaN for the sample-based ones', () => {
    const L = 6;
    const N = 40;
    const C = 4;
    const { probs, labels } = randomClassification(11, L, N, C);
    const full = classificationMetrics(probs, labels, { samples: L, n: N, classes: C });
    const mean = predictiveMean(probs, { samples: L, n: N, classes: C });
    const m = classificationMetrics(mean, labels, { n: N, classes: C });
    expect(m.samples).toBeNull();
    expect(m.accuracy).toBe(full.accuracy);
    expect(m.nll).toBeCloseTo(full.nll, 14);
    expect(m.brier).toBeCloseTo(full.brier, 14);
    expect(m.averagePredictiveEntropy).toBeCloseTo(full.averagePredictiveEntropy, 14);
    expect(m.ece).toBeCloseTo(full.ece, 14);
    expect(m.expectedAleatoricEntropy).toBeNaN();
    expect(m.mutualInformation).toBeNaN();
    // samples: 1 explicitly = one deterministic network: MI is exactly 0
    const one = classificationMetrics(mean, labels, { samples: 1, n: N, classes: C });
    expect(one.mutualInformation).toBe(0);
    expect(one.expectedAleatoricEntropy).toBe(one.averagePredictiveEntropy);
  });

  test('edge cases: one class, perfect, worst, all ties, single sample', () => {
    // one class: every probability is 1
    const one = classificationMetrics(new Float64Array([1, 1, 1, 1, 1, 1]), [0, 0, 0], {
      samples: 2,
      n: 3,
      classes: 1,
    });
    expect(one).toMatchObject({ accuracy: 1, error: 0, nll: 0, brier: 0, ece: 0, mce: 0 });
    expect(one.averagePredictiveEntropy).toBe(0);
    expect(one.mutualInformation).toBe(0);
    expect(one.bins[9].count).toBe(3);

    // perfect: one-hot on the label
    const labels = [2, 0, 1, 1];
    const perfect = new Float64Array(12);
    labels.forEach((y, i) => {
      perfect[i * 3 + y] = 1;
    });
    const p = classificationMetrics(perfect, labels, { n: 4, classes: 3 });
    expect(p).toMatchObject({
      accuracy: 1,
      error: 0,
      nll: 0,
      brier: 0,
      ece: 0,
      mce: 0,
      averagePredictiveEntropy: 0,
    });

    // worst: one-hot on a wrong class; NLL = -log(1e-12), the documented guard
    const worst = new Float64Array(12);
    labels.forEach((y, i) => {
      worst[i * 3 + ((y + 1) % 3)] = 1;
    });
    const w = classificationMetrics(worst, labels, { n: 4, classes: 3 });
    expect(w).toMatchObject({ accuracy: 0, error: 1, brier: 2, ece: 1, mce: 1 });
    expect(w.nll).toBeCloseTo(-Math.log(1e-12), 12);
    expect(w.nll).toBeCloseTo(27.631021115928547, 12);

    // all ties: uniform rows; argmax takes the lowest class index
    const C = 4;
    const uniform = new Float64Array(3 * 5 * C).fill(1 / C);
    const u = classificationMetrics(uniform, [0, 1, 2, 3, 0], { samples: 3, n: 5, classes: C });
    expect(Array.from(u.perExample.prediction)).toEqual([0, 0, 0, 0, 0]);
    expect(u.accuracy).toBeCloseTo(2 / 5, 15);
    expect(u.averagePredictiveEntropy).toBeCloseTo(Math.log(C), 14);
    expect(u.expectedAleatoricEntropy).toBeCloseTo(Math.log(C), 14);
    expect(u.mutualInformation).toBeCloseTo(0, 14);
    expect(u.nll).toBeCloseTo(Math.log(C), 14);
    expect(u.brier).toBeCloseTo(0.75 ** 2 + 3 * 0.25 ** 2, 14);
    expect(u.bins[2].count).toBe(5); // confidence 0.25 -> (0.2, 0.3]
    expect(u.ece).toBeCloseTo(Math.abs(0.4 - 0.25), 14);

    // single example, samples disagreeing completely: maximal MI = log 2
    const s = classificationMetrics(new Float64Array([1, 0, 0, 1]), [1], { samples: 2, n: 1, classes: 2 });
    expect(s.averagePredictiveEntropy).toBeCloseTo(Math.LN2, 15);
    expect(s.expectedAleatoricEntropy).toBe(0);
    expect(s.mutualInformation).toBeCloseTo(Math.LN2, 15);
    expect(s.accuracy).toBe(0); // tie 0.5/0.5 -> class 0
  });

  test('float32 input is accumulated in float64', () => {
    const { probs, labels } = randomClassification(5, 3, 30, 4);
    const f32 = Float32Array.from(probs);
    const m = classificationMetrics(f32, labels, { samples: 3, n: 30, classes: 4 });
    const r = reference(f32, labels, 3, 30, 4);
    expect(m.nll).toBeCloseTo(r.nll, 12);
    expect(m.mutualInformation).toBeCloseTo(r.mi, 12);
  });
});

describe('calibration bins', () => {
  test('edge convention: bin b holds (b/B, (b+1)/B], bin 0 also holds 0', () => {
    expect(calibrationBinIndex(0, 10)).toBe(0);
    expect(calibrationBinIndex(0.1, 10)).toBe(0);
    expect(calibrationBinIndex(0.3, 10)).toBe(2);
    expect(calibrationBinIndex(0.30000001, 10)).toBe(3);
    expect(calibrationBinIndex(0.7, 10)).toBe(6);
    expect(calibrationBinIndex(1, 10)).toBe(9);
    expect(calibrationBinIndex(0.5, 1)).toBe(0);
    for (let B = 1; B <= 40; B++) {
      for (let b = 1; b <= B; b++) {
        const edge = b / B;
        expect(calibrationBinIndex(edge, B)).toBe(b - 1);
        if (b < B) expect(calibrationBinIndex(edge + 1e-12, B)).toBe(b);
      }
    }
  });

  test('calibration() from arrays, by hand', () => {
    // confidences 0.95 (right), 0.95 (wrong), 0.55 (right), 0.05 (right) in 10 bins
    const c = calibration([0.95, 0.95, 0.55, 0.05], [true, false, 1, 1]);
    // bin 9: acc 0.5 vs 0.95 -> 0.45 * 2/4; bin 5: acc 1 vs 0.55 -> 0.45 * 1/4; bin 0: 0.95 * 1/4
    expect(c.ece).toBeCloseTo(0.45 * 0.5 + 0.45 * 0.25 + 0.95 * 0.25, 14);
    expect(c.mce).toBeCloseTo(0.95, 14);
    expect(c.bins.map((b) => b.count)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
    const five = calibration([0.95, 0.95, 0.55, 0.05], [true, false, 1, 1], { bins: 2 });
    expect(five.bins.map((b) => b.count)).toEqual([1, 3]);
  });
});

describe('ClassificationAccumulator', () => {
  test('batch-by-batch equals the whole-array call exactly, whatever the split', () => {
    const L = 7;
    const N = 257;
    const C = 6;
    const { probs, labels } = randomClassification(21, L, N, C);
    const whole = classificationMetrics(probs, labels, { samples: L, n: N, classes: C }, { bins: 12 });
    for (const [seed, parts] of [
      [1, 2],
      [2, 5],
      [3, 40],
      [4, 257],
    ]) {
      const cuts = randomCuts(seed, N, parts);
      const acc = new ClassificationAccumulator({ classes: C, samples: L, bins: 12 });
      for (let k = 0; k + 1 < cuts.length; k++) {
        const [a, b] = [cuts[k], cuts[k + 1]];
        acc.update(sliceExamples(probs, L, N, C, a, b), labels.subarray(a, b));
      }
      expect(acc.count).toBe(N);
      const r = acc.result();
      expect(r).toEqual(whole);
      expect(Math.abs(r.nll - whole.nll)).toBeLessThanOrEqual(1e-12);
      expect(Math.abs(r.ece - whole.ece)).toBeLessThanOrEqual(1e-12);
    }
  });

  test('works for predictive-mean batches; a rejected batch changes nothing; empty result is an error', () => {
    const { probs, labels } = randomClassification(3, 1, 20, 3);
    const acc = new ClassificationAccumulator({ classes: 3 });
    expectError(() => acc.result(), 'ERR_ARG', /no examples added yet/);
    acc.update(probs.subarray(0, 30), labels.subarray(0, 10));
    const bad = probs.slice(30, 60);
    bad[5] = Number.NaN;
    expectError(() => acc.update(bad, labels.subarray(10, 20)), 'ERR_NAN', /probs\[5\] is NaN/);
    expect(acc.count).toBe(10);
    acc.update(probs.subarray(30, 60), labels.subarray(10, 20));
    expect(acc.result()).toEqual(classificationMetrics(probs, labels, { n: 20, classes: 3 }));
  });
});

describe('validation', () => {
  const probs = new Float64Array([0.8, 0.2, 0.4, 0.6, 0.6, 0.4, 0.2, 0.8]);
  const shape = { samples: 2, n: 2, classes: 2 };
  test('length mismatches name the argument and the expected size', () => {
    expectError(
      () => classificationMetrics(probs.subarray(0, 6), [0, 1], shape),
      'ERR_SHAPE',
      /classificationMetrics: probs has length 6, expected samples\*n\*classes \(2\*2\*2\) = 8/,
    );
    expectError(
      () => classificationMetrics(probs, [0, 1, 1], shape),
      'ERR_SHAPE',
      /labels has length 3, expected shape.n = 2/,
    );
    expectError(
      () => uncertaintyScores(probs, { n: 2, classes: 2 }),
      'ERR_SHAPE',
      /expected n\*classes \(2\*2\) = 4/,
    );
  });
  test('NaN, infinity, out-of-range probabilities and bad row sums', () => {
    const nan = probs.slice();
    nan[3] = Number.NaN;
    expectError(
      () => classificationMetrics(nan, [0, 1], shape),
      'ERR_NAN',
      /probs\[3\] is NaN, expected a finite probability/,
    );
    const inf = probs.slice();
    inf[0] = Number.POSITIVE_INFINITY;
    expectError(() => classificationMetrics(inf, [0, 1], shape), 'ERR_NAN', /probs\[0\] is Infinity/);
    const neg = probs.slice();
    neg[0] = -0.1;
    neg[1] = 1.1;
    expectError(
      () => classificationMetrics(neg, [0, 1], shape),
      'ERR_ARG',
      /probs\[0\] is -0.1, expected a probability in \[0, 1\]/,
    );
    const off = probs.slice();
    off[2] = 0.41;
    expectError(
      () => classificationMetrics(off, [0, 1], shape),
      'ERR_ARG',
      /row 1 of probs \(elements 2..3\) sums to 1.01, expected 1 within tolerance 0.001/,
    );
    // the tolerance is configurable
    expect(classificationMetrics(off, [0, 1], shape, { tolerance: 0.02 }).n).toBe(2);
    expectError(
      () => classificationMetrics(probs, [0, 1], shape, { tolerance: -1 }),
      'ERR_ARG',
      /opts.tolerance must be/,
    );
  });
  test('labels out of range or not integers; bad shapes and bins', () => {
    expectError(
      () => classificationMetrics(probs, [0, 2], shape),
      'ERR_ARG',
      /labels\[1\] is 2, expected an integer class index in \[0, 1\]/,
    );
    expectError(() => classificationMetrics(probs, [-1, 0], shape), 'ERR_ARG', /labels\[0\] is -1/);
    expectError(() => classificationMetrics(probs, [0.5, 0], shape), 'ERR_ARG', /labels\[0\] is 0.5/);
    expectError(
      () => classificationMetrics(probs, [0, 1], { samples: 0, n: 2, classes: 2 }),
      'ERR_ARG',
      /shape.samples must be a positive integer, got 0/,
    );
    expectError(
      () => classificationMetrics(probs, [0, 1], { samples: 2, n: 2.5, classes: 2 }),
      'ERR_ARG',
      /shape.n must be a positive integer/,
    );
    expectError(
      () => classificationMetrics(probs, [0, 1], shape, { bins: 0 }),
      'ERR_ARG',
      /opts.bins must be a positive integer/,
    );
    expectError(
      () => calibration([0.5, 1.5], [1, 0]),
      'ERR_ARG',
      /confidence\[1\] is 1.5, expected a value in \[0, 1\]/,
    );
    expectError(() => calibration([0.5], [1, 0]), 'ERR_SHAPE', /correct has length 2/);
    expectError(() => calibration([0.5], [2]), 'ERR_ARG', /correct\[0\] is 2, expected a boolean or 0\/1/);
  });
});
