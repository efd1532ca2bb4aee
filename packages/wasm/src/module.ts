import { QbnnError, QNORMAL_THRESHOLDS } from '@qbnn/core';
import { BUILD_ERROR, BUILD_INFO, RELAXED_WASM, SIMD128_WASM } from './wasm-binary.gen.js';

/** Which build of the kernels runs: relaxed-SIMD dot products, or plain SIMD128. */
export type WasmVariant = 'relaxed' | 'simd128';

/** The exports of csrc/*.c (pointers and sizes are int32; positions are doubles). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  qbnn_panel(): number;
  qbnn_gemm_max_rows(): number;
  qbnn_set_thresholds(t: number): void;
  qbnn_pack(w: number, n: number, k: number, packed: number, rowSums: number): void;
  qbnn_gemm(
    a: number,
    m: number,
    k: number,
    aZero: number,
    w: number,
    n: number,
    rowSums: number,
    wZero: number,
    bias: number,
    kind: number,
    factor: number,
    outZero: number,
    outLo: number,
    out: number,
    work: number,
  ): void;
  qbnn_conv2d(
    x: number,
    geo: number,
    packs: number,
    wZero: number,
    bias: number,
    kind: number,
    factor: number,
    outZero: number,
    outLo: number,
    out: number,
    cols: number,
    work: number,
  ): void;
  qbnn_philox(k0: number, k1: number, position: number, out: number, count: number): void;
  qbnn_qnormal(k0: number, k1: number, position: number, out: number, count: number): void;
  qbnn_qnormal_map(words: number, out: number, count: number): void;
  qbnn_sample_gaussian(
    mu: number,
    sigma: number,
    zp: number,
    m: number,
    n: number,
    k: number,
    qmin: number,
    qmax: number,
    k0: number,
    k1: number,
    position: number,
    tmp: number,
    packed: number,
    rowSums: number,
  ): void;
  qbnn_probe_dot?(w: number, a: number, acc: number, out: number): void;
}

/** A loaded build: its exports and where free memory starts. */
export interface KernelModule {
  readonly variant: WasmVariant;
  readonly exports: KernelExports;
  /** First byte after the module's stack and static data. */
  readonly heapBase: number;
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const s = atob(base64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

async function instantiate(variant: WasmVariant, base64: string): Promise<KernelModule> {
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(decode(base64)));
  const exports = instance.exports as unknown as KernelExports;
  const heapBase = Number(exports.__heap_base.value);
  // The threshold table comes from @qbnn/core, so the two implementations cannot diverge.
  const view = new Uint32Array(exports.memory.buffer, heapBase, 255);
  view.set(QNORMAL_THRESHOLDS);
  exports.qbnn_set_thresholds(heapBase);
  return { variant, exports, heapBase };
}

/**
 * Whether this engine computes i32x4.relaxed_dot_i8x16_i7x16_add_s as exact unsigned-byte dot
 * products (as x86 vpdpbusd does). The relaxed-SIMD specification lets the "i7" operand's high
 * bit be read as signed or unsigned and the i16 pair sums saturate or not; the probe vectors
 * tell every such choice apart (and catch engines that get even 7-bit operands wrong), so the
 * relaxed build is used only where its results are the contract's.
 */
export function relaxedDotIsExact(mod: KernelModule): boolean {
  const probe = mod.exports.qbnn_probe_dot;
  if (probe === undefined) return false;
  const base = mod.heapBase;
  const mem = mod.exports.memory.buffer;
  const w = new Int8Array(mem, base, 16);
  const a = new Uint8Array(mem, base + 16, 16);
  const acc = new Int32Array(mem, base + 32, 4);
  const out = new Int32Array(mem, base + 48, 4);
  let s = 0x2545f491;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
  for (let t = 0; t < 64; t++) {
    for (let i = 0; i < 16; i++) {
      // Extremes first (255 x -128 saturates every int16 pair scheme), then random bytes.
      w[i] = t === 0 ? -128 : t === 1 ? 127 : t === 2 ? (i % 2 ? -128 : 127) : next() - 128;
      a[i] = t < 3 ? 255 : t === 3 ? 128 + i : next();
    }
    for (let l = 0; l < 4; l++) acc[l] = t === 4 ? 2 ** 31 - 1 - l : next() - 128;
    probe(base, base + 16, base + 32, base + 48);
    for (let l = 0; l < 4; l++) {
      let want = acc[l];
      for (let j = 0; j < 4; j++) want += w[4 * l + j] * a[4 * l + j];
      if (out[l] !== (want | 0)) return false;
    }
  }
  return true;
}

/** What loading found. */
export interface LoadResult {
  readonly simd128?: KernelModule;
  readonly relaxed?: KernelModule;
  /** The engine validates relaxed-SIMD modules. */
  readonly relaxedSupported: boolean;
  /** Its relaxed integer dot product passed the exactness probe. */
  readonly relaxedExact: boolean;
  readonly error?: string;
  readonly buildInfo?: string;
}

/** Compiles the builds this engine can run (never throws: failures are reported in `error`). */
export async function loadKernels(): Promise<LoadResult> {
  if (BUILD_ERROR !== undefined || SIMD128_WASM === undefined || RELAXED_WASM === undefined) {
    return {
      relaxedSupported: false,
      relaxedExact: false,
      error: `the WebAssembly kernels were not built: ${BUILD_ERROR ?? 'no build output'}`,
    };
  }
  if (typeof WebAssembly !== 'object') {
    return { relaxedSupported: false, relaxedExact: false, error: 'this engine has no WebAssembly' };
  }
  let simd128: KernelModule | undefined;
  let error: string | undefined;
  try {
    simd128 = await instantiate('simd128', SIMD128_WASM);
  } catch (e) {
    error = `this engine cannot run WebAssembly SIMD128: ${(e as Error).message}`;
  }
  const relaxedSupported = WebAssembly.validate(decode(RELAXED_WASM));
  let relaxed: KernelModule | undefined;
  let relaxedExact = false;
  if (relaxedSupported) {
    try {
      const mod = await instantiate('relaxed', RELAXED_WASM);
      relaxedExact = relaxedDotIsExact(mod);
      if (relaxedExact) relaxed = mod;
    } catch {
      // fall back to SIMD128
    }
  }
  return { simd128, relaxed, relaxedSupported, relaxedExact, error, buildInfo: BUILD_INFO };
}

/** Thrown when a call needs more WebAssembly memory than the module may have. */
export function memoryError(bytes: number): QbnnError {
  return new QbnnError(
    'ERR_UNSUPPORTED',
    `wasm: this call needs ${bytes} bytes of WebAssembly memory, more than its 2 GiB limit; split the batch`,
  );
}
