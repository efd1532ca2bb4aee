import { getKernelProvider, listKernelProviders, QbnnError } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { errorOf } from '../../core/test/kernel-cases.js';
import { setWasmVariant, wasmAvailable, wasmInfo, wasmKernels, wasmLoadError } from '../src/index.js';
import { Scratch } from '../src/memory.js';
import { type KernelModule, relaxedDotIsExact } from '../src/module.js';

// On a machine with clang >= 16 and wasm-ld (scripts/setup.sh installs them) the kernels must
// build and load; QBNN_WASM_OPTIONAL=1 allows a machine without (the other tests then skip).
const optional = process.env.QBNN_WASM_OPTIONAL === '1';

describe('loading', () => {
  test('the kernels load (or say why)', () => {
    if (!optional) expect(wasmLoadError()).toBeUndefined();
    expect(wasmAvailable()).toBe(wasmLoadError() === undefined);
  });

  test.skipIf(!wasmAvailable())('registers the provider between the JS reference and native', () => {
    const list = listKernelProviders();
    const wasm = list.find((p) => p.name === 'wasm');
    expect(wasm).toMatchObject({ priority: 50, available: true });
    expect(list.find((p) => p.name === 'js')?.priority).toBe(0);
    // No native provider is imported in this file's process: the wasm kernels are the default.
    if (!list.some((p) => p.name === 'native' && p.available)) expect(getKernelProvider()).toBe(wasmKernels);
  });

  test.skipIf(!wasmAvailable())('reports and forces builds', () => {
    const info = wasmInfo()!;
    expect(info.available).toContain('simd128');
    expect(info.variant).toBe(info.available[0]);
    expect(info.build).toMatch(/clang/);
    for (const v of info.available) expect(setWasmVariant(v)).toBe(v);
    expect(setWasmVariant('best')).toBe(info.variant);
    if (!info.available.includes('relaxed')) {
      expect(errorOf(() => setWasmVariant('relaxed'))).toMatch(/^ERR_UNSUPPORTED: wasm variant 'relaxed'/);
    }
    expect(errorOf(() => setWasmVariant('avx' as never))).toMatch(/^ERR_ARG: wasm variant must be/);
  });
});

/** A stand-in module whose relaxed dot product has one of the behaviours engines may have. */
function fakeModule(dot: (w: number, a: number) => number, pairSat: boolean, scale = 1): KernelModule {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const sat = (v: number) => (pairSat ? Math.max(-32768, Math.min(32767, v)) : v);
  return {
    variant: 'relaxed',
    heapBase: 1024,
    exports: {
      memory,
      qbnn_probe_dot(w: number, a: number, acc: number, out: number) {
        const W = new Int8Array(memory.buffer, w, 16);
        const A = new Uint8Array(memory.buffer, a, 16);
        const C = new Int32Array(memory.buffer, acc, 4);
        const O = new Int32Array(memory.buffer, out, 4);
        for (let l = 0; l < 4; l++) {
          const i = 4 * l;
          const p0 = sat(dot(W[i], A[i]) + dot(W[i + 1], A[i + 1]));
          const p1 = sat(dot(W[i + 2], A[i + 2]) + dot(W[i + 3], A[i + 3]));
          O[l] = (scale * (p0 + p1) + C[l]) | 0;
        }
      },
    } as unknown as KernelModule['exports'],
  };
}

describe('the relaxed-SIMD exactness probe', () => {
  const unsigned = (w: number, a: number) => w * a;
  const signed = (w: number, a: number) => w * (a > 127 ? a - 256 : a);
  test('accepts exact unsigned bytes (x86 vpdpbusd)', () => {
    expect(relaxedDotIsExact(fakeModule(unsigned, false))).toBe(true);
  });
  test('refuses every other behaviour the specification allows, and a wrong engine', () => {
    expect(relaxedDotIsExact(fakeModule(unsigned, true))).toBe(false); // pmaddubsw saturation
    expect(relaxedDotIsExact(fakeModule(signed, false))).toBe(false); // ARM sdot
    expect(relaxedDotIsExact(fakeModule(signed, true))).toBe(false);
    expect(relaxedDotIsExact(fakeModule(unsigned, false, 2))).toBe(false); // Node 20's flagged V8 doubles
  });
});

describe.skipIf(!wasmAvailable())('memory', () => {
  test('a call needing more than the 2 GiB limit is a clear error, not a crash', () => {
    const info = wasmInfo()!;
    setWasmVariant(info.variant);
    const sc = new Scratch({
      variant: info.variant,
      heapBase: 1024,
      exports: { memory: new WebAssembly.Memory({ initial: 1, maximum: 4 }) } as never,
    });
    expect(sc.layout([1000]).length).toBe(1);
    const e = (() => {
      try {
        sc.layout([2 ** 31]);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(QbnnError);
    expect((e as QbnnError).code).toBe('ERR_UNSUPPORTED');
    // Growth past the memory's maximum is the same error.
    expect(errorOf(() => sc.layout([10 * 65536]))).toMatch(/^ERR_UNSUPPORTED: wasm: this call needs/);
  });
});
