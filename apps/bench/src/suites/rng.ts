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
import { sampledLayers } from '../model-sampler.js';
import { buildBayes, quantizeModel } from '../models.js';
import { loadNative } from '../native.js';
import { loadWasm } from '../wasm.js';

/**
 * Scales of the sampler's tensors. `observed`: as observers give them (no simple ratios, like a
 * calibrated model's); `round`: round decimals whose ratios are simple fractions (m2 = 5/6,
 * m3 = 1/3), so many weights land exactly on float64 rounding ties, which the native sampler
 * decides in float64 (its float32 path proves every other lane).
 */
const SCALES = {
  observed: { muScale: 0.0103713, sigmaScale: 0.00117349, noiseScale: 0.00410627, weightScale: 0.0121473 },
  round: { muScale: 0.01, sigmaScale: 0.001, noiseScale: 0.004, weightScale: 0.012 },
} as const;

/** A fused-sampler job of LeNet-5's fc1 size (500 x 2450 weights). */
function gaussianArgs(n: number, k: number, scales: keyof typeof SCALES): GaussianSampleArgs {
  const rng = new Rng(5);
  const mu = Int8Array.from(rng.uint32(n * k), (u) => (u & 0xff) - 128);
  const sigma = Uint8Array.from(rng.uint32(n * k), (u) => u & 0xff);
  const zeros = () => new Int32Array(n);
  const m = gaussianSampleMultipliers({ n, ...SCALES[scales] });
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

// A native sampler call of LeNet-5's fc1 takes ~0.8 ms: one call a run would time the host's
// noise (single calls read 1.0-1.5 G weights/s on the same build that loops at 1.65).
const MIN_RUN_MS = 20;

export async function samplerCases(
  ctx: SuiteContext,
  provider: KernelProvider,
  impl: string,
  threads: number,
  model?: ReturnType<typeof sampledLayers>,
) {
  const count = ctx.quick ? 1 << 20 : 1 << 24;
  const out = new Int8Array(count);
  // one thread: this process's CPU time (the machine is shared; the wall clock would also time
  // other jobs); two: wall clock
  const clock = threads === 1 ? ('cpu' as const) : ('wall' as const);
  const wanted = (kernel: string, scales?: string) =>
    ctx.accepts({ impl, threads, kernel, ...(scales ? { scales } : {}) });
  if (wanted('qnormal'))
    ctx.add(
      await measure(
        'qnormal',
        impl,
        { count, threads, clock },
        () => provider.qnormal({ key: [7, 9], position: 0, out }),
        {
          runs: ctx.runs,
          work: count / 1e9,
          unit: 'G samples/s',
          clock,
          minRunMs: MIN_RUN_MS,
        },
      ),
    );
  const [n, k] = [500, 2450];
  for (const scales of ['observed', 'round'] as const) {
    if (!wanted('sampler', scales)) continue;
    const args = gaussianArgs(n, k, scales);
    // every draw into one pack, as the engine and plans sample (a new pack a call would also
    // time its allocation and page faults)
    const into = provider.sampleGaussianPacked(args);
    let position = 0;
    ctx.add(
      await measure(
        'fused gaussian sample+pack',
        impl,
        { n, k, threads, scales, clock },
        () => {
          position += 1e6;
          const p = provider.sampleGaussianPacked({ ...args, position, out: into });
          if (p !== into) p.dispose?.();
        },
        { runs: ctx.runs, work: (n * k) / 1e9, unit: 'G weights/s', clock, minRunMs: MIN_RUN_MS },
      ),
    );
    into.dispose?.();
  }
  if (!model || !wanted('sampler', 'ptq-model')) return;
  // One Monte Carlo sample of a real model: each Bayesian layer's own mu, sigma, zero points and
  // per-channel multipliers (the PTQ model), a kernel call per layer into its own pack.
  const packs = model.map(({ args }) => provider.sampleGaussianPacked({ ...args, position: 0 }));
  const weights = model.reduce((w, { args }) => w + args.n * args.k, 0);
  let position = 0;
  ctx.add(
    await measure(
      'fused gaussian sample+pack',
      impl,
      { model: 'lenet5', layers: model.length, weights, threads, scales: 'ptq-model', clock },
      () => {
        position += 1e6;
        model.forEach(({ args }, i) => {
          const p = provider.sampleGaussianPacked({ ...args, position, out: packs[i] });
          if (p !== packs[i]) p.dispose?.();
        });
      },
      { runs: ctx.runs, work: weights / 1e9, unit: 'G weights/s', clock, minRunMs: MIN_RUN_MS },
    ),
  );
  for (const p of packs) p.dispose?.();
}

export const rngSuite: Suite = {
  name: 'rng',
  description:
    'quantised-normal sampling and fused Gaussian sample+pack (JS, wasm, native) vs float normals and tfjs randomNormal',
  async run(ctx) {
    const count = ctx.quick ? 1 << 20 : 1 << 22;
    const rng = new Rng(3);
    if (ctx.accepts({ impl: 'js', kernel: 'normal' }))
      ctx.add(
        await measure('float32 normal (Box-Muller)', 'qbnn Rng (JS)', { count }, () => rng.normal(count), {
          runs: ctx.runs,
          work: count / 1e6,
          unit: 'M samples/s',
        }),
      );
    const info = await initBackend({ backend: 'wasm' });
    if (ctx.accepts({ impl: 'tfjs', kernel: 'normal' }))
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
    ctx.note(
      'fused gaussian sample+pack: LeNet-5 fc1 size, every draw written into one pack (as the engine and plans sample); scales=observed: tensor scales without simple ratios (as a calibrated model has), scales=round: 0.01 / 0.001 / 0.004 / 0.012, whose multiplier ratios (5/6, 1/3) put many weights exactly on float64 rounding ties, which the native sampler decides in float64; scales=ptq-model: one Monte Carlo sample of the Gaussian LeNet-5 after PTQ (the model of the bnn and peers suites), each of its 4 Bayesian layers with its own mu, sigma, zero points and per-channel multipliers, a kernel call per layer into its own pack. qnormal and the sampler: one-thread cases in process CPU time (clock=cpu), two-thread cases wall clock.',
    );
    const qm = await quantizeModel('lenet5', buildBayes('lenet5', 'gaussian'));
    const model = sampledLayers(qm);
    await samplerCases(ctx, getKernelProvider('js'), 'js', 1, model);
    const wasm = await loadWasm();
    if (wasm)
      await samplerCases(ctx, getKernelProvider('wasm'), `wasm-${wasm.wasmInfo()!.variant}`, 1, model);
    else ctx.note('wasm kernels not loaded: wasm cases skipped');
    const native = await loadNative();
    if (!native) {
      ctx.note('native addon not loaded: native cases skipped');
      qm.dispose();
      return;
    }
    for (const threads of ctx.quick ? [1] : [1, 2]) {
      native.setThreads(threads);
      await samplerCases(ctx, getKernelProvider('native'), `native-${native.isa()}`, threads, model);
    }
    native.setThreads(2);
    qm.dispose();
  },
};
