import { keysOf } from '@qbnn/core';
import { GaussianPosterior } from './gaussian.js';
import type { PointInitOptions } from './init.js';
import type { LocScaleOptions } from './locscale.js';
import { type McDropoutOptions, McDropoutPosterior } from './mcdropout.js';
import { RadialPosterior } from './radial.js';
import { hasPosterior, registerPosterior } from './registry.js';
import { SghmcPosterior, type SghmcPosteriorOptions } from './sghmc.js';

declare module './types.js' {
  interface PosteriorOptionsMap {
    gaussian: import('./gaussian.js').GaussianOptions;
    radial: import('./radial.js').RadialOptions;
    mcdropout: import('./mcdropout.js').McDropoutOptions;
    sghmc: import('./sghmc.js').SghmcPosteriorOptions;
  }
}

// The option keys of each built-in (checked by the registry: a misspelt key is an ERR_ARG);
// keysOf makes the compiler check that each list names every key of its options.
const pointKeys = ['init', 'biasInit', 'initFrom'] as const;
const locScaleKeys = keysOf<LocScaleOptions>()(['muInit', 'biasMuInit', 'rhoInit', 'initFrom']);
const mcDropoutKeys = keysOf<McDropoutOptions>()([...pointKeys, 'p', 'isInput']);
const sghmcKeys = keysOf<SghmcPosteriorOptions>()([...pointKeys, 'precision']);
keysOf<PointInitOptions>()(pointKeys);

/** Registers the built-in posteriors (done on import of the package; idempotent). */
export function registerBuiltinPosteriors(): void {
  if (!hasPosterior('gaussian'))
    registerPosterior('gaussian', (spec, o) => new GaussianPosterior(spec, o), { optionKeys: locScaleKeys });
  if (!hasPosterior('radial'))
    registerPosterior('radial', (spec, o) => new RadialPosterior(spec, o), { optionKeys: locScaleKeys });
  if (!hasPosterior('mcdropout'))
    registerPosterior('mcdropout', (spec, o) => new McDropoutPosterior(spec, o), {
      optionKeys: mcDropoutKeys,
    });
  if (!hasPosterior('sghmc'))
    registerPosterior('sghmc', (spec, o) => new SghmcPosterior(spec, o), { optionKeys: sghmcKeys });
}

registerBuiltinPosteriors();
