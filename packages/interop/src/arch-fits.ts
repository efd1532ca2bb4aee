import { QbnnError } from '@qbnn/core';
import type { CheckpointContents } from '@qbnn/nn';

type Spec = Record<string, unknown>;

/**
 * A size read from a spec for counting only: anything but a finite positive number counts 0,
 * and the layer's own constructor refuses it with the precise message when it is built.
 */
function count(s: Spec, key: string): number {
  const v = s[key];
  return typeof v === 'number' && Number.isFinite(v) ? Math.max(0, v) : 0;
}

function kernelVolume(s: Spec): number {
  const k = s.kernel_size;
  if (Array.isArray(k))
    return k.reduce((p: number, v) => p * (typeof v === 'number' ? Math.max(0, v) : 0), 1);
  return count(s, 'kernel_size') ** convAxes(s.type);
}

const convAxes = (type: unknown): number => (/1d$/.test(String(type)) ? 1 : /3d$/.test(String(type)) ? 3 : 2);

const bias = (s: Spec, n: number): number => (s.bias === false ? 0 : n);

function convValues(s: Spec): number {
  const groups = Math.max(1, count(s, 'groups'));
  const out = count(s, 'out_channels');
  return (count(s, 'in_channels') / groups) * out * kernelVolume(s) + bias(s, out);
}

function lstmValues(s: Spec): number {
  const h = count(s, 'hidden_size');
  const layers = Math.max(1, count(s, 'num_layers'));
  const first = 4 * h * (count(s, 'input_size') + h);
  return first + (layers - 1) * 4 * h * 2 * h + layers * bias(s, 4 * h);
}

/**
 * The fewest parameter values a layer kind's weights take in a checkpoint, from its spec alone
 * (a Bayesian layer stores more: mu and rho). Kinds without an entry (activations, pooling,
 * layer kinds registered by plugins) count nothing.
 */
const VALUES: Record<string, (s: Spec) => number> = {
  Linear: (s) => count(s, 'in_features') * count(s, 'out_features') + bias(s, count(s, 'out_features')),
  Conv1d: convValues,
  Conv2d: convValues,
  Conv3d: convValues,
  ConvTranspose1d: convValues,
  ConvTranspose2d: convValues,
  ConvTranspose3d: convValues,
  BatchNorm1d: (s) => (s.affine === false ? 0 : 2 * count(s, 'num_features')),
  BatchNorm2d: (s) => (s.affine === false ? 0 : 2 * count(s, 'num_features')),
  LSTM: lstmValues,
};

/** Weight layers and parameter values a list of layer specs implies (nested Sequentials included). */
function tally(layers: unknown, sum: { layers: number; values: number }): void {
  if (!Array.isArray(layers)) return;
  for (const raw of layers) {
    if (typeof raw !== 'object' || raw === null) continue;
    const s = raw as Spec;
    if (s.type === 'Sequential') {
      tally(s.layers, sum);
      continue;
    }
    const values = typeof s.type === 'string' ? (VALUES[s.type]?.(s) ?? 0) : 0;
    if (values > 0) {
      sum.layers++;
      sum.values += values;
    }
  }
}

/**
 * How strictly {@link checkLayersFit} compares: `exact` (a description read from a checkpoint
 * file: no more weight layers than tensors, no more values than the file holds) or `memory` (a
 * description given next to a state dict: a plausible but wrong one is let through to the
 * key-by-key mismatch report, and only one implying more than twice the state dict's values
 * plus 2^20 is refused before it allocates).
 */
export type FitCheck = 'exact' | 'memory';

/**
 * Checks, before anything is built, that a `{ layers }` architecture fits the tensors it is to
 * be loaded from: every weight layer takes at least one tensor and at least its deterministic
 * parameter count of values, so an architecture implying more layers than `contents` has tensors
 * or more values than it holds cannot match it. A description is otherwise free to claim a
 * 1e6 x 1e6 layer, which would allocate terabytes (or throw a RangeError) before any check.
 * @param source what `contents` describes, for the message ('the state dict', 'the checkpoint').
 * @throws QbnnError ERR_FORMAT naming both counts.
 */
export function checkLayersFit(
  layers: unknown,
  contents: CheckpointContents,
  source: string,
  check: FitCheck = 'exact',
): void {
  const shapes = Object.values(contents.tensors).map((t) => t.shape);
  const tensors = shapes.length;
  const values = shapes.reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
  const sum = { layers: 0, values: 0 };
  tally(layers, sum);
  const tooMany = check === 'exact' && sum.layers > tensors;
  const tooLarge = sum.values > (check === 'exact' ? values : 2 * values + 2 ** 20);
  if (tooMany || tooLarge) {
    throw new QbnnError(
      'ERR_FORMAT',
      `architecture implies more than ${tooMany ? `${tensors} weight layers` : `${values} parameter values`} (${sum.layers} weight layers, ${sum.values} values), all ${source} holds (${tensors} tensors, ${values} values)`,
    );
  }
}
