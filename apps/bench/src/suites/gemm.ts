import { floatKernelSet, getKernelProvider, initBackend, type KernelProvider, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import ort from 'onnxruntime-node';
import { measure, type Suite, type SuiteContext } from '../harness.js';
import { loadNative } from '../native.js';
import { matMulFloatModel, matMulIntegerModel } from '../peers/onnx-model.js';
import { loadWasm } from '../wasm.js';

const SHAPES: [number, number, number][] = [
  [64, 784, 500],
  [256, 1024, 1024],
  [1024, 1024, 1024],
];

function randomOperands(m: number, k: number, n: number) {
  const rng = new Rng(1234);
  const a = Uint8Array.from(rng.uint32(m * k), (u) => u & 0xff);
  const w = Int8Array.from(rng.uint32(n * k), (u) => (u & 0xff) - 128);
  return { a, w };
}

/** Transposes s8 [n, k] (qbnn's weight layout) to [k, n] (ONNX MatMul's B). */
function transpose(w: Int8Array, n: number, k: number): Int8Array {
  const t = new Int8Array(w.length);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) t[j * n + i] = w[i * k + j];
  return t;
}

export async function qbnnCase(
  ctx: SuiteContext,
  provider: KernelProvider,
  impl: string,
  shape: [number, number, number],
  threads: number,
) {
  const [m, k, n] = shape;
  const { a, w } = randomOperands(m, k, n);
  const packed = provider.packWeights(w, n, k, 0);
  const out = new Int32Array(m * n);
  const args = {
    a,
    m,
    aScale: 0.02,
    aZeroPoint: 3,
    w: packed,
    wScale: 0.01,
    output: { kind: 'i32' as const },
    out,
  };
  // The 1024^3 case on the JS reference takes seconds a run: fewer runs there.
  const runs = impl === 'js' && m * k * n > 5e8 ? Math.min(ctx.runs, 5) : ctx.runs;
  return ctx.add(
    await measure('u8s8 gemm', impl, { m, k, n, threads }, () => provider.qgemm(args), {
      runs,
      work: (2 * m * k * n) / 1e9,
      unit: 'GOPS',
    }),
  );
}

export const gemmSuite: Suite = {
  name: 'gemm',
  description:
    'u8s8 GEMM: JS reference, every native ISA path (1 and 2 threads), the wasm kernels, tfjs-wasm fp32, ONNX Runtime',
  async run(ctx) {
    const shapes = ctx.quick ? SHAPES.slice(0, 1) : SHAPES;
    const native = await loadNative();
    const wasm = await loadWasm();
    if (wasm) {
      const info = wasm.wasmInfo()!;
      ctx.note(
        `wasm kernels (@qbnn/wasm) under Node ${process.version}: builds ${info.available.join(', ')}; relaxed SIMD ${info.relaxedSupported ? (info.relaxedExact ? 'exact' : 'present but inexact (refused)') : 'not enabled'}`,
      );
    } else ctx.note('wasm kernels not loaded: wasm cases skipped');
    const gops = new Map<string, number>();
    const key = (impl: string, s: number[], threads: number) => `${impl}@${s.join('x')}/t${threads}`;

    if (native) {
      const peak = native.vpdpbusdPeakGops(ctx.quick ? 2_000_000 : 50_000_000, 'zmm');
      if (peak !== null) {
        ctx.ratio('vpdpbusd_peak_gops_1core', peak);
        gops.set('peak', peak);
      }
    } else {
      ctx.note('native addon not loaded: only the JS reference and peers ran');
    }

    for (const shape of shapes) {
      const js = await qbnnCase(ctx, getKernelProvider('js'), 'js', shape, 1);
      gops.set(key('js', shape, 1), js.throughput ?? 0);
      for (const variant of wasm?.wasmInfo()?.available ?? []) {
        wasm!.setWasmVariant(variant);
        const r = await qbnnCase(ctx, getKernelProvider('wasm'), `wasm-${variant}`, shape, 1);
        gops.set(key(`wasm-${variant}`, shape, 1), r.throughput ?? 0);
      }
      wasm?.setWasmVariant('best');
      if (native) {
        const info = native.nativeInfo()!;
        const paths = ctx.quick ? [info.best] : info.available;
        for (const isa of paths) {
          native.setIsa(isa);
          // Emulated AMX is a correctness path, far from a fast one: time it on the small shape only.
          if (isa === 'amx-emulated' && shape[0] > 64) continue;
          for (const threads of ctx.quick ? [1] : [1, 2]) {
            native.setThreads(threads);
            const r = await qbnnCase(ctx, getKernelProvider('native'), `native-${isa}`, shape, threads);
            gops.set(key(isa, shape, threads), r.throughput ?? 0);
          }
        }
        native.setIsa('best');
        native.setThreads(2);
      }
      await ortCases(ctx, shape, gops, key);
      await tfjsCase(ctx, shape, gops, key);
    }

    // Ratios the issues ask for: efficiency against the measured peak, qbnn / ORT, wasm / JS.
    const peak = gops.get('peak');
    const wasmBest = wasm?.wasmInfo()?.variant;
    for (const shape of wasmBest ? shapes : []) {
      const s = shape.join('x');
      const w = gops.get(key(`wasm-${wasmBest}`, shape, 1));
      const js = gops.get(key('js', shape, 1));
      const tfjs = gops.get(key('tfjs', shape, 1));
      if (w && js) ctx.ratio(`${s === '256x1024x1024' ? 'target_' : ''}wasm_over_js_${s}`, w / js);
      if (w && tfjs) ctx.ratio(`wasm_int8_over_tfjs_fp32_${s}`, w / tfjs);
    }
    if (native) {
      const best = native.nativeInfo()!.best;
      for (const shape of shapes) {
        const s = shape.join('x');
        const one = gops.get(key(best, shape, 1));
        const two = gops.get(key(best, shape, 2));
        const ort1 = gops.get(key('ort-int8', shape, 1));
        if (one && peak) ctx.ratio(`efficiency_${best}_${s}_1t`, one / peak);
        if (one && two) ctx.ratio(`scaling_2t_over_1t_${best}_${s}`, two / one);
        if (one && ort1) ctx.ratio(`qbnn_over_ort_int8_${s}_1t`, one / ort1);
        const js = gops.get(key('js', shape, 1));
        if (one && js) ctx.ratio(`native_over_js_${s}`, one / js);
      }
    }
  },
};

async function ortCases(
  ctx: SuiteContext,
  shape: [number, number, number],
  gops: Map<string, number>,
  key: (impl: string, s: number[], t: number) => string,
) {
  const [m, k, n] = shape;
  const { a, w } = randomOperands(m, k, n);
  const wt = transpose(w, n, k);
  for (const threads of ctx.quick ? [1] : [1, 2]) {
    const session = await ort.InferenceSession.create(matMulIntegerModel(m, k, n, wt, 3), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    const feeds = { a: new ort.Tensor('uint8', a, [m, k]) };
    const r = ctx.add(
      await measure(
        'u8s8 gemm',
        'onnxruntime MatMulInteger',
        { m, k, n, threads },
        () => session.run(feeds),
        {
          runs: ctx.runs,
          work: (2 * m * k * n) / 1e9,
          unit: 'GOPS',
        },
      ),
    );
    gops.set(key('ort-int8', shape, threads), r.throughput ?? 0);
    await session.release();
  }
  const wf = Float32Array.from(wt);
  const session = await ort.InferenceSession.create(matMulFloatModel(m, k, n, wf), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const feeds = { a: new ort.Tensor('float32', Float32Array.from(a), [m, k]) };
  ctx.add(
    await measure('fp32 gemm', 'onnxruntime MatMul', { m, k, n, threads: 1 }, () => session.run(feeds), {
      runs: ctx.runs,
      work: (2 * m * k * n) / 1e9,
      unit: 'GFLOPS',
    }),
  );
  await session.release();
}

export async function tfjsCase(
  ctx: SuiteContext,
  shape: [number, number, number],
  gops: Map<string, number>,
  key: (impl: string, s: number[], t: number) => string,
) {
  const [m, k, n] = shape;
  const info = await initBackend({ backend: 'wasm' });
  const rng = new Rng(99);
  const a = tf.tensor2d(rng.normal(m * k), [m, k]);
  const b = tf.tensor2d(rng.normal(k * n), [k, n]);
  const time = async (impl: string) =>
    ctx.add(
      await measure(
        'fp32 gemm',
        impl,
        { m, k, n, threads: 1 },
        async () => {
          const c = tf.matMul(a, b);
          await c.data();
          c.dispose();
        },
        { runs: ctx.runs, work: (2 * m * k * n) / 1e9, unit: 'GFLOPS' },
      ),
    );
  // With @qbnn/native-amx loaded, tfjs-wasm's MatMul is qbnn's native kernel: time it under its
  // own name, then tfjs-wasm's own kernel with the native ones unregistered.
  const native = info.backend === 'wasm' && floatKernelSet() !== null ? await loadNative() : undefined;
  if (native) {
    const threads = native.nativeInfo()!.threads;
    native.setThreads(1);
    const r = await time('fp32 native (tfjs-wasm + qbnn kernels)');
    gops.set(key('tfjs-native', shape, 1), r.throughput ?? 0);
    native.setThreads(threads);
    native.disableNativeFloatKernels();
  }
  try {
    const r = await time(`tfjs-${info.backend}`);
    gops.set(key('tfjs', shape, 1), r.throughput ?? 0);
  } finally {
    native?.enableNativeFloatKernels();
    a.dispose();
    b.dispose();
  }
}
