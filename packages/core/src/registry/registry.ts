import { QbnnError } from '../errors.js';

/** Options of `Registry.register`. */
export interface RegisterOptions {
  /** Replace an existing entry of the same name instead of throwing. */
  override?: boolean;
}

/**
 * A small typed name -> value registry (posterior plugins, kernel providers, ...). Names are
 * case-sensitive non-empty strings; `list()` keeps registration order.
 *
 * @example
 * const posteriors = new Registry<PosteriorFactory>('posterior');
 * posteriors.register('gaussian', gaussianFactory);
 * posteriors.get('gausian'); // QbnnError ERR_UNKNOWN: unknown posterior 'gausian'; registered: gaussian
 */
export class Registry<T> {
  private readonly entries = new Map<string, T>();

  /** @param kind - what the entries are, used in error messages ("posterior"). */
  constructor(readonly kind: string) {}

  /** Adds `value` under `name`; a duplicate name throws ERR_ARG unless `{ override: true }`. */
  register(name: string, value: T, opts: RegisterOptions = {}): void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new QbnnError('ERR_ARG', `${this.kind} name must be a non-empty string, got ${String(name)}`);
    }
    if (this.entries.has(name) && opts.override !== true) {
      throw new QbnnError(
        'ERR_ARG',
        `${this.kind} '${name}' is already registered; pass { override: true } to replace it`,
      );
    }
    this.entries.set(name, value);
  }

  /** The entry named `name`; ERR_UNKNOWN listing the registered names when absent. */
  get(name: string): T {
    const v = this.entries.get(name);
    if (v === undefined && !this.entries.has(name)) {
      const names = this.list();
      throw new QbnnError(
        'ERR_UNKNOWN',
        `unknown ${this.kind} '${String(name)}'; registered: ${names.length ? names.join(', ') : '(none)'}`,
      );
    }
    return v as T;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Registered names in registration order. */
  list(): string[] {
    return [...this.entries.keys()];
  }

  /** Removes `name`; returns whether it was registered. */
  unregister(name: string): boolean {
    return this.entries.delete(name);
  }

  /** [name, value] pairs in registration order. */
  values(): [string, T][] {
    return [...this.entries.entries()];
  }
}
