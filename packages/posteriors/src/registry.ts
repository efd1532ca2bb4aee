import { checkKnownKeys, QbnnError, Registry } from '@qbnn/core';
import type { PosteriorFactory, PosteriorName, PosteriorOptionsOf } from './types.js';

const factories = new Registry<PosteriorFactory<never>>('posterior');
const NAME_RE = /^[A-Za-z][A-Za-z0-9_.:-]*$/;

/** Options of {@link registerPosterior}. */
export interface RegisterPosteriorOptions {
  /** Allow replacing an existing registration (default false). */
  replace?: boolean;
  /**
   * The option keys the factory takes. When given, the registered factory refuses options that
   * are not an object or hold any other key (ERR_ARG naming the key and listing these), so a
   * misspelt option (`sigmaInit` for `rhoInit`) is an error, not silently the default. When
   * omitted, the options reach the factory unchecked (it validates them itself).
   */
  optionKeys?: readonly string[];
}

/**
 * Throws ERR_ARG unless `options` is undefined or a plain object whose keys are all in `known`:
 * `where` and the unknown key are named and the known keys listed (core's checkKnownKeys).
 */
export function checkPosteriorOptionKeys(where: string, options: unknown, known: readonly string[]): void {
  checkKnownKeys(`${where}: posteriorOptions`, options, known);
}

/**
 * Registers a posterior plugin under `name`, so layers (`new BayesLinear(4, 2, { posterior: name })`)
 * and `dnnToBnn` can create it. A third-party package calls this once at import, declaring its
 * option keys (`optionKeys`) to have misspelt options refused.
 *
 * @throws QbnnError ERR_ARG for an invalid name, a non-function factory, a name already
 *   registered without `replace`, or `optionKeys` that is not an array of strings.
 */
export function registerPosterior<N extends PosteriorName>(
  name: N,
  factory: PosteriorFactory<PosteriorOptionsOf<N>>,
  options: RegisterPosteriorOptions = {},
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
  const keys = options.optionKeys;
  if (keys !== undefined && (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string'))) {
    throw new QbnnError('ERR_ARG', `registerPosterior('${name}'): optionKeys must be an array of strings`);
  }
  const checked: PosteriorFactory<PosteriorOptionsOf<N>> =
    keys === undefined
      ? factory
      : (spec, o) => {
          checkPosteriorOptionKeys(`posterior '${name}'`, o, keys);
          return factory(spec, o);
        };
  factories.register(name, checked as PosteriorFactory<never>, { override: true });
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
