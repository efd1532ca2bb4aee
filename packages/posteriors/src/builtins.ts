import { GaussianPosterior } from './gaussian.js';
import { McDropoutPosterior } from './mcdropout.js';
import { RadialPosterior } from './radial.js';
import { hasPosterior, registerPosterior } from './registry.js';
import { SghmcPosterior } from './sghmc.js';

declare module './types.js' {
  interface PosteriorOptionsMap {
    gaussian: import('./gaussian.js').GaussianOptions;
    radial: import('./radial.js').RadialOptions;
    mcdropout: import('./mcdropout.js').McDropoutOptions;
    sghmc: import('./sghmc.js').SghmcPosteriorOptions;
  }
}

/** Registers the built-in posteriors (done on import of the package; idempotent). */
export function registerBuiltinPosteriors(): void {
  if (!hasPosterior('gaussian')) registerPosterior('gaussian', (spec, o) => new GaussianPosterior(spec, o));
  if (!hasPosterior('radial')) registerPosterior('radial', (spec, o) => new RadialPosterior(spec, o));
  if (!hasPosterior('mcdropout'))
    registerPosterior('mcdropout', (spec, o) => new McDropoutPosterior(spec, o));
  if (!hasPosterior('sghmc')) registerPosterior('sghmc', (spec, o) => new SghmcPosterior(spec, o));
}

registerBuiltinPosteriors();
