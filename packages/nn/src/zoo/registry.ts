import { QbnnError } from '@qbnn/core';
import type { Module } from '../module.js';
import { lenet5, regressionMlp, resnet18 } from './models.js';

/**
 * Builds a model from a JSON-serialisable config (the config is stored in checkpoints, so it
 * must survive `JSON.stringify`). A builder may close over a layer factory: @qbnn/posteriors can
 * register `'lenet5-gaussian'` building `lenet5` with Bayesian layers.
 */
export type ArchBuilder = (config: Record<string, unknown>) => Module;

const archs = new Map<string, ArchBuilder>();

/** Registers an architecture under a name (ERR_ARG if taken, unless `replace`). */
export function registerArchitecture(name: string, build: ArchBuilder, replace = false): void {
  if (!/^[A-Za-z0-9_.:/-]+$/.test(name))
    throw new QbnnError('ERR_ARG', `architecture name '${name}' is not valid`);
  if (archs.has(name) && !replace)
    throw new QbnnError('ERR_ARG', `architecture '${name}' is already registered`);
  archs.set(name, build);
}

/** Names of the registered architectures. */
export function architectures(): string[] {
  return [...archs.keys()].sort();
}

/** Builds a registered architecture (ERR_UNKNOWN for an unknown name). */
export function buildModel(name: string, config: Record<string, unknown> = {}): Module {
  const b = archs.get(name);
  if (!b) {
    throw new QbnnError(
      'ERR_UNKNOWN',
      `unknown architecture '${name}' (known: ${architectures().join(', ')})`,
    );
  }
  return b(config);
}

const seedOf = (c: Record<string, unknown>) => (typeof c.seed === 'number' ? c.seed : 0);

registerArchitecture('mlp-regression', (c) => regressionMlp(c as never, { seed: seedOf(c) }));
registerArchitecture('lenet5', (c) => lenet5(c, { seed: seedOf(c) }));
registerArchitecture('resnet18', (c) => resnet18(c, { seed: seedOf(c) }));
