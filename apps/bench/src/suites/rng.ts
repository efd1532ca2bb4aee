import {
  type GaussianSampleArgs,
  gaussianSampleMultipliers,
  getKernelProvider,
  initBackend,
  type KernelProvider,
  Rng,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { measure, type Suite, type SuiteContext } from '../harness.js';
import { loadNative } from '../native.js';
import { loadWasm } from '../wasm.js';

/** A fused-sampler job of LeNet-5's fc1 size (500 x 2450 weights). */
function gaussianArgs(n: number, k: number): GaussianSampleArgs {
  const rng = new Rng(5);
  const mu = Int8Array.from(rng.uint32(n * k), (u) => (u & 0xff) - 128);
  const sigma = Uint8Array.from(rng.uint32(n * k), (u) => u & 0xff);
  const zeros = () => new Int32Array(n);
  const m = gaussianSampleMultipliers({
    n,
    muScale: 0.01,
    sigmaScale: 0.001,
    noiseScale: 0.004,
    weightScale: 0.012,
  });
  return {
    mu,
    muZeroPoint: zeros(),
    sigma,
    sigmaZeroPoint: zeros(),
    noiseZeroPoint: zeros(),
    weightZeroPoint: zeros(),
    ...m,
    n,
    k,
    bits: 8,
    key: [1, 2],
    position: 0,
  };
}

export async function samplerCases(
  ctx: SuiteContext,
  provider: KernelProvider,
  impl: string,
  threads: number,
) {
  const count = ctx.quick ? 1 << 20 : 1 << 24;
  const out = new Int8Array(count);
  ctx.add(
    await measure(
      'qnormal',
      impl,
      { count, threads },
      () => provider.qnormal({ key: [7, 9], position: 0, out }),
      {
        runs: ctx.runs,
        work: count / 1e9,
        unit: 'G samples/s',
      },
    ),
  );
  const [n, k] = [500, 2450];
  const args = gaussianArgs(n, k);
  ctx.add(
    await measure(
      'fused gaussian sample+pack',
      impl,
      { n, k, threads },
      () => {
        const p = provider.sampleGaussianPacked(args);
        p.dispose?.();
      },
      { runs: ctx.runs, work: (n * k) / 1e9, unit: 'G weights/s' },
    ),
  );
}

export const rngSuite: Suite = {
  name: 'rng',
  description:
    'quantised-normal sampling and fused Gaussian sample+pack (JS, wasm, native) vs float normals and tfjs randomNormal',
  async run(ctx) {
    const count = ctx.quick ? 1 << 20 : 1 << 22;
    const rng = new Rng(3);
    ctx.add(
      await measure('float32 normal (Box-Muller)', 'qbnn Rng (JS)', { count }, () => rng.normal(count), {
        runs: ctx.runs,
        work: count / 1e6,
        unit: 'M samples/s',
      }),
    );
    const info = await initBackend({ backend: 'wasm' });
    ctx.add(
      await measure(
        'float32 normal',
        `tfjs randomNormal (${info.backend})`,
        { count },
        async () => {
          const t = tf.randomNormal([count], 0, 1, 'float32', 1);
          await t.data();
          t.dispose();
        },
        { runs: ctx.runs, work: count / 1e6, unit: 'M samples/s' },
      ),
    );
    await samplerCases(ctx, getKernelProvider('js'), 'js', 1);
    const wasm = await loadWasm();
    if (wasm) await samplerCases(ctx, getKernelProvider('wasm'), `wasm-${wasm.wasmInfo()!.variant}`, 1);
    else ctx.note('wasm kernels not loaded: wasm cases skipped');
    const native = await loadNative();
    if (!native) {
      ctx.note('native addon not loaded: native cases skipped');
      return;
    }
    for (const threads of ctx.quick ? [1] : [1, 2]) {
      native.setThreads(threads);
      await samplerCases(ctx, getKernelProvider('native'), `native-${native.isa()}`, threads);
    }
    native.setThreads(2);
  },
};
