import { checkKnownKeys, QbnnError, Registry } from '@qbnn/core';
import type { Module } from '../module.js';
import type { BuildOptions } from './factory.js';
import { checkFitsCheckpoint } from './fits.js';
import { lenet5, regressionMlp, resnet18 } from './models.js';

/**
 * What a checkpoint holds, handed to an {@link ArchBuilder} that rebuilds a model from it: the
 * name, dtype and shape of every tensor in the file. A config read from a file is untrusted: a
 * builder checks the sizes it takes from the config (widths, ensemble members) against these
 * before allocating anything.
 */
export interface CheckpointContents {
  tensors: Readonly<Record<string, { readonly dtype: string; readonly shape: readonly number[] }>>;
}

/**
 * Builds a model from a JSON-serialisable config (the config is stored in checkpoints, so it
 * must survive `JSON.stringify`). A builder may close over a layer factory: @qbnn/posteriors can
 * register `'lenet5-gaussian'` building `lenet5` with Bayesian layers. When the model is rebuilt
 * from a checkpoint, `contents` describes the file's tensors (see {@link CheckpointContents}).
 */
export type ArchBuilder = (config: Record<string, unknown>, contents?: CheckpointContents) => Module;

/** The architecture registry (a core `Registry`): name to builder. */
export const architectureRegistry = new Registry<ArchBuilder>('architecture');

/** Registers an architecture under a name (ERR_ARG if taken, unless `replace`). */
export function registerArchitecture(name: string, build: ArchBuilder, replace = false): void {
  if (!/^[A-Za-z0-9_.:/-]+$/.test(name))
    throw new QbnnError('ERR_ARG', `architecture name '${name}' is not valid`);
  architectureRegistry.register(name, build, { override: replace });
}

/** Names of the registered architectures, sorted. */
export function architectures(): string[] {
  return architectureRegistry.list().sort();
}

/**
 * Builds a registered architecture (ERR_UNKNOWN for an unknown name). `contents`, when the model
 * is rebuilt from a checkpoint, lets the builder check its config against the file.
 */
export function buildModel(
  name: string,
  config: Record<string, unknown> = {},
  contents?: CheckpointContents,
): Module {
  return architectureRegistry.get(name)(config, contents);
}

const seedOf = (c: Record<string, unknown>) => (typeof c.seed === 'number' ? c.seed : 0);

/**
 * A zoo builder as an ArchBuilder: the config may hold only the builder's keys (and `seed`), else
 * ERR_ARG naming the unknown key (a misspelt `numclasses` silently built the default 10 classes),
 * and a checkpoint's config is checked against its tensors first.
 */
function zooBuilder<C>(
  name: string,
  build: (c: C, opts: BuildOptions) => Module,
  keys: readonly (keyof NonNullable<C> & string)[],
): ArchBuilder {
  const known = [...keys, 'seed'];
  return (c, contents) => {
    checkKnownKeys(`architecture '${name}' config`, c, known);
    if (contents) checkFitsCheckpoint(name, (factory) => build(c as never, { factory }), contents);
    return build(c as never, { seed: seedOf(c) });
  };
}

registerArchitecture(
  'mlp-regression',
  zooBuilder('mlp-regression', regressionMlp, ['inFeatures', 'outFeatures', 'hidden', 'depth']),
);
registerArchitecture('lenet5', zooBuilder('lenet5', lenet5, ['inChannels', 'numClasses', 'imageSize']));
registerArchitecture(
  'resnet18',
  zooBuilder('resnet18', resnet18, ['inChannels', 'numClasses', 'widths', 'widthMultiplier', 'blocks']),
);
