import { readFileSync } from 'node:fs';
import { QbnnError } from '@qbnn/core';
import { type ArchSpec, type ImportedModel, importTorch } from '@qbnn/interop';
import { saveImported } from '@qbnn/interop/node';
import { bayesLayers, type GaussianPrior, type SamplingMode } from '@qbnn/posteriors';
import { parseFlags, UsageError } from '../args.js';
import { checkFileFlags } from '../file-flags.js';
import { readJsonFile } from '../files.js';
import { type BayesModelConfig, checkPosterior } from '../lib/models.js';
import { type Command, commonFlags, type Io, pluginInputs, runtimeLine, saveModel, setup } from './common.js';

const SAMPLING_MODES = ['weights', 'local', 'flipout', 'mean'] as const;

const flags = {
  arch: {
    type: 'string',
    help: 'architecture: a zoo name (lenet5, resnet18, mlp-regression) or a JSON file ({"layers": [...]} or {"zoo": ..., "config": ...}) (required)',
  },
  posterior: {
    type: 'string',
    help: 'convert the plain (deterministic) layers of the file to this posterior with MOPED',
  },
  'moped-delta': { type: 'number', help: 'MOPED: sigma = delta |w|', default: 0.1, min: 1e-6, max: 10 },
  'prior-sigma': {
    type: 'number',
    help: 'prior N(0, sigma^2) of the Bayesian layers: sigma (Bayesian-Torch prior_sigma / prior_variance)',
    default: 1,
    min: 1e-12,
    max: 1e6,
  },
  mode: { type: 'string', help: 'sampling mode of the Bayesian layers', choices: SAMPLING_MODES },
  out: { type: 'string', help: 'qbnn checkpoint to write (.safetensors) (required)' },
  plugin: commonFlags.plugin,
  'plugin-timeout': commonFlags['plugin-timeout'],
  json: commonFlags.json,
  'no-native': commonFlags['no-native'],
} as const;

/** The zoo architecture the cli's own checkpoints use when the import is one of them. */
function cliConfig(arch: ArchSpec | string, imported: ImportedModel): BayesModelConfig | null {
  if (arch !== 'lenet5') return null;
  const layers = bayesLayers(imported.model);
  const posteriors = new Set(layers.map(([, l]) => l.posterior.kind));
  const std = layers.every(([, l]) => {
    const p = l.prior as GaussianPrior;
    return p.kind === 'gaussian' && p.mean === 0 && p.sigma === 1 && l.mode === undefined;
  });
  if (layers.length !== 4 || posteriors.size !== 1 || !std) return null;
  return { model: 'lenet5', posterior: [...posteriors][0], seed: 0 };
}

export const importCommand: Command = {
  name: 'import',
  summary: 'import a PyTorch / Bayesian-Torch model (torch.save or safetensors) as a qbnn checkpoint',
  usage:
    'qbnn import <file.pt|file.safetensors> --arch <zoo name|arch.json> [--posterior NAME] --out <model.safetensors>',
  flags,
  example: 'qbnn import lenet.pt --arch lenet5 --out qbnn-out/lenet.safetensors',
  async run(argv: string[], io: Io) {
    const [file, ...rest] = argv;
    if (file === undefined || file.startsWith('--')) {
      throw new UsageError(
        'qbnn import: give the file to import first: qbnn import <file.pt|file.safetensors> ...',
      );
    }
    const f = parseFlags('import', rest, flags);
    if (f.arch === undefined) throw new UsageError('qbnn import: --arch <zoo name|arch.json> is required');
    if (f.out === undefined) throw new UsageError('qbnn import: --out <model.safetensors> is required');
    const archIsFile = f.arch.endsWith('.json');
    const [out] = checkFileFlags('import', {
      inputs: [
        { flag: 'the file to import', path: file },
        ...(archIsFile ? [{ flag: '--arch', path: f.arch }] : []),
        ...pluginInputs(f.plugin),
      ],
      outputs: [{ flag: '--out', path: f.out }],
    });
    const rt = await setup(f);
    io.err(`qbnn import: ${runtimeLine(rt)}\n`);
    if (f.posterior !== undefined) checkPosterior(f.posterior);
    const arch = archIsFile ? (readJsonFile(f.arch, '--arch', 16 * 2 ** 20) as ArchSpec) : f.arch;
    let imported: ImportedModel;
    try {
      imported = importTorch(new Uint8Array(readFileSync(file)), arch, {
        posterior: f.posterior,
        moped_delta: f['moped-delta'],
        prior_sigma: f['prior-sigma'],
        mode: f.mode as SamplingMode | undefined,
      });
    } catch (err) {
      if (err instanceof QbnnError) throw new QbnnError(err.code, `${file}: ${err.message}`);
      throw err;
    }
    try {
      // A Bayesian LeNet-5 with one posterior is written as the cli's own checkpoint kind, so
      // `qbnn quantize` and `qbnn eval` take it with the data set it was trained on; anything else
      // as an interop checkpoint (nn.load), which they take with the user's data (--data FILE).
      const cfg = cliConfig(arch, imported);
      if (cfg) await saveModel(imported.model, cfg, out);
      else await saveImported(imported, out);
      const result = {
        checkpoint: out,
        arch: typeof arch === 'string' ? arch : archIsFile ? f.arch : 'json',
        bayesianTorchLayers: imported.bayesianTorchLayers,
        convertedLayers: imported.convertedLayers,
        parameters: imported.model.numParameters(),
        quantizable: cfg !== null,
      };
      if (f.json) io.out(`${JSON.stringify(result)}\n`);
      else {
        io.out(
          `imported ${file} as ${result.arch} (${result.parameters} parameters)\n` +
            `  Bayesian-Torch layers (Gaussian): ${result.bayesianTorchLayers.join(', ') || 'none'}\n` +
            `  converted with ${f.posterior ?? '-'} + MOPED: ${result.convertedLayers.join(', ') || 'none'}\n` +
            `checkpoint: ${out}${cfg ? ' (qbnn quantize / qbnn eval take it)' : ' (qbnn quantize / qbnn eval take it with --data FILE; nn.load after importing @qbnn/interop)'}\n`,
        );
      }
    } finally {
      imported.model.dispose();
    }
  },
};
