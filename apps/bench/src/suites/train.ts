// `pnpm bench train`: training throughput (images a second) of Bayesian networks, qbnn on
// tfjs-backend-wasm with the native fp32 kernels (1 and 2 threads) and with tfjs's own kernels,
// beside a PyTorch peer that trains the way Bayesian-Torch does (peers/torch_train.py), in the
// same run. Times are per training step (forward, ELBO, backward, Adam); 1-thread cases are
// timed in process CPU time (a shared machine's wall clock measures other jobs), 2-thread cases
// in wall-clock time.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { initBackend, Rng } from '@qbnn/core';
import { crossEntropy, fit, type Module } from '@qbnn/nn';
import { elboLoss, gaussianNll, modelKl, setSamplingMode } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { type CaseResult, medianOf, type Suite, type SuiteContext } from '../harness.js';
import { buildBayes, INPUT_SHAPE, type ModelName } from '../models.js';
import { loadNative } from '../native.js';
import { OPENBLAS, torchUnavailable } from './peers.js';

const PYTHON = process.env.QBNN_BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'peers', 'torch_train.py');
const DATASET_SIZE = 60000;

interface TrainCase {
  model: ModelName;
  posterior: 'gaussian' | 'mcdropout';
  mode: 'weights' | 'local';
}

const CASES: TrainCase[] = [
  { model: 'lenet5', posterior: 'gaussian', mode: 'weights' },
  { model: 'lenet5', posterior: 'gaussian', mode: 'local' },
  { model: 'lenet5', posterior: 'mcdropout', mode: 'weights' },
  { model: 'mlp', posterior: 'gaussian', mode: 'weights' },
];

/** Multiply-accumulates of one forward pass of an image (weights mode). */
const FORWARD_MACS: Record<string, number> = {
  lenet5: 28 * 28 * 20 * 25 + 14 * 14 * 50 * 500 + 2450 * 500 + 500 * 10,
  mlp: 13 * 100 + 100 * 100 * 2 + 100 * 2,
};
const FIRST_LAYER_MACS: Record<string, number> = { lenet5: 28 * 28 * 20 * 25, mlp: 13 * 100 };

/**
 * Flops of one training image: forward, input gradients (none for the first layer) and weight
 * gradients; local reparameterisation runs the mean and the variance paths.
 */
function trainFlops(c: TrainCase): number {
  const f = FORWARD_MACS[c.model];
  const flops = 2 * (f + (f - FIRST_LAYER_MACS[c.model]) + f);
  return c.mode === 'local' ? 2 * flops : flops;
}

/** Row names: tfjs-wasm with qbnn's native fp32 kernels, and tfjs-wasm's own kernels. */
const NATIVE = 'qbnn fp32 native (tfjs-wasm + qbnn kernels)';
const PLAIN = 'qbnn plain tfjs-wasm (native fp32 kernels unregistered)';

const caseName = (c: TrainCase) =>
  `train ${c.model}/${c.posterior}${c.posterior === 'gaussian' ? ` ${c.mode}` : ''}`;

interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
}

/** Times `steps` training steps of one case after `warmup` steps (fit's step events). */
async function timeQbnn(
  c: TrainCase,
  batch: number,
  steps: number,
  warmup: number,
  cpuClock: boolean,
): Promise<Timing> {
  const model: Module = buildBayes(c.model, c.posterior, 0);
  model.train();
  if (c.posterior === 'gaussian') setSamplingMode(model, c.mode);
  const n = batch * (steps + warmup);
  const per = INPUT_SHAPE[c.model].reduce((a, b) => a * b, 1);
  const rng = new Rng(1);
  const x = tf.tensor(
    Float32Array.from(rng.uint32(n * per), (v) => v / 2 ** 32),
    [n, ...INPUT_SHAPE[c.model]],
  );
  const y =
    c.model === 'lenet5'
      ? tf.tensor1d(
          Int32Array.from({ length: n }, (_, i) => i % 10),
          'int32',
        )
      : tf.tensor1d(Float32Array.from(rng.normal(n)));
  const nll = (out: tf.Tensor, t: tf.Tensor) =>
    c.model === 'lenet5' ? crossEntropy(out, t) : gaussianNll(out, t);
  const clock = () => {
    if (!cpuClock) return performance.now();
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e3;
  };
  const times: number[] = [];
  let last = clock();
  await fit(
    model,
    { x, y },
    {
      epochs: 1,
      batchSize: batch,
      shuffle: false,
      seed: 0,
      loss: (m, xb, yb) => elboLoss(nll(m.apply(xb), yb), modelKl(m), { datasetSize: DATASET_SIZE, beta: 1 }),
      onProgress: (e) => {
        if (e.type !== 'step') return;
        const now = clock();
        if (e.globalStep > warmup) times.push(now - last);
        last = now;
      },
    },
  );
  x.dispose();
  y.dispose();
  for (const p of model.parameters()) p.dispose();
  times.sort((a, b) => a - b);
  return { medianMs: medianOf(times), minMs: times[0], maxMs: times[times.length - 1], runs: times.length };
}

interface TorchResult {
  model: string;
  posterior: string;
  batch: number;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  runs: number;
}

async function runTorch(
  threads: number,
  cases: object[],
  steps: number,
  warmup: number,
): Promise<TorchResult[]> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [SCRIPT, JSON.stringify({ threads, cases, steps, warmup, cpuClock: threads === 1 })],
    {
      maxBuffer: 16 << 20,
      timeout: 60 * 60_000,
      env: {
        ...process.env,
        OMP_NUM_THREADS: String(threads),
        OPENBLAS_NUM_THREADS: String(threads),
        LD_LIBRARY_PATH: [OPENBLAS, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      },
    },
  );
  return (JSON.parse(stdout.trim().split('\n').pop() as string) as { results: TorchResult[] }).results;
}

const round = (v: number) => Number(v.toPrecision(4));

function record(
  ctx: SuiteContext,
  c: TrainCase,
  impl: string,
  batch: number,
  threads: number,
  t: Timing,
  clock: string,
): CaseResult {
  const imagesPerS = (batch / t.medianMs) * 1e3;
  return ctx.add({
    case: caseName(c),
    impl,
    params: { batch, threads, clock },
    median_ms: round(t.medianMs),
    min_ms: round(t.minMs),
    max_ms: round(t.maxMs),
    runs: t.runs,
    throughput: round(imagesPerS),
    unit: 'images/s',
    extra: { gflops: round((imagesPerS * trainFlops(c)) / 1e9) },
  });
}

export const trainSuite: Suite = {
  name: 'train',
  description:
    'training images/s of Bayesian LeNet-5 (Gaussian weights/local, MC Dropout) and the MLP: qbnn native fp32 kernels (1, 2 threads) and tfjs-wasm vs a Bayesian-Torch-style PyTorch peer',
  async run(ctx: SuiteContext) {
    await initBackend({ backend: 'wasm' });
    const native = await loadNative();
    const batches = ctx.quick ? [8] : [64, 256];
    const steps = ctx.quick ? 2 : Math.max(5, ctx.runs);
    const warmup = ctx.quick ? 1 : 2;
    const cases = ctx.quick
      ? CASES.filter((c) => c.model === 'mlp' || c.mode === 'weights').slice(0, 2)
      : CASES;
    const threadCounts = ctx.quick ? [1] : [1, 2];
    const peak = native?.fp32PeakGflops?.(ctx.quick ? 5_000_000 : 100_000_000) ?? null;
    if (peak !== null) ctx.ratio('fp32_fma_peak_gflops_1_core', peak);
    ctx.note(
      `Per training step: forward with weight sampling, NLL + KL / ${DATASET_SIZE}, backward, Adam. 1-thread rows in process CPU time, 2-thread rows in wall-clock time. gflops = images/s x analytic flops of a training image (LeNet-5 ${round(trainFlops(CASES[0]) / 1e6)} MFLOP weights mode, ${round(trainFlops(CASES[1]) / 1e6)} local); the FP32 FMA peak of one core is measured in the same run (${peak === null ? 'unavailable' : `${round(peak)} GFLOPS`}).`,
    );
    const why = torchUnavailable();
    const torch = new Map<string, number>();
    if (why) ctx.note(`PyTorch peer skipped: ${why}. Install Debian python3-torch to run it.`);
    else {
      const torchCases = cases
        .filter((c) => c.mode === 'weights')
        .flatMap((c) => batches.map((batch) => ({ model: c.model, posterior: c.posterior, batch })));
      for (const threads of threadCounts) {
        for (const r of await runTorch(threads, torchCases, steps, warmup)) {
          const c = cases.find(
            (k) => k.model === r.model && k.posterior === r.posterior && k.mode === 'weights',
          ) as TrainCase;
          const t = { medianMs: r.median_ms, minMs: r.min_ms, maxMs: r.max_ms, runs: r.runs };
          record(
            ctx,
            c,
            'pytorch (Bayesian-Torch style, OpenBLAS)',
            r.batch,
            threads,
            t,
            threads === 1 ? 'cpu' : 'wall',
          );
          torch.set(`${caseName(c)} b${r.batch} t${threads}`, r.median_ms);
        }
      }
      ctx.note(
        `PyTorch peer: peers/torch_train.py with LD_LIBRARY_PATH=${OPENBLAS} (its fp32 BLAS), torch.set_num_threads(threads); Reparameterization layers (sample every weight, closed-form KL in the forward), Adam.`,
      );
    }
    const nativeOn = native?.enableNativeFloatKernels().active === true;
    if (!nativeOn) ctx.note('native fp32 kernels unavailable: qbnn rows run on tfjs-backend-wasm only');
    for (const c of cases)
      for (const batch of batches) {
        if (!ctx.accepts({ model: c.model, posterior: c.posterior, mode: c.mode, batch })) continue;
        const impls: [string, number][] = nativeOn ? threadCounts.map((t) => [NATIVE, t]) : [];
        impls.push([PLAIN, 1]);
        for (const [impl, threads] of impls) {
          if (impl === PLAIN) native?.disableNativeFloatKernels();
          else {
            native?.enableNativeFloatKernels();
            native?.setThreads(threads);
          }
          const t = await timeQbnn(c, batch, steps, warmup, threads === 1);
          record(ctx, c, impl, batch, threads, t, threads === 1 ? 'cpu' : 'wall');
          const key = `${caseName(c)} b${batch} t${threads}`;
          const peer = torch.get(key);
          const tag = `${c.model}_${c.posterior}${c.posterior === 'gaussian' ? `_${c.mode}` : ''}_b${batch}_t${threads}`;
          const name = impl === PLAIN ? 'wasm' : 'native';
          if (peer !== undefined && c.mode === 'weights')
            ctx.ratio(`${name}_speedup_over_pytorch_${tag}`, peer / t.medianMs);
          if (peak !== null && impl !== PLAIN) {
            ctx.ratio(
              `native_share_of_fp32_peak_${tag}`,
              ((batch / t.medianMs) * 1e3 * trainFlops(c)) / (peak * 1e9 * threads),
            );
          }
        }
        native?.enableNativeFloatKernels();
      }
    native?.setThreads(2);
  },
};
