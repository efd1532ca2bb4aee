import { QbnnError } from '@qbnn/core';
import { decodeSafetensors, type Module, type SafeTensor } from '@qbnn/nn';
import {
  bayesLayers,
  dnnToBnn,
  type GaussianPrior,
  gaussianPrior,
  type PosteriorName,
  type SamplingMode,
} from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { type ArchSpec, buildArch } from './arch.js';
import { BAYESIAN_TORCH_EXTRAS, torchKeyMapping } from './names.js';
import { holdTensorPrior, type PriorBuffersConfig } from './tensor-priors.js';
import { floatValues, intValues } from './tensors.js';
import { readTorchStateDict } from './torch-file.js';
import { ZipArchive } from './zip.js';

/** How many keys of each list a {@link StateDictMismatchError} message names. */
const SHOWN = 16;

/** A key with its shape, for {@link StateDictMismatchError}. */
export interface KeyShape {
  key: string;
  shape: number[];
}

/**
 * The file's state dict does not fit the architecture. Lists the keys the architecture expects
 * but the file lacks (`missing`, with the expected shapes and torch names), the file's keys
 * nothing consumed (`unmatched`), and keys whose shapes differ.
 */
export class StateDictMismatchError extends QbnnError {
  constructor(
    readonly missing: KeyShape[],
    readonly unmatched: KeyShape[],
    readonly shapeMismatches: { key: string; file: number[]; expected: number[] }[],
  ) {
    // The message names the first few of each; the error keeps them all.
    const list = (xs: KeyShape[]) =>
      xs.length
        ? xs
            .slice(0, SHOWN)
            .map((k) => `${k.key} [${k.shape}]`)
            .join(', ') + (xs.length > SHOWN ? `, ... ${xs.length - SHOWN} more` : '')
        : 'none';
    const lines = [
      'the state dict does not match the architecture',
      `  missing from the file (${missing.length}): ${list(missing)}`,
      `  in the file but not in the architecture (${unmatched.length}): ${list(unmatched)}`,
    ];
    if (shapeMismatches.length) {
      lines.push(
        `  shape mismatches (${shapeMismatches.length}): ${shapeMismatches
          .slice(0, SHOWN)
          .map((m) => `${m.key} file [${m.file}] vs expected [${m.expected}]`)
          .join(', ')}`,
      );
    }
    super('ERR_FORMAT', lines.join('\n'));
    this.name = 'StateDictMismatchError';
  }
}

/**
 * Reads the tensors of a PyTorch file: a `torch.save` zip archive (restricted unpickler, see
 * `readTorchFile`) or a safetensors file, told apart by their first bytes.
 */
export function readStateDict(bytes: Uint8Array): Record<string, SafeTensor> {
  if (ZipArchive.looksLikeZip(bytes)) return readTorchStateDict(bytes);
  return decodeSafetensors(bytes).tensors;
}

/** Options of {@link importTorch}. */
export interface ImportOptions {
  /**
   * Convert the layers that are plain (deterministic) in the file into Bayesian layers with this
   * registered posterior, initialised by MOPED from the imported weights (mu = w, sigma =
   * `moped_delta` |w|). Default: keep them deterministic.
   */
  posterior?: PosteriorName;
  /** The options of `posterior` (e.g. MC Dropout's `p`), JSON-serialisable: they go into checkpoints. */
  posteriorOptions?: Record<string, unknown>;
  /** MOPED delta for `posterior` (default 0.1, as Bayesian-Torch). */
  moped_delta?: number;
  /**
   * Prior of the Bayesian layers whose file has no prior buffers (Bayesian-Torch does not save
   * them): N(prior_mu, prior_sigma^2), Bayesian-Torch's `prior_mean` and `prior_variance`
   * (which it uses as a standard deviation). Default N(0, 1).
   */
  prior_mu?: number;
  prior_sigma?: number;
  /** Sampling mode of the Bayesian layers (default: each posterior's own). */
  mode?: SamplingMode;
}

/** What {@link importTorch} returns. */
export interface ImportedModel {
  model: Module;
  /** Paths of the layers that were Bayesian-Torch layers in the file (Gaussian posteriors). */
  bayesianTorchLayers: string[];
  /** Paths of the deterministic layers converted with `posterior` and MOPED. */
  convertedLayers: string[];
  /** Everything needed to rebuild the model (what `saveImported` stores in the checkpoint). */
  config: ImportedConfig;
}

/** A layer's Bayesian form in an {@link ImportedConfig}. */
export interface ImportedLayer {
  posterior: string;
  mode?: SamplingMode;
  posteriorOptions?: Record<string, unknown>;
}

/**
 * The Gaussian prior of a Bayesian layer's weight (and bias): constant, or per element (an older
 * Bayesian-Torch file's prior buffers), then held in the checkpoint as the layer's buffers
 * `prior_weight_mu`, `prior_weight_sigma` (`prior_bias_*`) of the given shape.
 */
export interface LayerPriorConfig {
  weight: { mean: number; sigma: number } | PriorBuffersConfig;
  bias?: { mean: number; sigma: number } | PriorBuffersConfig;
}

/** The JSON description of an imported model: its architecture and its Bayesian layers. */
export interface ImportedConfig {
  arch: ArchSpec | string;
  layers: Record<string, ImportedLayer>;
  /** Priors by Bayesian layer path (layers with the default N(0, 1) prior may be absent). */
  priors: Record<string, LayerPriorConfig>;
}

const BAYES_SUFFIXES = ['.mu_weight', '.mu_kernel'];

/** Paths of the Bayesian-Torch layers in a state dict (`conv1` for `conv1.mu_kernel`). */
function bayesianTorchPaths(keys: string[]): string[] {
  const out: string[] = [];
  for (const k of keys) {
    const s = BAYES_SUFFIXES.find((x) => k.endsWith(x));
    if (s) out.push(k.slice(0, -s.length));
  }
  return out;
}

/** A prior from Bayesian-Torch's prior buffers: numbers when the buffer is constant. */
function priorFromBuffers(
  sd: Record<string, SafeTensor>,
  mu: string,
  sigma: string,
): GaussianPrior | undefined {
  const m = sd[mu];
  const s = sd[sigma];
  if (!m || !s) return undefined;
  const scalar = (name: string, t: SafeTensor): number | tf.Tensor => {
    const v = floatValues(name, t);
    return v.length > 0 && v.every((x) => x === v[0]) ? v[0] : tf.keep(tf.tensor(v, t.shape));
  };
  return gaussianPrior(scalar(mu, m), scalar(sigma, s));
}

function constantPrior(p: GaussianPrior | undefined): { mean: number; sigma: number } | undefined {
  return p && typeof p.mean === 'number' && typeof p.sigma === 'number'
    ? { mean: p.mean, sigma: p.sigma }
    : undefined;
}

/**
 * Imports a PyTorch state dict (`torch.save` or safetensors bytes) into the qbnn model an
 * architecture describes:
 * - plain torch layers (`weight`, `bias`, `running_mean`, `weight_ih_l0`, ...) load into the
 *   deterministic layers, under the same names;
 * - Bayesian-Torch layers (`mu_weight` / `rho_weight`, `mu_kernel` / `rho_kernel`, `mu_bias` /
 *   `rho_bias`, Reparameterization and Flipout alike) become Gaussian Bayesian layers with
 *   the same mu and rho (both libraries use sigma = log1p(exp(rho))); their priors come from the
 *   file's prior buffers when present, else from `prior_mu` / `prior_sigma`;
 * - with `posterior`, the remaining deterministic layers are converted by MOPED.
 * Every key must match: otherwise a {@link StateDictMismatchError} lists the missing and
 * unmatched keys with their shapes. Nothing is assigned until every check passed.
 */
export function importTorch(
  bytes: Uint8Array,
  arch: ArchSpec | string,
  options: ImportOptions = {},
): ImportedModel {
  const sd = readStateDict(bytes);
  const model = buildArch(arch, { contents: { tensors: sd }, source: 'the state dict', check: 'memory' });
  try {
    return importInto(model, sd, arch, options);
  } catch (err) {
    model.dispose();
    throw err;
  }
}

function importInto(
  model: Module,
  sd: Record<string, SafeTensor>,
  arch: ArchSpec | string,
  options: ImportOptions,
): ImportedModel {
  const leaves = bayesianTorchPaths(Object.keys(sd));
  // The modules to make Bayesian: those a Bayesian-Torch leaf sits at or inside (an LSTM's gates).
  const candidates = model.namedModules().map(([p]) => p);
  const targets = candidates.filter((p) => p !== '' && leaves.some((l) => l === p || l.startsWith(`${p}.`)));
  const outer = targets.filter((p) => !targets.some((q) => q !== p && p.startsWith(`${q}.`)));
  const { converted: bt } =
    outer.length > 0
      ? dnnToBnn(model, { posterior: 'gaussian', mode: options.mode, include: outer })
      : { converted: [] as string[] };
  const mapping = torchKeyMapping(model);
  const own = model.stateDict();
  const missing: KeyShape[] = [];
  const mismatched: { key: string; file: number[]; expected: number[] }[] = [];
  const consumed = new Set<string>();
  const values = new Map<string, tf.Tensor>();
  try {
    for (const { qbnn, torch } of mapping) {
      const target = own[qbnn];
      const src = sd[torch];
      if (!src) {
        missing.push({ key: torch, shape: [...target.shape] });
        continue;
      }
      consumed.add(torch);
      if (src.shape.length !== target.shape.length || src.shape.some((d, i) => d !== target.shape[i])) {
        mismatched.push({ key: torch, file: src.shape, expected: [...target.shape] });
        continue;
      }
      const data = target.dtype === 'int32' ? intValues(torch, src) : floatValues(torch, src);
      values.set(qbnn, tf.tensor(data, target.shape, target.dtype));
    }
    const layerPaths = new Set(mapping.filter((m) => m.layer !== undefined).map((m) => m.layer as string));
    const unmatched = Object.keys(sd)
      .filter((k) => !consumed.has(k))
      .filter((k) => {
        const dot = k.lastIndexOf('.');
        return !(layerPaths.has(k.slice(0, dot)) && BAYESIAN_TORCH_EXTRAS.includes(k.slice(dot + 1)));
      })
      .map((k) => ({ key: k, shape: sd[k].shape }));
    if (missing.length || unmatched.length || mismatched.length) {
      throw new StateDictMismatchError(missing, unmatched, mismatched);
    }
    model.loadStateDict(Object.fromEntries(values));
  } finally {
    tf.dispose([...values.values()]);
  }
  const layers: Record<string, ImportedLayer> = {};
  const defaultPrior = gaussianPrior(options.prior_mu ?? 0, options.prior_sigma ?? 1);
  for (const [path, layer] of bayesLayers(model)) {
    const w = priorFromBuffers(sd, `${path}.prior_weight_mu`, `${path}.prior_weight_sigma`);
    const b = priorFromBuffers(sd, `${path}.prior_bias_mu`, `${path}.prior_bias_sigma`);
    layer.prior = w ? { weight: w, bias: b } : defaultPrior;
  }
  for (const p of bt) layers[p] = { posterior: 'gaussian', mode: options.mode };
  let convertedLayers: string[] = [];
  if (options.posterior) {
    convertedLayers = dnnToBnn(model, {
      posterior: options.posterior,
      posteriorOptions: options.posteriorOptions as never,
      moped_enable: true,
      moped_delta: options.moped_delta ?? 0.1,
      prior_mu: options.prior_mu ?? 0,
      prior_sigma: options.prior_sigma ?? 1,
      mode: options.mode,
      exclude: bt,
    }).converted;
    for (const p of convertedLayers)
      layers[p] = {
        posterior: options.posterior,
        mode: options.mode,
        posteriorOptions: options.posteriorOptions,
      };
  }
  const priors: Record<string, LayerPriorConfig> = {};
  for (const [path, layer] of bayesLayers(model)) {
    const held = holdTensorPrior(layer);
    const pr = layer.prior;
    const weight = held.weight ?? constantPrior('kind' in pr ? pr : pr.weight);
    const bias = held.bias ?? ('kind' in pr ? undefined : constantPrior(pr.bias));
    if (weight) priors[path] = bias ? { weight, bias } : { weight };
  }
  return { model, bayesianTorchLayers: bt, convertedLayers, config: { arch, layers, priors } };
}
