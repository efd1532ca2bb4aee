import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as core from '@qbnn/core';
import * as nn from '@qbnn/nn';
import * as posteriors from '@qbnn/posteriors';
import * as qat from '@qbnn/qat';

/** What the command runs on: the tfjs backend and the integer kernel provider. */
export interface RuntimeInfo {
  /** Active tfjs backend ('wasm' or 'cpu'). */
  backend: string;
  /** Why wasm is not used, when it was wanted. */
  backendFallback: string | null;
  /** Whether @qbnn/native-amx loaded and registered an available provider. */
  nativeLoaded: boolean;
  /** The instruction-set path of the native kernels (e.g. 'avx512vnni'), when loaded. */
  nativeIsa: string | null;
  /** Why the native provider is not used, when it is not. */
  nativeReason: string | null;
  /** Name of the kernel provider the integer engine uses by default ('native' or 'js'). */
  provider: string;
}

let runtime: Promise<RuntimeInfo> | undefined;

/**
 * Sets up tfjs (core's `initBackend`: wasm, cpu fallback) once per process and tries the optional
 * native int8 kernels. `@qbnn/native-amx` registers its provider into core's registry on import;
 * when the package or its addon is missing everything still runs on the JS reference kernels.
 */
export function initRuntime(opts: { native?: boolean } = {}): Promise<RuntimeInfo> {
  runtime ??= (async () => {
    const info = await core.initBackend({ log: () => {} });
    let nativeLoaded = false;
    let nativeIsa: string | null = null;
    let nativeReason: string | null = null;
    if (opts.native === false) nativeReason = 'disabled (--no-native)';
    else {
      const quiet = process.env.QBNN_NATIVE_QUIET;
      process.env.QBNN_NATIVE_QUIET = '1';
      try {
        // A variable specifier: the package is optional and must not be needed to build the cli.
        const name = '@qbnn/native-amx';
        const mod = (await import(name)) as {
          nativeAvailable?: boolean;
          loadError?: unknown;
          isa?: () => string | undefined;
        };
        nativeLoaded = mod.nativeAvailable === true;
        nativeIsa = nativeLoaded ? (mod.isa?.() ?? null) : null;
        if (!nativeLoaded) nativeReason = `addon not loaded: ${String(mod.loadError ?? 'unknown reason')}`;
      } catch (err) {
        nativeReason = `@qbnn/native-amx not installed (${(err as Error).message.split('\n')[0]})`;
      } finally {
        if (quiet === undefined) delete process.env.QBNN_NATIVE_QUIET;
        else process.env.QBNN_NATIVE_QUIET = quiet;
      }
    }
    const available = core.listKernelProviders().filter((p) => p.available);
    if (nativeLoaded && !available.some((p) => p.name === 'native')) {
      nativeLoaded = false;
      nativeReason = 'the native provider reports itself unavailable on this CPU';
    }
    return {
      backend: info.backend,
      backendFallback: info.fallbackReason,
      nativeLoaded,
      nativeIsa,
      nativeReason,
      provider: core.getKernelProvider().name,
    };
  })();
  return runtime;
}

/** The qbnn modules handed to a plugin's default export. */
export interface PluginApi {
  core: typeof core;
  nn: typeof nn;
  posteriors: typeof posteriors;
  qat: typeof qat;
}

/** The file of a plugin given as a path (relative to the working directory), or null for a package name. */
export function pluginFile(spec: string): string | null {
  const local = spec.startsWith('.') || isAbsolute(spec) || /\.[cm]?[jt]s$/.test(spec);
  return local ? resolve(spec) : null;
}

/** What the registries hold: a key per entry, with the registered value to see replacements. */
function registrations(): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const name of posteriors.listPosteriors()) out.set(`posterior ${name}`, posteriors.getPosterior(name));
  for (const [name, build] of nn.architectureRegistry.values()) out.set(`architecture ${name}`, build);
  for (const p of core.listKernelProviders()) out.set(`kernel provider ${p.name}`, p.name);
  for (const kind of qat.listIntegerForms()) out.set(`integer form ${kind}`, qat.getIntegerForm(kind));
  return out;
}

function changed(before: Map<string, unknown>, after: Map<string, unknown>): boolean {
  if (after.size !== before.size) return true;
  for (const [k, v] of after) if (before.get(k) !== v) return true;
  return false;
}

/** Settles as `p` does, or rejects with `onTimeout()` after `ms` (the timer keeps the process alive). */
function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Why a plugin could not be loaded; the message says what to do. */
export class PluginError extends Error {
  override name = 'PluginError';
}

const loadedPlugins = new Set<string>();

/**
 * Loads a plugin module (a path, relative to the working directory, or a package name). A plugin
 * registers posteriors (or architectures, or kernel providers) when imported; if its default
 * export is a function it is also called with the qbnn modules, so a plugin outside this
 * workspace registers into the same registries the cli uses. The import and that call must settle
 * within `timeoutSeconds` (an import that never settles would otherwise end the process with
 * code 13 and no message), and must register something. A module loaded already in this
 * process is not loaded again.
 *
 * @throws PluginError when the module cannot be imported, throws, does not settle in time, or
 *   registers nothing.
 */
export async function loadPlugin(spec: string, opts: { timeoutSeconds: number }): Promise<void> {
  const file = pluginFile(spec);
  const url = file ? pathToFileURL(file).href : spec;
  if (loadedPlugins.has(url)) return;
  const ms = Math.round(opts.timeoutSeconds * 1000);
  const late = (what: string) => () =>
    new PluginError(
      `${what} did not finish within ${opts.timeoutSeconds} s (does it await something that never settles?); --plugin-timeout SECONDS allows longer`,
    );
  const before = registrations();
  let mod: { default?: unknown };
  try {
    mod = await withTimeout(import(url) as Promise<{ default?: unknown }>, ms, late('its import'));
  } catch (err) {
    if (err instanceof PluginError) throw err;
    const message = (err as Error)?.message ?? String(err);
    const missing = (err as NodeJS.ErrnoException)?.code === 'ERR_MODULE_NOT_FOUND';
    throw new PluginError(missing ? `cannot find it: ${message}` : `importing it threw: ${message}`);
  }
  if (typeof mod.default === 'function') {
    const api: PluginApi = { core, nn, posteriors, qat };
    try {
      await withTimeout(
        Promise.resolve().then(() => (mod.default as (api: PluginApi) => unknown)(api)),
        ms,
        late('its default export (called with { core, nn, posteriors, qat })'),
      );
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError(`its default export threw: ${(err as Error)?.message ?? String(err)}`);
    }
  }
  if (!changed(before, registrations())) {
    const exports = Object.keys(mod);
    throw new PluginError(
      `it registered nothing (no posterior, architecture, integer form or kernel provider). A plugin calls registerPosterior (or registerArchitecture, registerIntegerForm, registerKernelProvider) when imported, or exports a default function that is called with { core, nn, posteriors, qat } (the way to register again when this process imported the module before); its exports: ${exports.length ? exports.join(', ') : 'none'}`,
    );
  }
  loadedPlugins.add(url);
}
