import { getKernelProvider } from '@qbnn/core';
import type { Suite } from '../harness.js';
import { loadNative } from '../native.js';
import { loadWasm } from '../wasm.js';
import { type BnnGrid, cellKey, runGrid } from './bnn.js';
import { qbnnCase, tfjsCase } from './gemm.js';
import { samplerCases } from './rng.js';

// Issue 16's figures in one run (the gemm, rng and bnn suites hold the same cases among many):
// the wasm GEMM beside the JS reference and fp32 tfjs-wasm, the samplers, and Bayesian LeNet-5
// MC inference on the wasm kernels beside fp32 tfjs-wasm and the native addon.
const SHAPE: [number, number, number] = [256, 1024, 1024];

const GRID: BnnGrid = {
  models: ['lenet5'],
  posteriors: ['gaussian'],
  precisions: ['fp32-tfjs-wasm', 'int8-wasm', 'int8-native'],
  batches: [1, 32],
  samples: [20],
  modes: ['weights'],
  mustRun: () => true,
};

export const wasmSuite: Suite = {
  name: 'wasm',
  description:
    'issue 16 in one run: wasm int8 GEMM vs JS reference and tfjs-wasm fp32, wasm samplers, Bayesian LeNet-5 L20 on wasm vs fp32 tfjs-wasm',
  async run(ctx) {
    const wasm = await loadWasm();
    if (!wasm) {
      ctx.note('wasm kernels not loaded: nothing to measure');
      return;
    }
    const info = wasm.wasmInfo()!;
    ctx.note(
      `@qbnn/wasm under Node ${process.version}, one thread: builds ${info.available.join(', ')} (relaxed SIMD ${info.relaxedSupported ? (info.relaxedExact ? 'exact' : 'present but inexact, refused') : 'not enabled in this engine'}); ${info.build}`,
    );
    ctx.note(
      'targets (issue 16): target_wasm_over_js_256x1024x1024 >= 10; target_lenet5_gaussian_weights_b32_L20_int8wasm_over_fp32 >= 3.',
    );
    const shape: [number, number, number] = ctx.quick ? [64, 784, 500] : SHAPE;
    const s = shape.join('x');
    const js = await qbnnCase(ctx, getKernelProvider('js'), 'js', shape, 1);
    const gops = new Map<string, number>();
    for (const variant of info.available) {
      wasm.setWasmVariant(variant);
      const r = await qbnnCase(ctx, getKernelProvider('wasm'), `wasm-${variant}`, shape, 1);
      gops.set(variant, r.throughput ?? 0);
    }
    wasm.setWasmVariant('best');
    const fp32 = new Map<string, number>();
    await tfjsCase(ctx, shape, fp32, (impl) => impl);
    const best = gops.get(info.variant) ?? 0;
    if (js.throughput) ctx.ratio(`${ctx.quick ? '' : 'target_'}wasm_over_js_${s}`, best / js.throughput);
    const tf = fp32.get('tfjs');
    if (tf) ctx.ratio(`wasm_int8_over_tfjs_fp32_${s}`, best / tf);

    await samplerCases(ctx, getKernelProvider('js'), 'js', 1);
    await samplerCases(ctx, getKernelProvider('wasm'), `wasm-${info.variant}`, 1);

    const native = await loadNative();
    const grid: BnnGrid = {
      ...GRID,
      ...(ctx.quick ? { batches: [1], samples: [2] } : {}),
      precisions: GRID.precisions.filter((p) => native || p !== 'int8-native'),
    };
    const ms = await runGrid(ctx, grid);
    for (const batch of grid.batches) {
      const base = {
        model: 'lenet5' as const,
        posterior: 'gaussian' as const,
        mode: 'weights' as const,
        batch,
      };
      const L = grid.samples[0];
      const f = ms.get(cellKey({ ...base, samples: L, precision: 'fp32-tfjs-wasm' }));
      const w = ms.get(cellKey({ ...base, samples: L, precision: 'int8-wasm' }));
      const n = ms.get(cellKey({ ...base, samples: L, precision: 'int8-native' }));
      const target = !ctx.quick && batch === 32 ? 'target_' : '';
      if (f && w) ctx.ratio(`${target}lenet5_gaussian_weights_b${batch}_L${L}_int8wasm_over_fp32`, f / w);
      if (w && n) ctx.ratio(`lenet5_gaussian_weights_b${batch}_L${L}_int8native_over_int8wasm`, w / n);
    }
  },
};
