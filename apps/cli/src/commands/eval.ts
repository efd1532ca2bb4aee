import type { ImageSet } from '@qbnn/data';
import type { ImportedConfig } from '@qbnn/interop';
import type { Module } from '@qbnn/nn';
import { writeFileAtomic } from '@qbnn/nn/node';
import { parseFlags, UsageError } from '../args.js';
import { checkFileFlags } from '../file-flags.js';
import {
  count,
  DATASETS,
  type DatasetName,
  head,
  loadClassification,
  loadOod,
  OOD_CHOICES,
  type OodChoice,
  type OodData,
} from '../lib/data.js';
import { asExampleSet, dataFileOf, fileInputShape, loadDataFile, oodFromFile } from '../lib/data-file.js';
import { evaluateModels, evaluateRegression } from '../lib/evaluate.js';
import { type BayesModelConfig, inputShapeOf } from '../lib/models.js';
import { type Results, toReportData } from '../lib/results.js';
import { renderReport } from '../report/html.js';
import {
  type Command,
  commonFlags,
  type Io,
  loadFloatCheckpoint,
  loadQuantModel,
  pluginInputs,
  runtimeLine,
  setup,
  stem,
  throughputSecondsFlag,
} from './common.js';
import { printResults } from './print.js';

const flags = {
  checkpoint: { type: 'string', help: 'float checkpoint (qbnn train)' },
  quantized: { type: 'string', help: 'quantised model(s) (qbnn quantize), comma-separated' },
  data: {
    type: 'string',
    help: `test data: ${DATASETS.join(' or ')} (default: the checkpoint's, else mnist), or a file (.pt, .safetensors) of tensors x [N, ...] and y [N] (class indices, or float targets for a regression model); an imported model needs the file`,
  },
  'train-size': {
    type: 'int',
    help: "size of the training part of the split (default: the checkpoint's, else 8000)",
    min: 0,
    max: 60000,
  },
  'test-size': {
    type: 'int',
    help: "test images (default: the checkpoint's, else 2000)",
    min: 1,
    max: 10000,
  },
  'ood-size': { type: 'int', help: 'out-of-distribution images', default: 1000, min: 1, max: 10000 },
  ood: {
    type: 'string',
    help: `OOD set: ${OOD_CHOICES.join(', ')}, or a file (.pt, .safetensors) of tensors x shaped as the test data's (with --data FILE, auto means none)`,
    default: 'auto',
  },
  throughput: {
    type: 'boolean',
    help: 'also measure images per second (needs --checkpoint)',
    default: false,
  },
  'throughput-seconds': throughputSecondsFlag,
  out: {
    type: 'string',
    help: 'results file to write (JSON, for qbnn report)',
    default: 'qbnn-out/results.json',
  },
  report: { type: 'string', help: 'also write the HTML report here' },
  ...commonFlags,
} as const;

/** What the results file says of the float model: the cli's model and posterior, or the imported one's. */
function floatModelConfig(
  cfg: BayesModelConfig | undefined,
  imported: ImportedConfig | undefined,
): { model: string; posterior: string } {
  if (cfg) return { model: cfg.model, posterior: cfg.posterior };
  const posteriors = [...new Set(Object.values(imported?.layers ?? {}).map((l) => l.posterior))];
  return { model: 'imported', posterior: posteriors.join(', ') || 'none' };
}

export const evaluate: Command = {
  name: 'eval',
  summary: 'evaluate float and quantised models: accuracy, NLL, ECE, aPE, MI, OOD, referral',
  usage:
    'qbnn eval [--checkpoint FILE] [--quantized FILE[,FILE...]] [--samples L] [--out results.json] [--report report.html]',
  flags,
  example:
    'qbnn eval --checkpoint qbnn-out/model.safetensors --quantized qbnn-out/model-ptq-w8a8.safetensors --report qbnn-out/report.html',
  async run(argv: string[], io: Io) {
    const f = parseFlags('eval', argv, flags);
    const dataFile = dataFileOf('eval', '--data', f.data, DATASETS);
    const oodFile = dataFileOf('eval', '--ood', f.ood, OOD_CHOICES);
    const qfiles = (f.quantized ?? '').split(',').filter(Boolean);
    if (f.checkpoint === undefined && qfiles.length === 0) {
      throw new UsageError('qbnn eval: give --checkpoint <file> and/or --quantized <file[,file...]>');
    }
    if (f.throughput && f.checkpoint === undefined)
      throw new UsageError('qbnn eval: --throughput needs --checkpoint (the float baseline)');
    if (dataFile !== undefined && oodFile === undefined && f.ood !== 'auto' && f.ood !== 'none') {
      throw new UsageError(
        `qbnn eval: --ood ${f.ood} makes images from MNIST / Fashion-MNIST; with --data FILE give --ood FILE or none`,
      );
    }
    if (dataFile !== undefined && f['train-size'] !== undefined)
      throw new UsageError(
        'qbnn eval: --train-size has no meaning with --data FILE (the file is the test set)',
      );
    const [out, reportPath] = checkFileFlags('eval', {
      inputs: [
        ...(dataFile !== undefined ? [{ flag: '--data', path: dataFile }] : []),
        ...(oodFile !== undefined ? [{ flag: '--ood', path: oodFile }] : []),
        ...(f.checkpoint !== undefined ? [{ flag: '--checkpoint', path: f.checkpoint }] : []),
        ...qfiles.map((path) => ({ flag: '--quantized', path })),
        ...pluginInputs(f.plugin),
      ],
      outputs: [
        { flag: '--out', path: f.out },
        ...(f.report !== undefined ? [{ flag: '--report', path: f.report }] : []),
      ],
    });
    const rt = await setup(f);
    io.err(`qbnn eval: ${runtimeLine(rt)}\n`);
    const t0 = performance.now();
    let model: Module | null = null;
    let cfg: BayesModelConfig | undefined;
    let imported: ImportedConfig | undefined;
    if (f.checkpoint !== undefined) {
      const c = await loadFloatCheckpoint(f.checkpoint);
      model = c.model;
      cfg = c.config;
      imported = c.imported;
      if (cfg === undefined && dataFile === undefined) {
        model.dispose();
        throw new UsageError(
          `qbnn eval: ${f.checkpoint} is an imported model: give its test data with --data FILE (.pt or .safetensors holding x and y)`,
        );
      }
    }
    try {
      const quantized = [];
      for (const q of qfiles) quantized.push({ name: stem(q), model: await loadQuantModel(q) });
      let split: { name: string; test: ImageSet } | undefined;
      let regression: { name: string; x: Float32Array; n: number; targets: Float32Array } | undefined;
      let floatInputShape = cfg && dataFile === undefined ? inputShapeOf(cfg.model) : undefined;
      let ood: OodData | null = null;
      if (dataFile !== undefined) {
        const d = loadDataFile(dataFile, '--data');
        const n = Math.min(f['test-size'] ?? d.shape[0], d.shape[0]);
        if (d.targets !== undefined) {
          if (oodFile !== undefined || f.throughput)
            throw new UsageError(
              `qbnn eval: --data ${dataFile} holds regression targets; --ood and --throughput are for classification`,
            );
          io.err(
            `note: --data ${dataFile}: 'y' is floating point, so it is read as regression targets (save class labels as an integer tensor)\n`,
          );
          const per = d.x.length / d.shape[0];
          regression = { name: d.name, x: d.x.subarray(0, n * per), n, targets: d.targets.subarray(0, n) };
        } else {
          split = { name: d.name, test: head(asExampleSet(d, '--data'), n) };
          floatInputShape = fileInputShape(dataFile, '--data', d.shape.slice(1), cfg?.model);
          ood = oodFile !== undefined ? oodFromFile(oodFile, d.shape, f['ood-size']) : null;
        }
      } else {
        const ds = cfg?.dataset;
        const data = (f.data ?? ds?.name ?? 'mnist') as DatasetName;
        split = loadClassification(data, {
          trainSize: f['train-size'] ?? ds?.trainSize ?? 8000,
          testSize: f['test-size'] ?? ds?.testSize ?? 2000,
          seed: ds?.seed ?? f.seed,
        });
        ood =
          oodFile !== undefined
            ? oodFromFile(oodFile, [0, ...split.test.shape.slice(1)], f['ood-size'])
            : loadOod(split.name, split.test, f['ood-size'], f.seed, f.ood as OodChoice);
      }
      const setName = split?.name ?? regression!.name;
      const n = split ? count(split.test) : regression!.n;
      io.err(
        `data: ${n} ${setName} test ${regression ? 'rows (regression targets)' : 'examples'}; ${ood?.note ?? 'no OOD set'}\n`,
      );
      const { models, throughput } = split
        ? evaluateModels(model, quantized, split.test, ood, {
            samples: f.samples,
            seed: f.seed,
            quiet: f.quiet,
            floatInputShape,
            throughput: f.throughput
              ? { batch: 64, minSeconds: f['throughput-seconds'], backend: rt.backend }
              : undefined,
          })
        : { models: evaluateRegression(model, quantized, regression!, f), throughput: undefined };
      const results: Results = {
        format: 'qbnn-results/1',
        title: `qbnn eval on ${setName}`,
        createdAt: new Date().toISOString(),
        config: {
          command: 'eval',
          ...(f.checkpoint ? { checkpoint: f.checkpoint, ...floatModelConfig(cfg, imported) } : {}),
          ...(qfiles.length ? { quantized: qfiles.join(', ') } : {}),
          data: `${setName} (${n} test)`,
          ood: ood?.name ?? 'none',
          samples: f.samples,
          seed: f.seed,
          backend: rt.backend,
          kernelProvider: rt.provider,
          seconds: Math.round((performance.now() - t0) / 1000),
        },
        notes: [ood?.note ?? 'No OOD set (--ood none).', `Integer engine kernel provider: '${rt.provider}'.`],
        oodName: ood?.name,
        models,
        throughput,
      };
      await writeFileAtomic(out, JSON.stringify(results), { mkdir: true });
      if (reportPath) await writeFileAtomic(reportPath, renderReport(toReportData(results)), { mkdir: true });
      printResults(io, results, f.json);
      if (!f.json) io.out(`\nresults: ${out}${reportPath ? `\nreport:  ${reportPath}` : ''}\n`);
    } finally {
      model?.dispose();
    }
  },
};
