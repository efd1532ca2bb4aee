import { QbnnError } from './errors.js';

/**
 * Throws a QbnnError ERR_ARG unless `value` is undefined or a plain object (not null, not an
 * array) whose own keys are all in `known`: `what` and the unknown key are named and the known
 * keys listed, so a misspelt option or config key (`sigmaInit` for `rhoInit`) is an error
 * instead of silently the default. Shared by options and configs that take a fixed set of keys.
 */
export function checkKnownKeys(what: string, value: unknown, known: readonly string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new QbnnError(
      'ERR_ARG',
      `${what} must be an object, got ${Array.isArray(value) ? 'an array' : String(value)}`,
    );
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new QbnnError(
        'ERR_ARG',
        `${what}: unknown key '${key}' (known: ${known.length > 0 ? known.join(', ') : 'none'})`,
      );
    }
  }
}

/**
 * Every key of the options type `O`, listed once for {@link checkKnownKeys}:
 * `keysOf<Options>()(['a', 'b'])` returns the list, and the compiler refuses a list that misses a
 * key of `O` (or names another), so the list cannot fall behind the type.
 */
export function keysOf<O>(): <const K extends readonly (keyof O & string)[]>(
  keys: K & (Exclude<keyof O, K[number]> extends never ? unknown : { missing: Exclude<keyof O, K[number]> }),
) => K {
  return (keys) => keys;
}
