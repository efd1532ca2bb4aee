import { QbnnError, Registry } from '@qbnn/core';
import type { PosteriorFactory, PosteriorName, PosteriorOptionsOf } from './types.js';

const factories = new Registry<PosteriorFactory<never>>('posterior');
const NAME_RE = /^[A-Za-z][A-Za-z0-9_.:-]*$/;

/**
 * Registers a posterior plugin under `name`, so layers (`new BayesLinear(4, 2, { posterior: name })`)
 * and `dnnToBnn` can create it. A third-party package calls this once at import.
 *
 * @param options.replace - allow replacing an existing registration (default false).
 * @throws QbnnError ERR_ARG for an invalid name, a non-function factory, or a name already
 *   registered without `replace`.
 */
export function registerPosterior<N extends PosteriorName>(
  name: N,
  factory: PosteriorFactory<PosteriorOptionsOf<N>>,
  options: { replace?: boolean } = {},
): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new QbnnError('ERR_ARG', `registerPosterior: invalid name '${String(name)}' (expected ${NAME_RE})`);
  }
  if (typeof factory !== 'function') {
    throw new QbnnError('ERR_ARG', `registerPosterior('${name}'): factory must be a function`);
  }
  if (factories.has(name) && !options.replace) {
    throw new QbnnError(
      'ERR_ARG',
      `registerPosterior: '${name}' is already registered (pass { replace: true })`,
    );
  }
  factories.register(name, factory as PosteriorFactory<never>, { override: true });
}

/**
 * The factory registered under `name` (a core `Registry` of kind "posterior").
 * @throws QbnnError ERR_UNKNOWN naming the registered posteriors when there is none.
 */
export function getPosterior<N extends PosteriorName>(name: N): PosteriorFactory<PosteriorOptionsOf<N>> {
  return factories.get(name) as PosteriorFactory<PosteriorOptionsOf<N>>;
}

/** Whether a posterior is registered under `name`. */
export function hasPosterior(name: string): boolean {
  return factories.has(name);
}

/** Names of the registered posteriors, sorted. */
export function listPosteriors(): string[] {
  return factories.list().sort();
}

/** Removes a registration (for tests and plugin hot-reload). Returns whether it existed. */
export function unregisterPosterior(name: string): boolean {
  return factories.unregister(name);
}
