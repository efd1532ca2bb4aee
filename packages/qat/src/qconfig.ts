import { QbnnError, qRange } from '@qbnn/core';
import { FakeQuantize } from './fake-quant.js';
import { createObserver, type ObserverKind, type ObserverOptions } from './observers.js';
import type { ObserverSpec } from './spec.js';

/** How one kind of tensor (weights, or activations) of a layer is quantised. */
export interface TensorQConfig extends ObserverOptions {
  /** 2..8 */
  bits: number;
  /** Signed storage (weights) or unsigned (activations). */
  signed: boolean;
  /** Zero point forced to 0 (signed) / range anchored at 0 (unsigned). */
  symmetric: boolean;
  /** One (scale, zeroPoint) per output channel (weights) instead of one per tensor. */
  perChannel: boolean;
  observer: ObserverKind;
  /** Learn the scale with LSQ during QAT. */
  learnableScale?: boolean;
}

/** The quantisation of one layer: its weights (and every weight-like tensor) and its activations. */
export interface LayerQConfig {
  weight: TensorQConfig;
  activation: TensorQConfig;
}

/**
 * A per-model default plus per-layer overrides keyed by module path ("features.3", "fc1").
 * A key matches its module and everything under it ("features" matches "features.3"); a key
 * ending in "*" matches by prefix. Longer keys are applied after shorter ones, so the most
 * specific wins. Mixed precision (W4 A8 on some layers, W8 A8 elsewhere) is one object.
 */
export interface QConfig extends LayerQConfig {
  layers?: Record<string, { weight?: Partial<TensorQConfig>; activation?: Partial<TensorQConfig> }>;
}

/** Options of {@link defaultQConfig}. */
export interface DefaultQConfigOptions {
  weightBits?: number;
  activationBits?: number;
  /** Per-channel weights (default true). */
  perChannel?: boolean;
  /** Observer of activations: 'minmax' (default for PTQ) or 'ema' (default for QAT). */
  activationObserver?: ObserverKind;
  /** For QAT: EMA observers on activations. */
  qat?: boolean;
}

/**
 * The default: signed asymmetric per-channel min/max weights, unsigned asymmetric activations
 * observed by min/max (PTQ) or a moving average (QAT), 8 bits each unless told.
 */
export function defaultQConfig(opts: DefaultQConfigOptions = {}): QConfig {
  const qc: QConfig = {
    weight: {
      bits: opts.weightBits ?? 8,
      signed: true,
      symmetric: false,
      perChannel: opts.perChannel ?? true,
      observer: 'minmax',
    },
    activation: {
      bits: opts.activationBits ?? 8,
      signed: false,
      symmetric: false,
      perChannel: false,
      observer: opts.activationObserver ?? (opts.qat ? 'ema' : 'minmax'),
      averagingConstant: 0.01,
    },
  };
  validateTensorQConfig(qc.weight, 'weight');
  validateTensorQConfig(qc.activation, 'activation');
  return qc;
}

function matches(key: string, path: string): boolean {
  if (key === '' || key === '*') return true;
  if (key.endsWith('*')) return path.startsWith(key.slice(0, -1));
  return path === key || path.startsWith(`${key}.`);
}

function validateTensorQConfig(t: TensorQConfig, what: string): void {
  qRange(t.bits, t.signed);
  if (what === 'activation' && t.signed) {
    throw new QbnnError('ERR_UNSUPPORTED', 'activations are stored as u8: activation.signed must be false');
  }
}

/**
 * Checks that every per-layer override names a module of the model: a key that matches no path
 * (a typo such as "fc9") would otherwise be ignored silently. `paths` are the model's module
 * paths, as `model.namedModules()` gives them (the root is `''`). Throws an ERR_ARG QbnnError
 * naming the unmatched keys and listing the paths.
 */
export function checkLayerOverrides(qc: QConfig, paths: readonly string[]): void {
  const unmatched = Object.keys(qc.layers ?? {}).filter((k) => !paths.some((p) => matches(k, p)));
  if (unmatched.length === 0) return;
  const named = paths.filter((p) => p !== '').join(', ') || "'' (the model is a single layer)";
  const keys = unmatched.map((k) => `'${k}'`).join(', ');
  throw new QbnnError(
    'ERR_ARG',
    `qconfig.layers: ${keys} ${unmatched.length === 1 ? 'matches' : 'match'} no layer of the model; its layer paths: ${named}`,
  );
}

/** The configuration of the layer at `path`: defaults with every matching override applied. */
export function resolveQConfig(qc: QConfig, path: string): LayerQConfig {
  const out: LayerQConfig = { weight: { ...qc.weight }, activation: { ...qc.activation } };
  const keys = Object.keys(qc.layers ?? {})
    .filter((k) => matches(k, path))
    .sort((a, b) => a.length - b.length);
  for (const k of keys) {
    const o = qc.layers![k];
    Object.assign(out.weight, o.weight ?? {});
    Object.assign(out.activation, o.activation ?? {});
  }
  validateTensorQConfig(out.weight, 'weight');
  validateTensorQConfig(out.activation, 'activation');
  return out;
}

/** The ObserverSpec of a tensor config; `axis` is the channel axis used when per channel. */
export function toSpec(t: TensorQConfig, axis?: number): ObserverSpec {
  return { bits: t.bits, signed: t.signed, symmetric: t.symmetric, axis: t.perChannel ? axis : undefined };
}

/**
 * A FakeQuantize for a tensor config. `overrides` adjust the spec (a standard deviation is
 * unsigned: `{ signed: false }`).
 */
export function makeFakeQuant(
  t: TensorQConfig,
  axis?: number,
  overrides: Partial<ObserverSpec> = {},
): FakeQuantize {
  const spec = { ...toSpec(t, axis), ...overrides };
  if (!spec.signed) spec.symmetric = false;
  return new FakeQuantize(createObserver(t.observer, spec, t), { learnableScale: t.learnableScale });
}
