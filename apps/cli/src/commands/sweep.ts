import { bostonFolds } from '@qbnn/data';
import { classificationMetrics, regressionMetrics } from '@qbnn/metrics';
import type { Module } from '@qbnn/nn';
import { writeFileAtomic } from '@qbnn/nn/node';
import * as tf from '@tensorflow/tfjs-core';
import { parseFlags, UsageError } from '../args.js';
import { checkFileFlags, filesIn } from '../file-flags.js';
import { throwIfInterrupted } from '../interrupt.js';
import { count, loadClassification } from '../lib/data.js';
import {
  type BayesModelConfig,
  buildBayesModel,
  checkPosterior,
  inputShapeOf,
  type ModelName,
} from '../lib/models.js';
import { floatMoments, floatProbs, intMoments, intProbs } from '../lib/predict.js';
import { buildQConfig, QUANT_MODES, type QuantMode, quantizeModel } from '../lib/quantize.js';
import { type Results, type SweepPoint, toReportData } from '../lib/results.js';
import { trainBayes } from '../lib/train.js';
import { startProgress } from '../progress.js';
import { renderReport } from '../report/html.js';
import {
  type Command,
  commonFlags,
  copyModel,
  type Io,
  imageTensors,
  pluginInputs,
  runtimeLine,
  setup,
} from './common.js';
import { printResults } from './print.js';

const flags = {
  posteriors: {
    type: 'string',
    help: 'comma-separated posteriors (registered names)',
    default: 'gaussian,radial,mcdropout,sghmc',
  },
  quick: {
    type: 'boolean',
    help: 'a small variant: MLP on 2000 digits, gaussian + mcdropout, 2 Boston folds, L = 4',
    default: false,
  },
  mode: { type: 'string', help: 'quantisation flow of every point', default: 'ptq', choices: QUANT_MODES },
  'weight-bits': { type: 'string', help: 'weight bit widths swept at A7 (from-to)', default: '3-8' },
  'activation-bits': { type: 'string', help: 'activation bit widths swept at W8 (from-to)', default: '3-7' },
  'no-boston': {
    type: 'boolean',
    help: 'skip the Boston housing regression sweep (RMSE, NLL over K folds)',
    default: false,
  },
  folds: { type: 'int', help: 'K folds of Boston housing', default: 5, min: 2, max: 20 },
  'boston-epochs': { type: 'int', help: 'Boston training epochs (default 60, quick 20)', min: 1, max: 10000 },
  epochs: { type: 'int', help: 'MNIST training epochs (default 2, quick 1)', min: 1, max: 1000 },
  'train-size': {
    type: 'int',
    help: 'MNIST training digits (default 8000, quick 2000)',
    min: 10,
    max: 10000,
  },
  'test-size': { type: 'int', help: 'MNIST test digits (default 2000, quick 500)', min: 10, max: 10000 },
  'out-dir': { type: 'string', help: 'folder for results.json and report.html', default: 'qbnn-out/sweep' },
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

/** The quantisation settings of a sweep: [sweep name, wbits, abits]. */
function settings(wbits: number[], abits: number[]): [string, number, number][] {
  return [
    ...wbits.map((w) => ['weight bits (A7)', w, 7] as [string, number, number]),
    ...abits.map((a) => ['activation bits (W8)', 8, a] as [string, number, number]),
  ];
}

export const sweep: Command = {
  name: 'sweep',
  summary: 'the Ferianc experiment: metrics against weight bits (A7) and activation bits (W8) per posterior',
  usage: 'qbnn sweep [--quick] [--posteriors a,b] [--mode ptq|qat] [--folds K] [--out-dir DIR]',
  flags,
  example: 'qbnn sweep --quick',
  async run(argv: string[], io: Io) {
    const f = parseFlags('sweep', argv, flags);
    const [resultsPath, reportPath] = checkFileFlags('sweep', {
      inputs: pluginInputs(f.plugin),
      outputs: filesIn('sweep', '--out-dir', f['out-dir'], ['results.json', 'report.html']),
    });
    const quick = f.quick;
    const posteriors = (
      f.posteriors === flags.posteriors.default && quick ? 'gaussian,mcdropout' : f.posteriors
    )
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (posteriors.length === 0)
      throw new UsageError('qbnn sweep: --posteriors must name at least one posterior');
    const wbits = parseRange('weight-bits', f['weight-bits'], 8);
    const abits = parseRange('activation-bits', f['activation-bits'], 8);
    const mode = f.mode as QuantMode;
    const rt = await setup(f);
    for (const p of posteriors) checkPosterior(p, '--posteriors');
    io.err(`qbnn sweep: ${runtimeLine(rt)}\n`);
    const t0 = performance.now();
    const samples = quick && f.samples === commonFlags.samples.default ? 4 : f.samples;
    const trainSize = f['train-size'] ?? (quick ? 2000 : 8000);
    const testSize = f['test-size'] ?? (quick ? 500 : 2000);
    const epochs = f.epochs ?? (quick ? 1 : 2);
    const folds = quick && f.folds === flags.folds.default ? 2 : f.folds;
    const doBoston = !f['no-boston'];
    const arch: ModelName = quick ? 'mlp' : 'lenet5';
    const points: SweepPoint[] = [];
    const plan = settings(wbits, abits);
    const split = loadClassification('mnist', { trainSize, testSize, seed: f.seed });
    const total = posteriors.length * (plan.length + 1) * (1 + (doBoston ? folds : 0));
    const progress = startProgress('sweep', total, 'models', f.quiet);
    let done = 0;
    const tick = () => progress.update(++done);
    const common = {
      calibrationSize: 512,
      calibrationPasses: 2,
      qatEpochs: 1,
      qatLr: 2e-4,
      batchSize: 64,
      qatSize: quick ? 500 : 2000,
      seed: f.seed,
      label: 'quantise',
      quiet: true,
    };
    try {
      // ---- MNIST classification --------------------------------------------------------------
      const train = imageTensors(split.train, inputShapeOf(arch));
      try {
        for (const posterior of posteriors) {
          const cfg: BayesModelConfig = { model: arch, posterior, seed: f.seed };
          const model = buildBayesModel(cfg);
          const s = await trainBayes(model, train, {
            epochs,
            batchSize: 64,
            lr: undefined,
            beta: 0.1,
            seed: f.seed,
            task: 'classification',
            members: 4,
            label: `train ${posterior}`,
            quiet: true,
          });
          if (s.members) cfg.members = s.members;
          const record = (sweepName: string | null, bits: number, probs: ReturnType<typeof floatProbs>) => {
            const m = classificationMetrics(probs.probs, split.test.labels, {
              samples: probs.samples,
              n: probs.n,
              classes: probs.classes,
            });
            const names = sweepName
              ? [sweepName]
              : plan.map((p) => p[0]).filter((v, i, a) => a.indexOf(v) === i);
            for (const sw of names) {
              for (const [metric, value] of [
                ['MNIST error', m.error],
                ['MNIST ECE', m.ece],
                ['MNIST NLL', m.nll],
                ['MNIST aPE', m.averagePredictiveEntropy],
              ] as const) {
                points.push({ posterior, sweep: sw, bits, metric, value });
              }
            }
          };
          record(null, 32, floatProbs(model, split.test, samples, { inputShape: inputShapeOf(arch) }));
          tick();
          for (const [sw, w, a] of plan) {
            throwIfInterrupted();
            const qm = await quantizeModel(copyModel(model, cfg), {
              ...common,
              mode,
              qconfig: buildQConfig(mode, w, a),
              inputShape: inputShapeOf(arch),
              data: train,
              task: 'classification',
            });
            record(
              sw,
              sw.startsWith('weight') ? w : a,
              intProbs(qm, split.test, samples, f.seed + w * 16 + a),
            );
            tick();
          }
          io.err(`sweep: ${posterior} on MNIST done (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
          model.dispose();
        }
      } finally {
        train.x.dispose();
        train.y.dispose();
      }
      // ---- Boston housing regression -------------------------------------------------------------
      if (doBoston) {
        const splits = bostonFolds({ k: folds, seed: f.seed });
        const acc = new Map<string, { sum: number; n: number }>();
        const add = (posterior: string, sw: string, bits: number, metric: string, v: number) => {
          const key = `${posterior}|${sw}|${bits}|${metric}`;
          const e = acc.get(key) ?? { sum: 0, n: 0 };
          e.sum += v;
          e.n++;
          acc.set(key, e);
        };
        for (const posterior of posteriors) {
          for (const fold of splits) {
            const nf = fold.train.nFeatures;
            const cfg: BayesModelConfig = {
              model: 'regression-mlp',
              posterior,
              seed: f.seed,
              inFeatures: nf,
              hidden: 50,
            };
            const model: Module = buildBayesModel(cfg);
            const x = tf.tensor2d(fold.train.x, [fold.train.n, nf]);
            const y = tf.tensor1d(fold.train.y);
            try {
              const s = await trainBayes(
                model,
                { x, y },
                {
                  epochs: f['boston-epochs'] ?? (quick ? 20 : 60),
                  batchSize: 32,
                  lr: posterior === 'sghmc' ? 0.5 : 1e-2,
                  beta: 1,
                  seed: f.seed,
                  task: 'regression',
                  members: 4,
                  label: `train ${posterior}`,
                  quiet: true,
                },
              );
              if (s.members) cfg.members = s.members;
              const score = (sw: string | null, bits: number, mom: ReturnType<typeof floatMoments>) => {
                const r = regressionMetrics(mom.means, mom.variances, fold.test.y, {
                  samples: mom.samples,
                  n: mom.n,
                });
                const names = sw ? [sw] : plan.map((p) => p[0]).filter((v, i, a) => a.indexOf(v) === i);
                for (const name of names) {
                  // back to MEDV units ($1000s): RMSE scales by yStd, the NLL shifts by log(yStd)
                  add(posterior, name, bits, 'Boston RMSE', r.rmse * fold.yStd);
                  add(posterior, name, bits, 'Boston NLL', r.nll + Math.log(fold.yStd));
                }
              };
              score(null, 32, floatMoments(model, fold.test.x, fold.test.n, nf, samples));
              tick();
              for (const [sw, w, a] of plan) {
                throwIfInterrupted();
                const qm = await quantizeModel(copyModel(model, cfg), {
                  ...common,
                  calibrationSize: fold.train.n,
                  mode,
                  qconfig: buildQConfig(mode, w, a),
                  inputShape: [nf],
                  data: { x, y },
                  task: 'regression',
                });
                score(
                  sw,
                  sw.startsWith('weight') ? w : a,
                  intMoments(qm, fold.test.x, fold.test.n, samples, f.seed + w * 16 + a),
                );
                tick();
              }
            } finally {
              x.dispose();
              y.dispose();
              model.dispose();
            }
          }
          io.err(
            `sweep: ${posterior} on Boston housing done (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
          );
        }
        for (const [key, e] of acc) {
          const [posterior, sw, bits, metric] = key.split('|');
          points.push({ posterior, sweep: sw, bits: Number(bits), metric, value: e.sum / e.n });
        }
      }
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    const results: Results = {
      format: 'qbnn-results/1',
      title: `qbnn sweep (${mode.toUpperCase()}): metrics against bit width`,
      createdAt: new Date().toISOString(),
      config: {
        command: 'sweep',
        quick,
        posteriors: posteriors.join(', '),
        mode,
        model: `${arch} on MNIST (${count(split.train)} train / ${count(split.test)} test, ${epochs} epochs)`,
        boston: doBoston ? `${folds}-fold regression MLP (50 hidden)` : 'skipped',
        weightBits: `${wbits.join(', ')} at A7`,
        activationBits: `${abits.join(', ')} at W8`,
        samples,
        seed: f.seed,
        kernelProvider: rt.provider,
        seconds: Math.round(seconds),
      },
      notes: [
        'Bits 32 is the float model. Boston figures are in MEDV units ($1000s), averaged over the folds.',
        `Every quantised point runs in the integer engine (kernel provider '${rt.provider}').`,
      ],
      models: [],
      sweep: points,
    };
    await writeFileAtomic(resultsPath, JSON.stringify(results), { mkdir: true });
    await writeFileAtomic(reportPath, renderReport(toReportData(results)), { mkdir: true });
    printResults(io, results, f.json);
    if (!f.json)
      io.out(`\nresults: ${resultsPath}\nreport:  ${reportPath}\ntotal time: ${seconds.toFixed(0)} s\n`);
  },
};
