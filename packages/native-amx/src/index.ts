/**
 * @qbnn/native-amx: the int8 kernels of @qbnn/core's contract as a Node-API addon, with runtime
 * dispatch over AMX, AVX-512 VNNI, AVX-VNNI, AVX2 and scalar paths (plus the AMX kernel over an
 * exact software tile emulation). Importing this module registers the provider 'native' in
 * @qbnn/core's kernel registry with priority 100, above the JS reference, so everything that
 * asks `getKernelProvider()` uses it. If the addon could not be built or loaded, importing still
 * works: the provider is registered as unavailable and `loadError` says why.
 *
 * @packageDocumentation
 */
import { checkPhiloxKey, QbnnError, registerKernelProvider } from '@qbnn/core';
import { addon, loadError } from './binding.js';
import { enableNativeFloatKernels, refreshFloatKernelReport } from './fp32/install.js';
import { nativeKernels } from './provider.js';

export { addonPath, loadError } from './binding.js';
export {
  disableNativeFloatKernels,
  enableNativeFloatKernels,
  type NativeFloatKernels,
} from './fp32/install.js';
export {
  NATIVE_PRIORITY,
  NATIVE_PROVIDER,
  NativePackedWeights,
  nativeKernels,
  prepareQConv2d,
  sampleGaussianDot,
  unpackWeights,
} from './provider.js';

/** An instruction-set path of the kernels. 'amx-emulated' runs the AMX kernel on the software tile layer. */
export type Isa = 'amx' | 'avx512vnni' | 'avxvnni' | 'avx2' | 'scalar' | 'amx-emulated';

/** What the addon found on this machine. */
export interface NativeInfo {
  /** The path in use. */
  isa: Isa;
  /** The best path of this CPU (what is used unless forced). */
  best: Isa;
  /** Every path that can run here, best first ('amx-emulated' always, last). */
  available: Isa[];
  /** CPUID reports AMX-TILE and AMX-INT8 (the OS may still refuse tile permission). */
  amxHardware: boolean;
  /** AVX-512 VBMI (byte permutes): the quantised-normal byte-lane path and the fast conv plane build. */
  vbmi: boolean;
  /** Why AMX is or is not used. */
  amxNote: string;
  /** Threads of the pool. */
  threads: number;
  /** Built with AddressSanitizer + UBSan (QBNN_SANITIZE=1). */
  sanitized: boolean;
  arch: string;
}

/** True when the native addon loaded. */
export const nativeAvailable: boolean = addon !== undefined;

/** The ISA names setIsa takes. */
const ISAS: readonly string[] = ['amx', 'avx512vnni', 'avxvnni', 'avx2', 'scalar', 'amx-emulated', 'best'];

/** `v` if it is an integer in [lo, hi]; otherwise a QbnnError ERR_ARG naming `name` (the addon's own check is untyped). */
function intArg(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
    throw new QbnnError('ERR_ARG', `${name} must be an integer in [${lo}, ${hi}], got ${describeArg(v)}`);
  return v;
}

function describeArg(v: unknown): string {
  return typeof v === 'string' ? `'${v.slice(0, 40)}'` : typeof v === 'number' ? String(v) : typeof v;
}

/** Sets the ISA `name` (from `what`: an argument or an environment variable), or a QbnnError ERR_ARG naming `what`. */
function applyIsa(a: NonNullable<typeof addon>, what: string, name: unknown): Isa {
  if (typeof name !== 'string' || !ISAS.includes(name))
    throw new QbnnError(
      'ERR_ARG',
      `${what}: unknown isa ${describeArg(name)}; must be one of ${ISAS.map((n) => `'${n}'`).join(', ')}`,
    );
  const available = (a.info() as NativeInfo).available as string[];
  if (name !== 'best' && !available.includes(name))
    throw new QbnnError(
      'ERR_ARG',
      `${what}: isa '${name}' is not available on this CPU (available: ${available.join(', ')})`,
    );
  return a.setIsa(name) as Isa;
}

/** The largest thread-pool size. */
const MAX_THREADS = 256;

function need() {
  if (addon === undefined) throw new Error(`@qbnn/native-amx: native addon not available: ${loadError}`);
  return addon;
}

/** The ISA path in use ('amx' | 'avx512vnni' | 'avxvnni' | 'avx2' | 'scalar' | 'amx-emulated'), or undefined without the addon. */
export function isa(): Isa | undefined {
  return addon === undefined ? undefined : (addon.info().isa as Isa);
}

/** Everything the addon detected, or undefined without the addon. */
export function nativeInfo(): NativeInfo | undefined {
  return addon === undefined ? undefined : (addon.info() as NativeInfo);
}

/**
 * Forces an ISA path (any lower path, or 'amx-emulated'), or 'best' to restore the default.
 * Throws if the path cannot run on this CPU. Returns the path now in use.
 */
export function setIsa(name: Isa | 'best'): Isa {
  return applyIsa(need(), 'setIsa: name', name);
}

/** Sets the thread-pool size (default: all cores). Results are identical for any count. */
export function setThreads(n: number): number {
  const t = need().setThreads(intArg('setThreads: n', n, 1, MAX_THREADS));
  refreshFloatKernelReport();
  return t;
}

/** The thread-pool size. */
export function getThreads(): number {
  return need().info().threads;
}

/**
 * Peak of the vpdpbusd instruction on the calling thread, in GOPS (1 multiply-add = 2 ops),
 * from `iters` iterations of 12 independent zmm (or ymm: AVX-VNNI) accumulations.
 * Null when the CPU lacks that instruction.
 */
export function vpdpbusdPeakGops(iters = 20_000_000, width: 'zmm' | 'ymm' = 'zmm'): number | null {
  intArg('vpdpbusdPeakGops: iters', iters, 1, 2 ** 30);
  if (width !== 'zmm' && width !== 'ymm')
    throw new QbnnError(
      'ERR_ARG',
      `vpdpbusdPeakGops: width must be 'zmm' or 'ymm', got ${describeArg(width)}`,
    );
  return need().peak(iters, width);
}

/**
 * Peak of zmm fp32 FMA on the calling thread, in GFLOPS (1 FMA = 2 flops), from `iters` rounds of
 * 12 independent accumulator chains timed in thread CPU time. Null without AVX-512.
 */
export function fp32PeakGflops(iters = 50_000_000): number | null {
  intArg('fp32PeakGflops: iters', iters, 1, 1e10);
  return need().fp32.peak(iters);
}

/**
 * CPU seconds used so far by the calling thread (CLOCK_THREAD_CPUTIME_ID). Benchmarks on a
 * shared machine divide work by this rather than by wall-clock time.
 */
export function threadCpuTime(): number {
  return need().threadCpuTime();
}

/** The Philox4x32-10 words of the stream (key, position), computed natively (for tests). */
export function nativePhilox(
  key: readonly [number, number],
  position: number,
  out: Uint32Array,
): Uint32Array {
  checkPhiloxKey('nativePhilox', key, position);
  if (!(out instanceof Uint32Array))
    throw new QbnnError('ERR_ARG', 'nativePhilox: out must be a Uint32Array');
  need().philox(key[0], key[1], position, out);
  return out;
}

/**
 * Maps uniform uint32 words to quantised normals natively (for tests): `lookup` is the kernels'
 * guide table over 2^20-word buckets (`vector`: its AVX-512 form), `binary` a plain binary
 * search of the thresholds, `search` the AVX-512 in-register binary search alone (the vector
 * path's fallback for the far tails), `bytes` the byte-lane tables of CPUs with AVX-512 VBMI
 * (what `qnormal` runs there; throws elsewhere).
 */
export function nativeQnormalFromWords(
  words: Uint32Array,
  how: 'lookup' | 'vector' | 'binary' | 'search' | 'bytes' = 'lookup',
): Int8Array {
  const modes: Record<string, number> = { lookup: 0, vector: 1, binary: 2, search: 3, bytes: 4 };
  const mode = Object.hasOwn(modes, how) ? modes[how] : undefined;
  if (mode === undefined)
    throw new QbnnError(
      'ERR_ARG',
      `nativeQnormalFromWords: how must be 'lookup', 'vector', 'binary', 'search' or 'bytes', got ${describeArg(how)}`,
    );
  if (!(words instanceof Uint32Array))
    throw new QbnnError('ERR_ARG', 'nativeQnormalFromWords: words must be a Uint32Array');
  const out = new Int8Array(words.length);
  need().mapWords(words, out, mode);
  return out;
}

if (addon !== undefined) {
  const forced = process.env.QBNN_NATIVE_ISA;
  if (forced) applyIsa(addon, 'QBNN_NATIVE_ISA', forced);
  const threads = process.env.QBNN_NATIVE_THREADS;
  if (threads) {
    const n = /^\s*\d+\s*$/.test(threads) ? Number(threads) : Number.NaN;
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_THREADS))
      throw new QbnnError(
        'ERR_ARG',
        `QBNN_NATIVE_THREADS must be an integer in [1, ${MAX_THREADS}], got '${threads}'`,
      );
    addon.setThreads(n);
  }
}

// The fp32 tfjs kernels (training, float Monte Carlo) are served natively unless QBNN_NATIVE_FP32=0.
if (process.env.QBNN_NATIVE_FP32 !== '0') enableNativeFloatKernels();

// override: a second copy of this module (e.g. src and dist in one process) replaces the first.
registerKernelProvider(nativeKernels, { override: true });

if (addon === undefined && process.env.QBNN_NATIVE_QUIET !== '1') {
  // Say once why the fast path is missing; everything still runs on the JS reference.
  process.emitWarning(
    `@qbnn/native-amx: running without the native addon: ${loadError}`,
    'QbnnNativeWarning',
  );
}
