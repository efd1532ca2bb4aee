import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { floatKernelSet, QbnnError } from '@qbnn/core';
import type { ImageSet } from '@qbnn/data';
import { IMPORTED_ARCH, type ImportedConfig } from '@qbnn/interop';
import { deserializeModel, type Module, serializeModel } from '@qbnn/nn';
import { load, save } from '@qbnn/nn/node';
import type { QuantizedModel } from '@qbnn/qat';
import { loadQuantized, saveQuantized } from '@qbnn/qat/node';
import * as tf from '@tensorflow/tfjs-core';
import type { FlagSpecs } from '../args.js';
import type { FileFlag } from '../file-flags.js';
import { installInterruptHandler, throwIfInterrupted } from '../interrupt.js';
import { BAYES_ARCH, type BayesModelConfig, MAX_SEED } from '../lib/models.js';
import { initRuntime, loadPlugin, pluginFile, type RuntimeInfo } from '../lib/runtime.js';

/** Where a command writes: human text and machine output. */
export interface Io {
  /** stdout (tables, JSON). */
  out(s: string): void;
  /** stderr (status lines). */
  err(s: string): void;
}

/** A command of the cli. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpecs;
  example: string;
  run(argv: string[], io: Io): Promise<void>;
}

/** Flags every heavy command takes. */
export const commonFlags = {
  seed: { type: 'int', help: 'seed of splits, initialisation, sampling', default: 0, min: 0, max: MAX_SEED },
  samples: { type: 'int', help: 'Monte Carlo samples L per prediction', default: 8, min: 1, max: 1000 },
  plugin: { type: 'string', help: 'module to import first (registers posteriors); comma-separated list' },
  'plugin-timeout': {
    type: 'number',
    help: 'seconds a --plugin may take to import and register',
    default: 60,
    min: 0.001,
    max: 3600,
  },
  json: { type: 'boolean', help: 'print machine-readable results (JSON) on stdout', default: false },
  quiet: { type: 'boolean', help: 'no progress bars', default: false },
  'no-native': { type: 'boolean', help: 'do not load @qbnn/native-amx', default: false },
} as const satisfies FlagSpecs;

/** `--throughput-seconds` of the commands that measure throughput. */
export const throughputSecondsFlag = {
  type: 'number',
  help: 'minimum timing per implementation',
  default: 1,
  min: 0,
  max: 600,
} as const satisfies FlagSpecs[string];

/** Interrupt handler, plugins, tfjs and kernels: what every heavy command does first. */
export async function setup(flags: {
  plugin?: string;
  'plugin-timeout': number;
  'no-native'?: boolean;
}): Promise<RuntimeInfo> {
  installInterruptHandler();
  const rt = await initRuntime({ native: !flags['no-native'] });
  for (const p of pluginSpecs(flags.plugin)) {
    try {
      await loadPlugin(p, { timeoutSeconds: flags['plugin-timeout'] });
    } catch (err) {
      throw new QbnnError('ERR_ARG', `--plugin ${p}: ${(err as Error).message}`);
    }
  }
  return rt;
}

/** The modules named by --plugin (a comma-separated list). */
export function pluginSpecs(plugin: string | undefined): string[] {
  return (plugin ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The --plugin modules given as files, as input file flags (package names are not files). */
export function pluginInputs(plugin: string | undefined): FileFlag[] {
  return pluginSpecs(plugin)
    .filter((p) => pluginFile(p) !== null)
    .map((p) => ({ flag: '--plugin', path: p }));
}

/** One line about the kernels, saying which provider runs the integer engine. */
export function runtimeLine(rt: RuntimeInfo): string {
  const native = rt.nativeLoaded
    ? `native int8 kernels loaded (${rt.nativeIsa ?? 'unknown ISA'})`
    : `native int8 kernels not used: ${rt.nativeReason}`;
  const fp32 = rt.backend === 'wasm' ? floatKernelSet() : null;
  return `tfjs backend ${rt.backend}${rt.backendFallback ? ` (wasm failed: ${rt.backendFallback})` : ''}; integer engine provider '${rt.provider}'; ${native}; ${fp32?.description ?? 'fp32 on tfjs kernels'}`;
}

/** Images as tensors: x [N, ...inputShape] float32 (default [N, C, H, W]), y [N] int32. */
export function imageTensors(set: ImageSet, inputShape?: readonly number[]): { x: tf.Tensor; y: tf.Tensor } {
  return {
    x: tf.tensor(set.images, inputShape ? [set.shape[0], ...inputShape] : set.shape),
    y: tf.tensor1d(set.labels, 'int32'),
  };
}

/** Saves a float Bayesian model as safetensors (atomic: temp file + rename), rebuildable from the file. */
export async function saveModel(model: Module, cfg: BayesModelConfig, path: string): Promise<void> {
  throwIfInterrupted();
  mkdirSync(dirname(path), { recursive: true });
  await save(model, path, {
    arch: BAYES_ARCH,
    config: cfg as unknown as Record<string, unknown>,
    metadata: { 'qbnn.cli.posterior': cfg.posterior, 'qbnn.cli.model': cfg.model },
  });
}

/** Loads a float Bayesian model saved by {@link saveModel}. */
export async function loadModel(
  path: string,
  flag = '--checkpoint',
): Promise<{ model: Module; config: BayesModelConfig }> {
  const c = await loadFloatCheckpoint(path, flag);
  if (c.config === undefined) {
    c.model.dispose();
    throw new QbnnError(
      'ERR_ARG',
      `${flag} ${path}: not a model written by 'qbnn train' (architecture '${IMPORTED_ARCH}')`,
    );
  }
  return { model: c.model, config: c.config };
}

/**
 * A float checkpoint the cli takes: its own (`config` holds the model, posterior and data
 * split) or one written by `qbnn import` for an architecture of its own (`imported`; such a model
 * needs its data given as a file).
 */
export type FloatCheckpoint =
  | { model: Module; config: BayesModelConfig; imported?: undefined }
  | { model: Module; config?: undefined; imported: ImportedConfig };

/** Loads a {@link FloatCheckpoint}, naming the flag on failure. */
export async function loadFloatCheckpoint(path: string, flag = '--checkpoint'): Promise<FloatCheckpoint> {
  let loaded: Awaited<ReturnType<typeof load>>;
  try {
    loaded = await load(path);
  } catch (err) {
    throw new QbnnError('ERR_ARG', `${flag} ${path}: ${(err as Error).message}`);
  }
  if (loaded.arch === BAYES_ARCH) {
    return { model: loaded.model, config: loaded.config as unknown as BayesModelConfig };
  }
  if (loaded.arch === IMPORTED_ARCH) {
    return { model: loaded.model, imported: loaded.config as unknown as ImportedConfig };
  }
  loaded.model.dispose();
  throw new QbnnError(
    'ERR_ARG',
    `${flag} ${path}: not a model written by 'qbnn train' or 'qbnn import' (architecture '${loaded.arch}')`,
  );
}

/** An independent copy of a float model (through its serialised form). */
export function copyModel(model: Module, cfg: BayesModelConfig): Module {
  const bytes = serializeModel(model, {
    arch: BAYES_ARCH,
    config: cfg as unknown as Record<string, unknown>,
  });
  return deserializeModel(bytes).model;
}

/** Saves a quantised model (safetensors, atomic). */
export async function saveQuantModel(qm: QuantizedModel, path: string): Promise<void> {
  throwIfInterrupted();
  mkdirSync(dirname(path), { recursive: true });
  await saveQuantized(qm, path);
}

/** Loads a quantised model, naming the flag on failure. */
export async function loadQuantModel(path: string, flag = '--quantized'): Promise<QuantizedModel> {
  try {
    return await loadQuantized(path);
  } catch (err) {
    throw new QbnnError('ERR_ARG', `${flag} ${path}: ${(err as Error).message}`);
  }
}

/** A display name for a file: its base name without extension. */
export function stem(path: string): string {
  return basename(path).replace(/\.[^.]+$/, '');
}

/** Formats a number for the tables. */
export function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v.toFixed(digits);
}

/** A plain text table with aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), sep, ...rows.map(line)].join('\n');
}
