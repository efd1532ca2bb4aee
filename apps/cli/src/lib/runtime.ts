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

/**
 * Loads a plugin module (a path, relative to the working directory, or a package name). A plugin
 * registers posteriors (or architectures) when imported; if its default export is a function it
 * is also called with the qbnn modules, so a plugin outside this workspace registers into the
 * same registries the cli uses.
 */
export async function loadPlugin(spec: string): Promise<void> {
  const local = spec.startsWith('.') || isAbsolute(spec) || /\.[cm]?[jt]s$/.test(spec);
  const url = local ? pathToFileURL(isAbsolute(spec) ? spec : resolve(spec)).href : spec;
  const mod = (await import(url)) as { default?: unknown };
  if (typeof mod.default === 'function') {
    const api: PluginApi = { core, nn, posteriors, qat };
    await (mod.default as (api: PluginApi) => unknown)(api);
  }
}
