import { QbnnError } from '@qbnn/core';
import {
  classificationMetrics,
  oodMetrics,
  referralCurve,
  regressionMetrics,
  rocCurve,
  uncertaintyScores,
} from '@qbnn/metrics';
import type { ReportData, SweepPoint } from '../report/types.js';

export type { SweepPoint };

import type { SampledMoments, SampledProbs } from './predict.js';

/** The figures of one model (float, int8 PTQ, int8 QAT...) on the test set and the OOD set. */
export interface ModelResult {
  name: string;
  /** accuracy, error, nll, ece, mce, brier, ape, aleatoric, mi, oodAuroc, oodAurocMi, oodFpr95, ... */
  metrics: Record<string, number>;
  reliability: { confidence: number; accuracy: number; count: number }[];
  /** Predictive entropies (nats) of correct and wrong test predictions and of OOD inputs. */
  entropy: { correct: number[]; wrong: number[]; ood: number[] };
  /** Accuracy on the retained examples after referring the most uncertain fraction. */
  referral: { fraction: number; accuracy: number }[];
  /** OOD ROC (OOD positive, predictive entropy as the score), thinned for plotting. */
  roc: { fpr: number; tpr: number }[];
}

/** Throughput of one implementation. */
export interface ThroughputResult {
  impl: string;
  imagesPerSecond: number;
  samples: number;
  batch: number;
}

/** What `qbnn eval` / `demo` / `sweep` write (`results.json`) and `qbnn report` renders. */
export interface Results {
  format: 'qbnn-results/1';
  title: string;
  createdAt: string;
  config: Record<string, string | number | boolean>;
  notes: string[];
  oodName?: string;
  models: ModelResult[];
  throughput?: ThroughputResult[];
  sweep?: SweepPoint[];
}

const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

function thin<T>(xs: T[], max: number): T[] {
  if (xs.length <= max) return xs;
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(xs[Math.round((i * (xs.length - 1)) / (max - 1))]);
  return out;
}

/**
 * Every figure of one model from its Monte Carlo predictive on the test set (with labels) and on
 * the OOD set: accuracy, NLL, ECE (10 bins), Brier, aPE, mutual information, OOD AUROC from the
 * predictive entropy (and from the mutual information), the referral curve and the ROC.
 */
export function modelResult(
  name: string,
  test: SampledProbs,
  labels: Int32Array,
  ood: SampledProbs | null,
): ModelResult {
  // a label the model has no class for (a --data file of another task) is the data's error,
  // named here before the metrics refuse it with an untyped error and a stack trace
  for (let i = 0; i < labels.length; i++)
    if (labels[i] >= test.classes)
      throw new QbnnError(
        'ERR_FORMAT',
        `the test labels hold class index ${labels[i]} at index ${i}, but model '${name}' has ${test.classes} classes (0 to ${test.classes - 1})`,
      );
  const m = classificationMetrics(test.probs, labels, {
    samples: test.samples,
    n: test.n,
    classes: test.classes,
  });
  const pe = m.perExample;
  const metrics: Record<string, number> = {
    accuracy: m.accuracy,
    error: m.error,
    nll: m.nll,
    ece: m.ece,
    mce: m.mce,
    brier: m.brier,
    ape: m.averagePredictiveEntropy,
    aleatoric: m.expectedAleatoricEntropy,
    mi: m.mutualInformation,
  };
  const correct: number[] = [];
  const wrong: number[] = [];
  for (let i = 0; i < test.n; i++) (pe.correct[i] ? correct : wrong).push(r4(pe.entropy[i]));
  const referral = referralCurve(pe.correct, pe.entropy, { maxFraction: 0.5, step: 0.05 }).map((p) => ({
    fraction: r4(p.fraction),
    accuracy: r4(p.accuracy),
  }));
  metrics.accuracyAt10pctReferral =
    referral.find((p) => Math.abs(p.fraction - 0.1) < 1e-9)?.accuracy ?? Number.NaN;
  let oodEntropy: number[] = [];
  let roc: { fpr: number; tpr: number }[] = [];
  if (ood) {
    const s = uncertaintyScores(ood.probs, { samples: ood.samples, n: ood.n, classes: ood.classes });
    oodEntropy = Array.from(s.entropy, r4);
    const om = oodMetrics(pe.entropy, s.entropy);
    metrics.oodAuroc = om.auroc;
    metrics.oodFpr95 = om.fprAtTpr;
    metrics.oodAurocMi = oodMetrics(pe.mutualInformation, s.mutualInformation).auroc;
    let mi = 0;
    for (const v of s.mutualInformation) mi += v;
    metrics.oodMi = mi / ood.n;
    let ape = 0;
    for (const v of s.entropy) ape += v;
    metrics.oodApe = ape / ood.n;
    const scores = new Float64Array(test.n + ood.n);
    scores.set(pe.entropy, 0);
    scores.set(s.entropy, test.n);
    const positive = new Uint8Array(test.n + ood.n).fill(1, test.n);
    const c = rocCurve(scores, positive);
    roc = thin(
      Array.from(c.fpr, (f, i) => ({ fpr: r4(f), tpr: r4(c.tpr[i]) })),
      200,
    );
  }
  return {
    name,
    metrics,
    reliability: m.bins
      .filter((b) => b.count > 0)
      .map((b) => ({ confidence: r4(b.meanConfidence), accuracy: r4(b.accuracy), count: b.count })),
    entropy: { correct: thin(correct, 1500), wrong, ood: thin(oodEntropy, 1500) },
    referral,
    roc,
  };
}

/**
 * The figures of one regression model from its Monte Carlo moments on the test targets: RMSE,
 * MAE, Gaussian NLL of the predictive mixture's moments, mean total / aleatoric / epistemic
 * variance and the coverage of the central 95% interval (no charts: those are classification's).
 */
export function regressionResult(name: string, mom: SampledMoments, targets: Float32Array): ModelResult {
  const r = regressionMetrics(mom.means, mom.variances, targets, { samples: mom.samples, n: mom.n });
  return {
    name,
    metrics: {
      rmse: r.rmse,
      mae: r.mae,
      gaussianNll: r.nll,
      meanVariance: r.meanVariance,
      aleatoricVariance: r.meanAleatoricVariance,
      epistemicVariance: r.meanEpistemicVariance,
      coverage95: r.coverage.find((c) => Math.abs(c.level - 0.95) < 1e-9)?.coverage ?? Number.NaN,
    },
    reliability: [],
    entropy: { correct: [], wrong: [], ood: [] },
    referral: [],
    roc: [],
  };
}

/** Rows of the metrics table: label and key, in display order. */
export const METRIC_ROWS: [string, string][] = [
  ['accuracy', 'accuracy'],
  ['NLL', 'nll'],
  ['ECE', 'ece'],
  ['Brier', 'brier'],
  ['aPE (nats)', 'ape'],
  ['mutual information', 'mi'],
  ['OOD aPE', 'oodApe'],
  ['OOD mutual information', 'oodMi'],
  ['OOD AUROC (entropy)', 'oodAuroc'],
  ['OOD AUROC (MI)', 'oodAurocMi'],
  ['OOD FPR@95%TPR', 'oodFpr95'],
  ['accuracy at 10% referral', 'accuracyAt10pctReferral'],
  ['RMSE', 'rmse'],
  ['MAE', 'mae'],
  ['Gaussian NLL', 'gaussianNll'],
  ['mean predictive variance', 'meanVariance'],
  ['aleatoric variance', 'aleatoricVariance'],
  ['epistemic variance', 'epistemicVariance'],
  ['95% interval coverage', 'coverage95'],
];

/** Turns results into the report's data. */
export function toReportData(r: Results): ReportData {
  const present = METRIC_ROWS.filter(([, k]) => r.models.some((m) => k in m.metrics));
  const data: ReportData = {
    title: r.title,
    createdAt: r.createdAt,
    config: r.config,
    notes: r.notes,
  };
  if (r.models.length) {
    data.metrics = {
      columns: r.models.map((m) => m.name),
      rows: present.map(([label, k]) => ({
        metric: label,
        values: r.models.map((m) => (Number.isFinite(m.metrics[k]) ? m.metrics[k] : null)),
      })),
    };
    if (r.models.some((m) => m.reliability.length)) {
      data.reliability = r.models.map((m) => ({ model: m.name, bins: m.reliability }));
    }
    if (r.models.some((m) => m.entropy.correct.length + m.entropy.wrong.length)) {
      data.entropy = r.models.flatMap((m) => [
        { model: m.name, group: 'correct', values: m.entropy.correct },
        { model: m.name, group: 'wrong', values: m.entropy.wrong },
        ...(m.entropy.ood.length
          ? [{ model: m.name, group: `OOD (${r.oodName ?? 'OOD'})`, values: m.entropy.ood }]
          : []),
      ]);
    }
    if (r.models.some((m) => m.referral.length)) {
      data.referral = r.models.map((m) => ({
        model: m.name,
        points: m.referral.filter((p) => Number.isFinite(p.accuracy)),
      }));
    }
    if (r.models.some((m) => m.roc.length)) {
      data.roc = {
        oodName: r.oodName ?? 'OOD',
        curves: r.models
          .filter((m) => m.roc.length)
          .map((m) => ({ model: m.name, auroc: m.metrics.oodAuroc, points: m.roc })),
      };
    }
  }
  if (r.throughput?.length) {
    data.throughput = r.throughput.map((t) => ({ impl: t.impl, imagesPerSecond: t.imagesPerSecond }));
  }
  if (r.sweep?.length) data.sweep = r.sweep;
  return data;
}

type Check = (v: unknown, at: string) => void;

function bad(at: string, what: string, v: unknown): never {
  const shown = JSON.stringify(v);
  throw new QbnnError(
    'ERR_ARG',
    `${at} must be ${what}; got ${shown === undefined ? 'nothing' : shown.length > 40 ? `${shown.slice(0, 40)}...` : shown}`,
  );
}

const str: Check = (v, at) => {
  if (typeof v !== 'string') bad(at, 'a string', v);
};
// JSON has no NaN or Infinity: JSON.stringify writes them as null, so null stands for "not finite"
const num: Check = (v, at) => {
  if (v !== null && typeof v !== 'number') bad(at, 'a number', v);
};
const arrayOf =
  (each: Check): Check =>
  (v, at) => {
    if (!Array.isArray(v)) bad(at, 'an array', v);
    for (let i = 0; i < v.length; i++) each(v[i], `${at}[${i}]`);
  };
const objectOf =
  (fields: Record<string, Check>, optional: readonly string[] = []): Check =>
  (v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(at, 'an object', v);
    for (const [k, check] of Object.entries(fields)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined && optional.includes(k)) continue;
      check(x, `${at}.${k}`);
    }
  };
const recordOf =
  (each: Check): Check =>
  (v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(at, 'an object', v);
    for (const [k, x] of Object.entries(v)) each(x, `${at}.${k}`);
  };
const primitive: Check = (v, at) => {
  if (!['string', 'number', 'boolean'].includes(typeof v) && v !== null)
    bad(at, 'a string, number or boolean', v);
};

const checkModel = objectOf({
  name: str,
  metrics: recordOf(num),
  reliability: arrayOf(objectOf({ confidence: num, accuracy: num, count: num })),
  entropy: objectOf({ correct: arrayOf(num), wrong: arrayOf(num), ood: arrayOf(num) }),
  referral: arrayOf(objectOf({ fraction: num, accuracy: num })),
  roc: arrayOf(objectOf({ fpr: num, tpr: num })),
});

const checkResultsShape = objectOf(
  {
    title: str,
    createdAt: str,
    config: recordOf(primitive),
    notes: arrayOf(str),
    oodName: str,
    models: arrayOf(checkModel),
    throughput: arrayOf(objectOf({ impl: str, imagesPerSecond: num, samples: num, batch: num })),
    sweep: arrayOf(
      objectOf(
        {
          posterior: str,
          sweep: str,
          bits: num,
          metric: str,
          value: num,
          mode: str,
          data: str,
          wbits: num,
          abits: num,
          fold: num,
        },
        ['mode', 'data', 'wbits', 'abits', 'fold'],
      ),
    ),
  },
  ['oodName', 'throughput', 'sweep'],
);

/**
 * Checks parsed JSON is {@link Results} in every field the report reads, so a damaged or foreign
 * file is an ERR_ARG error naming the field (e.g. `models[0].metrics`) instead of a crash.
 */
export function checkResults(v: unknown): Results {
  if (!isResults(v)) {
    throw new QbnnError('ERR_ARG', "not a qbnn results file (format 'qbnn-results/1')");
  }
  checkResultsShape(v, 'results');
  return v;
}

/** Checks that parsed JSON looks like {@link Results}. */
export function isResults(v: unknown): v is Results {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as Results).format === 'qbnn-results/1' &&
    Array.isArray((v as Results).models)
  );
}
