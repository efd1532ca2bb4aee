import { QbnnError } from '@qbnn/core';
import { type CheckpointContents, type Module, registerArchitecture, serializeModel } from '@qbnn/nn';
import { bayesLayers, dnnToBnn, gaussianPrior, type PosteriorName } from '@qbnn/posteriors';
import { buildArch } from './arch.js';
import type { ImportedConfig, ImportedModel, LayerPriorConfig } from './import.js';
import { makePriorBuffers } from './tensor-priors.js';

/** The architecture name under which imported models are saved and rebuilt by `nn.load`. */
export const IMPORTED_ARCH = 'qbnn-interop/imported';

/**
 * Builds the (untrained) model an {@link ImportedConfig} describes: the architecture, its
 * Bayesian layers with their posteriors and modes, and their constant priors. `nn.load` calls
 * this for checkpoints written by {@link serializeImported} once @qbnn/interop is imported,
 * with the file's `contents`, against which the config's sizes are checked before building.
 */
export function buildImported(config: ImportedConfig, contents?: CheckpointContents): Module {
  if (typeof config !== 'object' || config === null || !('arch' in config)) {
    throw new QbnnError('ERR_FORMAT', `${IMPORTED_ARCH}: config has no arch`);
  }
  const model = buildArch(config.arch, contents && { contents, source: 'the checkpoint', check: 'exact' });
  const groups = new Map<string, string[]>();
  for (const [path, l] of Object.entries(config.layers ?? {})) {
    const key = JSON.stringify([l.posterior, l.mode ?? null, l.posteriorOptions ?? null]);
    groups.set(key, [...(groups.get(key) ?? []), path]);
  }
  for (const [key, paths] of groups) {
    const [posterior, mode, posteriorOptions] = JSON.parse(key);
    const { converted } = dnnToBnn(model, {
      posterior: posterior as PosteriorName,
      mode: mode ?? undefined,
      posteriorOptions: posteriorOptions ?? undefined,
      include: paths,
    });
    if (converted.length !== paths.length) {
      model.dispose();
      throw new QbnnError(
        'ERR_FORMAT',
        `${IMPORTED_ARCH}: layers [${paths}] are not all convertible in this architecture`,
      );
    }
  }
  const priors = config.priors ?? {};
  for (const [path, layer] of bayesLayers(model)) {
    const p = priors[path];
    if (!p) continue;
    const constant = (c: LayerPriorConfig['weight'] | undefined) =>
      c && 'mean' in c ? gaussianPrior(c.mean, c.sigma) : undefined;
    const held = (c: LayerPriorConfig['weight'] | undefined) => (c && 'shape' in c ? c : undefined);
    makePriorBuffers(
      layer,
      { weight: held(p.weight), bias: held(p.bias) },
      { weight: constant(p.weight), bias: constant(p.bias) },
    );
  }
  return model;
}

registerArchitecture(
  IMPORTED_ARCH,
  (c, contents) => buildImported(c as unknown as ImportedConfig, contents),
  true,
);

/**
 * An imported model as the bytes of an ordinary qbnn checkpoint (safetensors) that
 * `nn.deserializeModel` (or `nn.load` of the saved file) rebuilds from the bytes alone
 * (architecture {@link IMPORTED_ARCH}, the import's config). `saveImported` of
 * '@qbnn/interop/node' writes them to a file.
 */
export function serializeImported(
  imported: ImportedModel,
  metadata: Record<string, string> = {},
): Uint8Array {
  return serializeModel(imported.model, {
    arch: IMPORTED_ARCH,
    config: imported.config as unknown as Record<string, unknown>,
    metadata,
  });
}
