import { readFileSync, statSync } from 'node:fs';
import { QbnnError } from '@qbnn/core';
import type { ImageSet } from '@qbnn/data';
import { floatValues, intValues, readStateDict } from '@qbnn/interop';
import type { SafeTensor } from '@qbnn/nn';
import { UsageError } from '../args.js';
import { count, head, type OodData } from './data.js';
import { inputShapeOf, MODELS, type ModelName } from './models.js';

/** Largest data file read (the whole file is held in memory while it is decoded). */
export const MAX_DATA_FILE_BYTES = 2 ** 31 - 1;

/** File names a data flag takes as a file rather than a data set name. */
const DATA_FILE = /\.(pt|pth|safetensors)$/i;

/** Whether a `--data` / `--ood` value names a tensor file (by its extension) rather than a data set. */
function isDataFile(value: string): boolean {
  return DATA_FILE.test(value);
}

/**
 * The file a data flag names, or undefined when it names one of `choices`; anything else is a
 * usage error in the style of the other flags' (`--data must be one of ...; got 'x'`).
 */
export function dataFileOf(
  command: string,
  flag: string,
  value: string | undefined,
  choices: readonly string[],
): string | undefined {
  if (value === undefined || choices.includes(value)) return undefined;
  if (isDataFile(value)) return value;
  throw new UsageError(
    `qbnn ${command}: ${flag} must be one of ${choices.join(', ')} or a .pt / .safetensors file; got '${value}'`,
  );
}

/**
 * Examples read from a file: inputs `x` [N, ...] as float32 and, when the file has `y`, class
 * labels (an integer `y` [N]) or regression targets (a floating-point `y` [N]).
 */
export interface DataFile {
  /** The file's base name, for tables. */
  name: string;
  x: Float32Array;
  /** [N, ...per-example shape]. */
  shape: number[];
  labels?: Int32Array;
  targets?: Float32Array;
}

/**
 * Reads a data file: a `torch.save({'x': X, 'y': y}, path)` archive or a safetensors file with
 * tensors `x` and (unless `needLabels` is false) `y`. `x` must be floating point and finite, `y`
 * integer class indices >= 0 or finite float targets, one per row of `x`. Errors are ERR_ARG /
 * ERR_FORMAT and name `flag` and the file.
 */
export function loadDataFile(path: string, flag: string, needLabels = true): DataFile {
  const where = `${flag} ${path}`;
  const size = statSync(path).size;
  if (size > MAX_DATA_FILE_BYTES) {
    throw new QbnnError(
      'ERR_ARG',
      `${where}: ${size} bytes, more than the ${MAX_DATA_FILE_BYTES} a data file may hold`,
    );
  }
  let tensors: Record<string, SafeTensor>;
  try {
    tensors = readStateDict(new Uint8Array(readFileSync(path)));
  } catch (err) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${where}: not a torch.save or safetensors file of tensors (${(err as Error).message})`,
    );
  }
  const keys = Object.keys(tensors);
  const xt = Object.hasOwn(tensors, 'x') ? tensors.x : undefined;
  const yt = Object.hasOwn(tensors, 'y') ? tensors.y : undefined;
  if (xt === undefined || (needLabels && yt === undefined)) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${where}: expected tensors 'x' (inputs [N, ...])${needLabels ? " and 'y' (labels or targets [N])" : ''}, found [${keys.join(', ')}]`,
    );
  }
  if (xt.shape.length < 2 || xt.shape[0] < 1 || xt.shape.some((d) => d < 1)) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${where}: 'x' must be [N, ...] with N >= 1 and no empty dimension, got [${xt.shape}]`,
    );
  }
  const n = xt.shape[0];
  let x: Float32Array;
  try {
    x = floatValues('x', xt);
  } catch (err) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${where}: ${(err as Error).message} (inputs must be floating point, scaled as the model was trained)`,
    );
  }
  for (let i = 0; i < x.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and +-Infinity
    if (x[i] - x[i] !== 0)
      throw new QbnnError('ERR_NAN', `${where}: 'x' holds ${x[i]} at flat index ${i}; inputs must be finite`);
  }
  const out: DataFile = { name: path.replace(/^.*[\\/]/, ''), x, shape: [...xt.shape] };
  if (yt === undefined) return out;
  if (yt.shape.length !== 1 || yt.shape[0] !== n) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${where}: 'y' must be [${n}] (one label or target per row of 'x'), got [${yt.shape}]`,
    );
  }
  if (['F32', 'F64', 'F16', 'BF16'].includes(yt.dtype)) {
    const targets = floatValues('y', yt);
    for (let i = 0; i < n; i++) {
      if (targets[i] - targets[i] !== 0)
        throw new QbnnError(
          'ERR_NAN',
          `${where}: 'y' holds ${targets[i]} at index ${i}; targets must be finite`,
        );
    }
    out.targets = targets;
    return out;
  }
  const labels = intValues('y', yt);
  for (let i = 0; i < n; i++) {
    if (labels[i] < 0)
      throw new QbnnError(
        'ERR_FORMAT',
        `${where}: 'y' holds the class index ${labels[i]} at index ${i}; class indices are >= 0`,
      );
  }
  out.labels = labels;
  return out;
}

/**
 * A data file as the image set the evaluation code reads: rows of `x` with their class labels
 * (all 0 when the file has no `y`, as for an out-of-distribution set), the per-example shape
 * folded into [N, features, 1, 1] (the models are fed `shape`).
 */
export function asExampleSet(d: DataFile, flag: string): ImageSet {
  if (d.targets !== undefined) {
    throw new QbnnError(
      'ERR_ARG',
      `${flag} ${d.name}: 'y' holds float targets; this command needs integer class labels`,
    );
  }
  const n = d.shape[0];
  const labels = d.labels ?? new Int32Array(n);
  let classes = 0;
  for (const l of labels) classes = Math.max(classes, l + 1);
  return {
    images: d.x,
    labels,
    shape: [n, d.x.length / n, 1, 1],
    classNames: Array.from({ length: classes }, (_, c) => String(c)),
  };
}

/**
 * An out-of-distribution set from a file's `x` (its `y`, if any, is not used): the first `size`
 * rows, which must hold as many values each as the test examples of shape `testShape` [N, ...].
 */
export function oodFromFile(path: string, testShape: readonly number[], size: number): OodData {
  const d = loadDataFile(path, '--ood', false);
  const per = d.x.length / d.shape[0];
  const testPer = testShape.slice(1).reduce((a, b) => a * b, 1);
  if (per !== testPer) {
    throw new QbnnError(
      'ERR_ARG',
      `--ood ${path}: 'x' is [${d.shape}], ${per} values an example, but the test examples hold ${testPer} ([${testShape.slice(1)}])`,
    );
  }
  const set = head(asExampleSet({ ...d, labels: undefined, targets: undefined }, '--ood'), size);
  return {
    name: d.name,
    note: `OOD set: the first ${count(set)} rows of ${d.name}`,
    sets: [{ name: d.name, set }],
  };
}

/**
 * The per-example shape `flag`'s file (per-example shape `fileShape` after N) is read in for a
 * model whose cli config names `model`: an image model of the cli (lenet5, mlp) takes its own
 * input shape, so a file's examples of as many values are read in it (MNIST saved as
 * [N, 1, 28, 28] for the MLP) and others are ERR_FORMAT naming both (they failed inside the model
 * with the Monte Carlo batch's shape, or as tfjs' untyped matMul error); any other model (imported,
 * regression) reads the file's own shape.
 */
export function fileInputShape(
  path: string,
  flag: string,
  fileShape: readonly number[],
  model: ModelName | undefined,
): number[] {
  const own = fileShape.slice();
  if (model === undefined || !(MODELS as readonly string[]).includes(model)) return own;
  const want = inputShapeOf(model);
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  if (size(own) !== size(want))
    throw new QbnnError(
      'ERR_FORMAT',
      `${flag} ${path}: 'x' holds examples of [${own}] (${size(own)} values), but the checkpoint's ${model} takes [${want}] (${size(want)} values)`,
    );
  return want;
}
