import { existsSync } from 'node:fs';
import { QbnnError } from '@qbnn/core';
import { regressionFolds } from '@qbnn/data';
import { loadBoston, loadDiabetes } from '@qbnn/data/node';
import { regressionMetrics } from '@qbnn/metrics';
import { writeFileAtomic } from '@qbnn/nn/node';
import * as tf from '@tensorflow/tfjs-core';
import { parseFlags, UsageError } from '../args.js';
import { checkFileFlags, filesIn } from '../file-flags.js';
import { throwIfInterrupted } from '../interrupt.js';
import { count, DATASETS, type DatasetName, loadClassification, loadConfusion } from '../lib/data.js';
import {
  type BayesModelConfig,
  buildBayesModel,
  checkPosterior,
  inputShapeOf,
  MAX_MEMBERS,
  type ModelName,
} from '../lib/models.js';
import { floatMoments, floatProbs, intMoments, intProbs, type SampledProbs } from '../lib/predict.js';
import { buildQConfig, QUANT_MODES, type QuantMode, quantizeModel } from '../lib/quantize.js';
import { modelResult, type Results, type SweepPoint, toReportData } from '../lib/results.js';
import { toSweepPoints } from '../lib/sweep-points.js';
import { pointKey, type StoredPoint, SweepStore } from '../lib/sweep-store.js';
import { trainBayes } from '../lib/train.js';
import { startProgress } from '../progress.js';
import { renderReport } from '../report/html.js';
import {
  type Command,
  commonFlags,
  type Io,
  imageTensors,
  loadModel,
  pluginInputs,
  runtimeLine,
  saveModel,
  setup,
} from './common.js';
import { printResults } from './print.js';

/** Regression data sets of the sweep (UCI-style K-fold cross-validation). */
export const REGRESSION_SETS = ['boston', 'diabetes'] as const;

const flags = {
  data: {
    type: 'string',
    help: `classification data sets, comma-separated (${DATASETS.join(', ')}) or none; the other one is the confusion set`,
    default: 'mnist',
  },
  regression: {
    type: 'string',
    help: `regression data sets in K-fold CV, comma-separated (${REGRESSION_SETS.join(', ')}) or none`,
    default: REGRESSION_SETS.join(','),
  },
  posteriors: {
    type: 'string',
    help: 'comma-separated posteriors (registered names, plugins included)',
    default: 'gaussian,radial,mcdropout,sghmc',
  },
  quick: {
    type: 'boolean',
    help: 'a small variant: MLP on 2000 digits, 500 test and confusion images, 2 folds, L = 4',
    default: false,
  },
  modes: {
    type: 'string',
    help: `quantisation flows, comma-separated (${QUANT_MODES.join(', ')})`,
    default: QUANT_MODES.join(','),
  },
  'weight-bits': { type: 'string', help: 'weight bit widths swept at A7 (from-to)', default: '3-8' },
  'activation-bits': { type: 'string', help: 'activation bit widths swept at W8 (from-to)', default: '3-7' },
  grid: {
    type: 'boolean',
    help: 'every weight x activation bit width pair instead of the two lines (W at A7, A at W8)',
    default: false,
  },
  folds: { type: 'int', help: 'K folds of each regression set', default: 10, min: 2, max: 20 },
  'regression-epochs': {
    type: 'int',
    help: 'regression training epochs (default 60, quick 20)',
    min: 1,
    max: 10000,
  },
  epochs: {
    type: 'int',
    help: 'classification training epochs (default mnist 5, fashion-mnist 2, quick 1)',
    min: 1,
    max: 1000,
  },
  'train-size': {
    type: 'int',
    help: 'training images (default: mnist 8000, the most its 10,000 digits allow beside the test set; fashion-mnist 60000; quick 2000)',
    min: 10,
    max: 60000,
  },
  'test-size': {
    type: 'int',
    help: 'test images (default mnist 2000, fashion-mnist 10000, quick 500)',
    min: 10,
    max: 10000,
  },
  'confusion-size': {
    type: 'int',
    help: 'confusion-set images (default: the test size)',
    min: 10,
    max: 10000,
  },
  members: { type: 'int', help: 'SGHMC ensemble members', default: 8, min: 1, max: MAX_MEMBERS },
  'qat-size': { type: 'int', help: 'QAT fine-tuning images (default 2000, quick 500)', min: 10, max: 60000 },
  'report-only': {
    type: 'boolean',
    help: 'run nothing: write results.json and report.html from the points stored in --out-dir',
    default: false,
  },
  'out-dir': {
    type: 'string',
    help: 'folder of the resumable run (one subfolder per data set) and of results.json, report.html',
    default: 'qbnn-out/sweep',
  },
  ...commonFlags,
} as const;

function parseRange(flag: string, text: string, max: number): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  const a = m ? Number(m[1]) : Number.NaN;
  const b = m ? Number(m[2] ?? m[1]) : Number.NaN;
  if (!m || a < 2 || b > max || a > b) {
    throw new UsageError(
      `qbnn sweep: --${flag} must be a bit width or a range 'from-to' within 2-${max}; got '${text}'`,
    );
  }
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** A comma-separated list of names from `allowed` ('none' = empty). */
function parseList<T extends string>(flag: string, text: string, allowed: readonly T[] | null): T[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 1 && names[0] === 'none' && allowed) return [];
  for (const n of names) {
    if (allowed && !allowed.includes(n as T)) {
      throw new UsageError(
        `qbnn sweep: --${flag} takes ${allowed.join(', ')}${allowed ? ' or none' : ''}, comma-separated; got '${n}'`,
      );
    }
  }
  if (new Set(names).size !== names.length)
    throw new UsageError(`qbnn sweep: --${flag} names '${text}' twice`);
  return names as T[];
}

/**
 * The (weight bits, activation bits) pairs a run quantises to, widest first (by W + A): a run
 * stopped early has the high-precision end of both lines rather than one whole line.
 */
export function bitSettings(wbits: number[], abits: number[], grid: boolean): [number, number][] {
  const out: [number, number][] = grid
    ? wbits.flatMap((w) => abits.map((a) => [w, a] as [number, number]))
    : wbits.map((w) => [w, 7]);
  if (!grid) for (const a of abits) if (!out.some(([w, x]) => w === 8 && x === a)) out.push([8, a]);
  return out.sort((x, y) => y[0] + y[1] - (x[0] + x[1]) || y[0] - x[0]);
}

/** What every run of the command shares. */
interface Ctx {
  io: Io;
  root: string;
  posteriors: string[];
  modes: QuantMode[];
  settings: [number, number][];
  samples: number;
  seed: number;
  quick: boolean;
  members: number;
  qatSize: number;
  quiet: boolean;
  /** Called after each stored point (rewrites results.json and report.html). */
  onPoint: () => Promise<void>;
  tick: () => void;
}

const QUANT_COMMON = {
  calibrationSize: 512,
  calibrationPasses: 2,
  qatEpochs: 1,
  qatLr: 2e-4,
  batchSize: 64,
  label: 'quantise',
  quiet: true,
};

const r6 = (v: number) => (Number.isFinite(v) ? Math.round(v * 1e6) / 1e6 : v);

/** The figures of a classification point: on the test set and the confusion set. */
function classificationFigures(
  test: SampledProbs,
  labels: Int32Array,
  conf: SampledProbs,
): Record<string, number> {
  const m = modelResult('', test, labels, conf).metrics;
  return {
    error: r6(m.error),
    ece: r6(m.ece),
    nll: r6(m.nll),
    ape: r6(m.ape),
    mi: r6(m.mi),
    confApe: r6(m.oodApe),
    confMi: r6(m.oodMi),
    auroc: r6(m.oodAuroc),
    aurocMi: r6(m.oodAurocMi),
  };
}

async function classificationSweep(ctx: Ctx, data: DatasetName, sizes: Sizes): Promise<void> {
  const arch: ModelName = ctx.quick ? 'mlp' : 'lenet5';
  const shape = inputShapeOf(arch);
  const config = {
    task: 'classification',
    data,
    model: arch,
    trainSize: sizes.train,
    testSize: sizes.test,
    confusionSize: sizes.confusion,
    epochs: sizes.epochs,
    batchSize: 64,
    beta: 0.1,
    members: ctx.members,
    samples: ctx.samples,
    seed: ctx.seed,
    calibration: `${QUANT_COMMON.calibrationSize} images x ${QUANT_COMMON.calibrationPasses} passes`,
    qat: `${ctx.qatSize} images, ${QUANT_COMMON.qatEpochs} epoch, lr ${QUANT_COMMON.qatLr}`,
  };
  const store = await SweepStore.open(ctx.root, data, config);
  const split = loadClassification(data, { trainSize: sizes.train, testSize: sizes.test, seed: ctx.seed });
  const conf = loadConfusion(data, sizes.confusion, ctx.seed);
  ctx.io.err(
    `sweep ${data}: ${count(split.train)} train / ${count(split.test)} test images, confusion set ${count(conf.set)} ${conf.name} images; points in ${store.dir}\n`,
  );
  const train = imageTensors(split.train, shape);
  const t0 = performance.now();
  try {
    const modelFile = async (posterior: string): Promise<string> => {
      const path = store.modelPath(posterior);
      if (existsSync(path)) return path;
      const cfg: BayesModelConfig = {
        model: arch,
        posterior,
        seed: ctx.seed,
        dataset: { name: data, trainSize: sizes.train, testSize: sizes.test, seed: ctx.seed },
      };
      const model = buildBayesModel(cfg);
      try {
        const s = await trainBayes(model, train, {
          epochs: sizes.epochs,
          batchSize: config.batchSize,
          beta: config.beta,
          seed: ctx.seed,
          task: 'classification',
          members: ctx.members,
          label: `train ${posterior}`,
          quiet: ctx.quiet,
        });
        if (s.members) cfg.members = s.members;
        await saveModel(model, cfg, path);
        ctx.io.err(`sweep ${data}: trained ${posterior} (${s.objective}, ${s.seconds.toFixed(0)} s)\n`);
      } finally {
        model.dispose();
      }
      return path;
    };
    const put = async (
      posterior: string,
      mode: StoredPoint['mode'],
      w: number,
      a: number,
      started: number,
      figures: Record<string, number>,
    ) => {
      await store.put({
        key: pointKey(posterior, mode, w, a),
        task: 'classification',
        data,
        posterior,
        mode,
        wbits: w,
        abits: a,
        metrics: figures,
        seconds: Math.round((performance.now() - started) / 100) / 10,
      });
      ctx.tick();
      await ctx.onPoint();
    };
    // the float model's point, before its first quantised point
    const floatPoint = async (posterior: string) => {
      if (store.has(pointKey(posterior, 'float', 32, 32))) return;
      throwIfInterrupted();
      const path = await modelFile(posterior);
      const started = performance.now();
      const { model } = await loadModel(path);
      try {
        const t = floatProbs(model, split.test, ctx.samples, { inputShape: shape });
        const c = floatProbs(model, conf.set, ctx.samples, { inputShape: shape });
        await put(posterior, 'float', 32, 32, started, classificationFigures(t, split.test.labels, c));
      } finally {
        model.dispose();
      }
    };
    // by flow, then posterior: a run stopped early has whole PTQ figures before any QAT point
    for (const mode of ctx.modes) {
      for (const posterior of ctx.posteriors) {
        await floatPoint(posterior);
        for (const [w, a] of ctx.settings) {
          if (store.has(pointKey(posterior, mode, w, a))) continue;
          throwIfInterrupted();
          const started = performance.now();
          const { model } = await loadModel(await modelFile(posterior));
          const qm = await quantizeModel(model, {
            ...QUANT_COMMON,
            mode,
            qconfig: buildQConfig(mode, w, a),
            inputShape: shape,
            data: train,
            qatSize: ctx.qatSize,
            task: 'classification',
            seed: ctx.seed,
          });
          const seed = ctx.seed + w * 16 + a;
          const t = intProbs(qm, split.test, ctx.samples, seed);
          const c = intProbs(qm, conf.set, ctx.samples, seed + 1);
          await put(posterior, mode, w, a, started, classificationFigures(t, split.test.labels, c));
        }
        ctx.io.err(
          `sweep ${data}: ${posterior} ${mode.toUpperCase()} done (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
        );
      }
    }
    // --modes none: the float models alone
    for (const posterior of ctx.posteriors) await floatPoint(posterior);
  } finally {
    train.x.dispose();
    train.y.dispose();
  }
}

async function regressionSweep(
  ctx: Ctx,
  data: (typeof REGRESSION_SETS)[number],
  folds: number,
  epochs: number,
) {
  const config = {
    task: 'regression',
    data,
    model: 'regression-mlp (50 hidden)',
    folds,
    epochs,
    batchSize: 32,
    lr: { adam: 1e-2, sghmc: 0.5 },
    beta: 1,
    members: ctx.members,
    samples: ctx.samples,
    seed: ctx.seed,
    calibration: 'the fold’s training rows x 2 passes',
    qat: `${ctx.qatSize} rows at most, ${QUANT_COMMON.qatEpochs} epoch, lr ${QUANT_COMMON.qatLr}`,
  };
  const store = await SweepStore.open(ctx.root, data, config);
  const set = data === 'boston' ? loadBoston() : loadDiabetes();
  const splits = regressionFolds(set, { k: folds, seed: ctx.seed });
  const t0 = performance.now();
  const nf = set.nFeatures;
  const cfgOf = (posterior: string): BayesModelConfig => ({
    model: 'regression-mlp',
    posterior,
    seed: ctx.seed,
    inFeatures: nf,
    hidden: 50,
  });
  const modelFile = async (posterior: string, fold: number, x: tf.Tensor, y: tf.Tensor): Promise<string> => {
    const path = store.modelPath(`${posterior}|fold${fold}`);
    if (existsSync(path)) return path;
    const cfg = cfgOf(posterior);
    const model = buildBayesModel(cfg);
    try {
      const s = await trainBayes(
        model,
        { x, y },
        {
          epochs,
          batchSize: config.batchSize,
          lr: posterior === 'sghmc' ? config.lr.sghmc : config.lr.adam,
          beta: config.beta,
          seed: ctx.seed,
          task: 'regression',
          members: ctx.members,
          label: `train ${posterior}`,
          quiet: true,
        },
      );
      if (s.members) cfg.members = s.members;
      await saveModel(model, cfg, path);
    } finally {
      model.dispose();
    }
    return path;
  };
  for (const mode of ['float', ...ctx.modes] as const) {
    for (const posterior of ctx.posteriors) {
      for (let fold = 0; fold < splits.length; fold++) {
        const sp = splits[fold];
        const todo = (mode === 'float' ? [[32, 32] as [number, number]] : ctx.settings).filter(
          ([w, a]) => !store.has(pointKey(posterior, mode, w, a, fold)),
        );
        if (todo.length === 0) continue;
        const x = tf.tensor2d(sp.train.x, [sp.train.n, nf]);
        const y = tf.tensor1d(sp.train.y);
        try {
          const path = await modelFile(posterior, fold, x, y);
          for (const [w, a] of todo) {
            throwIfInterrupted();
            const started = performance.now();
            const { model } = await loadModel(path);
            let mom: ReturnType<typeof floatMoments>;
            if (mode === 'float') {
              try {
                mom = floatMoments(model, sp.test.x, sp.test.n, nf, ctx.samples);
              } finally {
                model.dispose();
              }
            } else {
              const qm = await quantizeModel(model, {
                ...QUANT_COMMON,
                calibrationSize: sp.train.n,
                mode,
                qconfig: buildQConfig(mode, w, a),
                inputShape: [nf],
                data: { x, y },
                qatSize: ctx.qatSize,
                task: 'regression',
                seed: ctx.seed,
              });
              mom = intMoments(qm, sp.test.x, sp.test.n, ctx.samples, ctx.seed + w * 16 + a);
            }
            const r = regressionMetrics(mom.means, mom.variances, sp.test.y, {
              samples: mom.samples,
              n: mom.n,
            });
            await store.put({
              key: pointKey(posterior, mode, w, a, fold),
              task: 'regression',
              data,
              posterior,
              mode,
              wbits: w,
              abits: a,
              fold,
              // back to the target's units: RMSE scales by yStd, the NLL shifts by log(yStd)
              metrics: { rmse: r6(r.rmse * sp.yStd), nll: r6(r.nll + Math.log(sp.yStd)) },
              seconds: Math.round((performance.now() - started) / 100) / 10,
            });
            ctx.tick();
            await ctx.onPoint();
          }
        } finally {
          x.dispose();
          y.dispose();
        }
      }
      ctx.io.err(
        `sweep ${data}: ${posterior} ${mode === 'float' ? 'float' : mode.toUpperCase()} done (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
      );
    }
  }
}

interface Sizes {
  train: number;
  test: number;
  confusion: number;
  epochs: number;
}

/** The results of every store under `root`, as the report reads them. */
export function sweepResults(root: string, config: Results['config']): Results {
  const stores = SweepStore.list(root);
  const points: SweepPoint[] = stores.flatMap((d) => toSweepPoints(SweepStore.read(root, d)));
  return {
    format: 'qbnn-results/1',
    title: 'qbnn sweep: metrics against bit width (Ferianc et al. layout)',
    createdAt: new Date().toISOString(),
    config: {
      ...config,
      dataSets: stores.join(', '),
      // what each data set's points were made with
      ...Object.fromEntries(
        stores.map((d) => [
          d,
          Object.entries(SweepStore.readConfig(root, d))
            .filter(([k]) => k !== 'data')
            .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`)
            .join('; '),
        ]),
      ),
    },
    notes: [
      'Bits 32 is the float model; every other point runs in the integer engine.',
      'Weight bits are swept at 7 activation bits, activation bits at 8 weight bits; solid lines PTQ, dashed QAT.',
      'Regression figures are in the target’s units (Boston: MEDV in $1000s; diabetes: progression), one value per fold.',
    ],
    models: [],
    sweep: points,
  };
}

export const sweep: Command = {
  name: 'sweep',
  summary: 'the Ferianc experiment: metrics against weight bits (A7) and activation bits (W8) per posterior',
  usage:
    'qbnn sweep [--data mnist,fashion-mnist] [--regression boston,diabetes] [--posteriors a,b] [--modes ptq,qat] [--grid] [--out-dir DIR]',
  flags,
  example: 'qbnn sweep --quick',
  async run(argv: string[], io: Io) {
    const f = parseFlags('sweep', argv, flags);
    const [resultsPath, reportPath] = checkFileFlags('sweep', {
      inputs: pluginInputs(f.plugin),
      outputs: filesIn('sweep', '--out-dir', f['out-dir'], ['results.json', 'report.html']),
    });
    const quick = f.quick;
    const datasets = parseList('data', f.data, DATASETS);
    const regression = parseList('regression', f.regression, REGRESSION_SETS);
    const posteriors = parseList(
      'posteriors',
      f.posteriors === flags.posteriors.default && quick ? 'gaussian,mcdropout' : f.posteriors,
      null,
    );
    if (posteriors.length === 0)
      throw new UsageError('qbnn sweep: --posteriors must name at least one posterior');
    const modes = parseList('modes', f.modes, QUANT_MODES);
    const wbits = parseRange('weight-bits', f['weight-bits'], 8);
    const abits = parseRange('activation-bits', f['activation-bits'], 8);
    const settings = bitSettings(wbits, abits, f.grid);
    const samples = quick && f.samples === commonFlags.samples.default ? 4 : f.samples;
    const folds = quick && f.folds === flags.folds.default ? 2 : f.folds;
    const sizesOf = (d: DatasetName): Sizes => {
      const train = f['train-size'] ?? (quick ? 2000 : d === 'mnist' ? 8000 : 60000);
      const test = f['test-size'] ?? (quick ? 500 : d === 'mnist' ? 2000 : 10000);
      return {
        train,
        test,
        confusion: f['confusion-size'] ?? test,
        epochs: f.epochs ?? (quick ? 1 : d === 'mnist' ? 5 : 2),
      };
    };
    for (const d of datasets) {
      const s = sizesOf(d);
      if (d === 'mnist' && s.train + s.test > 10000) {
        throw new UsageError(
          `qbnn sweep: --train-size + --test-size must be at most 10000 for mnist (the mnist package holds 10,000 digits); got ${s.train} + ${s.test}`,
        );
      }
    }
    const root = f['out-dir'];
    // samples, seed and sizes are in each data set's own config (the points' provenance)
    const runConfig = { command: `qbnn sweep ${argv.join(' ')}`.trim() };
    const writeResults = async (kernelProvider: string) => {
      const results = sweepResults(root, { ...runConfig, kernelProvider });
      await writeFileAtomic(resultsPath, JSON.stringify(results), { mkdir: true });
      await writeFileAtomic(reportPath, renderReport(toReportData(results)), { mkdir: true });
      return results;
    };
    if (f['report-only']) {
      if (SweepStore.list(root).length === 0) {
        throw new QbnnError('ERR_ARG', `--report-only: ${root} holds no sweep points`);
      }
      const results = await writeResults('(from stored points)');
      printResults(io, results, f.json);
      if (!f.json) io.out(`\nresults: ${resultsPath}\nreport:  ${reportPath}\n`);
      return;
    }
    if (datasets.length + regression.length === 0) {
      throw new UsageError('qbnn sweep: --data and --regression are both none: nothing to run');
    }
    const rt = await setup(f);
    for (const p of posteriors) checkPosterior(p, '--posteriors');
    io.err(`qbnn sweep: ${runtimeLine(rt)}\n`);
    const t0 = performance.now();
    const perModel = 1 + modes.length * settings.length;
    const total = posteriors.length * perModel * (datasets.length + regression.length * folds);
    const progress = startProgress('sweep', total, 'points', f.quiet);
    let done = 0;
    const ctx: Ctx = {
      io,
      root,
      posteriors,
      modes,
      settings,
      samples,
      seed: f.seed,
      quick,
      members: f.members,
      qatSize: f['qat-size'] ?? (quick ? 500 : 2000),
      quiet: f.quiet,
      onPoint: async () => {
        await writeResults(rt.provider);
      },
      tick: () => progress.update(++done),
    };
    try {
      for (const d of datasets) await classificationSweep(ctx, d, sizesOf(d));
      for (const r of regression) {
        await regressionSweep(ctx, r, folds, f['regression-epochs'] ?? (quick ? 20 : 60));
      }
    } finally {
      progress.stop();
    }
    const results = await writeResults(rt.provider);
    const seconds = (performance.now() - t0) / 1000;
    printResults(io, results, f.json);
    if (!f.json) {
      io.out(
        `\n${done} new points (the rest were stored already)\nresults: ${resultsPath}\nreport:  ${reportPath}\ntotal time: ${seconds.toFixed(0)} s\n`,
      );
    }
  },
};
