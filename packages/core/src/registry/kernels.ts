import { QbnnError } from '../errors.js';
import { referenceKernels } from '../kernels/reference.js';
import type { KernelProvider } from '../kernels/types.js';
import { type RegisterOptions, Registry } from './registry.js';

/** What `listKernelProviders` reports for each provider. */
export interface KernelProviderInfo {
  readonly name: string;
  readonly priority: number;
  /** The provider's capability check (`isAvailable`, true when absent). */
  readonly available: boolean;
  /** Whether `setDefaultKernelProvider` chose it. */
  readonly isDefault: boolean;
}

const providers = new Registry<KernelProvider>('kernel provider');
providers.register(referenceKernels.name, referenceKernels);
let defaultName: string | undefined;

const METHODS = ['packWeights', 'qgemm', 'qconv2d', 'qnormal', 'sampleGaussianPacked'] as const;

function available(p: KernelProvider): boolean {
  try {
    return p.isAvailable === undefined || p.isAvailable() === true;
  } catch {
    return false; // a failing capability probe means "cannot run here"
  }
}

/**
 * Registers an integer kernel provider (e.g. the native addon). The 'js' reference cannot be
 * replaced. Unavailable providers may be registered; they are listed but never picked by default.
 */
export function registerKernelProvider(provider: KernelProvider, opts: RegisterOptions = {}): void {
  if (provider == null || typeof provider !== 'object')
    throw new QbnnError('ERR_ARG', 'provider must be an object');
  if (typeof provider.priority !== 'number' || !Number.isFinite(provider.priority)) {
    throw new QbnnError(
      'ERR_ARG',
      `provider.priority must be a finite number, got ${String(provider.priority)}`,
    );
  }
  for (const m of METHODS) {
    if (typeof provider[m] !== 'function') {
      throw new QbnnError('ERR_ARG', `kernel provider '${String(provider.name)}' lacks the method ${m}()`);
    }
  }
  if (provider.name === referenceKernels.name) {
    throw new QbnnError(
      'ERR_ARG',
      `'${referenceKernels.name}' is the built-in reference provider and cannot be replaced`,
    );
  }
  providers.register(provider.name, provider, opts);
}

/** Removes a provider (not 'js'); clears the default if it was the default. */
export function unregisterKernelProvider(name: string): boolean {
  if (name === referenceKernels.name) {
    throw new QbnnError(
      'ERR_ARG',
      `'${referenceKernels.name}' is the built-in reference provider and cannot be removed`,
    );
  }
  if (defaultName === name) defaultName = undefined;
  return providers.unregister(name);
}

/**
 * The provider named `name`, or without a name the default (see `setDefaultKernelProvider`),
 * else the available provider of highest priority (earliest registered on ties), which is
 * 'js' when nothing else is usable. A named but unavailable provider is ERR_UNSUPPORTED.
 */
export function getKernelProvider(name?: string): KernelProvider {
  const wanted = name ?? defaultName;
  if (wanted !== undefined) {
    const p = providers.get(wanted);
    if (!available(p)) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `kernel provider '${wanted}' is registered but not available on this machine`,
      );
    }
    return p;
  }
  let best: KernelProvider = referenceKernels;
  for (const [, p] of providers.values()) {
    if (p.priority > best.priority && available(p)) best = p;
  }
  return best;
}

/** Every registered provider, highest priority first. */
export function listKernelProviders(): KernelProviderInfo[] {
  return providers
    .values()
    .map(([name, p]) => ({
      name,
      priority: p.priority,
      available: available(p),
      isDefault: name === defaultName,
    }))
    .sort((a, b) => b.priority - a.priority);
}

/**
 * Makes `name` the provider `getKernelProvider()` returns; `undefined` restores automatic choice
 * by priority. An unknown name is ERR_UNKNOWN.
 */
export function setDefaultKernelProvider(name: string | undefined): void {
  if (name !== undefined) providers.get(name);
  defaultName = name;
}
