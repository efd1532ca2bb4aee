// `pnpm bench train`: training throughput (images a second) of Bayesian networks, qbnn on
// tfjs-backend-wasm with the native fp32 kernels (1 and 2 threads) and with tfjs's own kernels,
// beside a PyTorch peer that trains the way Bayesian-Torch does (peers/torch_train.py), in the
// same run. Times are per training step (forward, ELBO, backward, Adam); 1-thread cases are
// timed in process CPU time (a shared machine's wall clock measures other jobs), 2-thread cases
// in wall-clock time. qbnn and PyTorch alternate in rounds, cell by cell, so that a change in the
// machine's load falls on both; each row pools the steps of every round.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { initBackend, Rng } from '@qbnn/core';
import { crossEntropy, fit, type Module } from '@qbnn/nn';
import { elboLoss, gaussianNll, modelKl, setSamplingMode } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import {
  type CaseResult,
  lapTimer,
  medianOf,
  pairedRatios,
  quantileOf,
  type Suite,
  type SuiteContext,
} from '../harness.js';
import { buildBayes, INPUT_SHAPE, type ModelName } from '../models.js';
import { loadNative } from '../native.js';
import { OPENBLAS, PYTHON, TUNED_MALLOC, torchEnv, torchUnavailable } from '../torch-peer.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'peers', 'torch_train.py');
const DATASET_SIZE = 60000;

interface TrainCase {
  model: ModelName;
  posterior: 'gaussian' | 'mcdropout';
  mode: 'weights' | 'local';
}

/** The MLP cells' multiple of the steps and warm-up steps (see run). */
const MLP_STEP_SCALE = 12;

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
  q1Ms: number;
  q3Ms: number;
  minMs: number;
  maxMs: number;
  /** Includes the slow steps (garbage collection, compilation): what an epoch's time averages. */
  meanMs: number;
  runs: number;
  /** The median of each round's steps, in round order: the drift between rounds. */
  roundMedians: number[];
}

/** Pooled statistics of a row's steps, given round by round. */
export function timingOf(rounds: number[][]): Timing {
  const times = rounds.flat().sort((a, b) => a - b);
  return {
    medianMs: medianOf(times),
    q1Ms: quantileOf(times, 0.25),
    q3Ms: quantileOf(times, 0.75),
    minMs: times[0],
    maxMs: times[times.length - 1],
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
    runs: times.length,
    roundMedians: rounds.map(medianOf),
  };
}

/** Step times (ms) of `steps` training steps of one case after `warmup` steps (fit's step events). */
async function timeQbnn(
  c: TrainCase,
  batch: number,
  steps: number,
  warmup: number,
  cpuClock: boolean,
): Promise<number[]> {
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
  const times: number[] = [];
  const lap = lapTimer(cpuClock ? 'cpu' : 'wall');
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
        const ms = lap();
        if (e.globalStep > warmup) times.push(ms);
      },
    },
  );
  x.dispose();
  y.dispose();
  for (const p of model.parameters()) p.dispose();
  return times;
}

/**
 * A long-lived PyTorch peer (peers/torch_train.py) for one thread count: one JSON case a line in,
 * step times out. The thread count is the process's: torch.set_num_threads does not reach
 * OpenBLAS's own pool, whose second thread (spinning between calls) doubled a "1-thread" peer's
 * process CPU time when both cores were free.
 */
class TorchPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  torchVersion = '';

  constructor(malloc: Record<string, string>, threads: number) {
    this.child = spawn(PYTHON, [SCRIPT], {
      stdio: 'pipe',
      env: torchEnv(threads, malloc),
    });
    this.child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async steps(req: {
    model: string;
    posterior: string;
    batch: number;
    threads: number;
    steps: number;
    warmup: number;
  }): Promise<number[]> {
    this.child.stdin.write(`${JSON.stringify({ ...req, cpuClock: req.threads === 1 })}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error(`PyTorch peer ${SCRIPT} exited (code ${this.child.exitCode})`);
    const r = JSON.parse(next.value) as { torch: string; times_ms: number[] };
    this.torchVersion = r.torch;
    return r.times_ms;
  }

  close(): void {
    this.child.stdin.end();
  }
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
    q1_ms: round(t.q1Ms),
    q3_ms: round(t.q3Ms),
    runs: t.runs,
    throughput: round(imagesPerS),
    unit: 'images/s',
    // The load when the row finished: a 2-thread PyTorch row on a busy machine measures OpenMP's
    // spin-waiting threads losing their cores (10x slower steps at load 6), not PyTorch.
    extra: {
      gflops: round((imagesPerS * trainFlops(c)) / 1e9),
      load1: round(loadavg()[0]),
      round_medians_ms: t.roundMedians.map(round).join(' '),
      mean_ms: round(t.meanMs),
    },
  });
}

const TORCH_TUNED = 'pytorch (Bayesian-Torch style, OpenBLAS, malloc tuned)';
const TORCH_DEFAULT = 'pytorch (Bayesian-Torch style, OpenBLAS, glibc malloc defaults)';

export const trainSuite: Suite = {
  name: 'train',
  description:
    'training images/s of Bayesian LeNet-5 (Gaussian weights/local, MC Dropout) and the MLP: qbnn native fp32 kernels (1, 2 threads) and tfjs-wasm vs a Bayesian-Torch-style PyTorch peer, in alternating rounds',
  async run(ctx: SuiteContext) {
    await initBackend({ backend: 'wasm' });
    const native = await loadNative();
    // A filter picks from the full grid (--quick then only shortens the cells), as in the other suites.
    const fullGrid = !ctx.quick || ctx.filtered;
    const batches = fullGrid ? [64, 256] : [8];
    const steps = ctx.quick ? 2 : Math.max(5, ctx.runs);
    // PyTorch's steps are cheap beside its drift between runs and rounds (b64: 58.5 and 78.5 ms in
    // two runs of one script): more of them a round and more rounds, each round's median reported.
    const torchSteps = ctx.quick ? 2 : Math.max(10, ctx.runs);
    // --rounds (default 5, 2 with --quick)
    const rounds = ctx.rounds;
    // qbnn's first ~5 steps fault in the wasm heap and native scratch; PyTorch settles in ~3.
    const warmup = ctx.quick ? 1 : 5;
    const torchWarmup = ctx.quick ? 1 : 3;
    // The MLP's step is ~1-2 ms on either side: a fresh qbnn model's first few dozen steps run
    // 2-4x their steady time (V8 compiling and collecting, which process CPU time counts), so 5 + 7
    // steps measured that, not training (0.27-0.38x PyTorch where 1,000 steps read 1.2 ms a step
    // against its 2.0). Cheap cells take this many times the steps and warm-up, on both sides.
    const scale = (c: TrainCase) => (ctx.quick || c.model !== 'mlp' ? 1 : MLP_STEP_SCALE);
    const cases = fullGrid
      ? CASES
      : CASES.filter((c) => c.model === 'mlp' || c.mode === 'weights').slice(0, 2);
    const threadCounts = fullGrid ? [1, 2] : [1];
    const peak = native?.fp32PeakGflops?.(ctx.quick ? 5_000_000 : 100_000_000) ?? null;
    if (peak !== null) ctx.ratio('fp32_fma_peak_gflops_1_core', peak);
    ctx.note(
      `Per training step: forward with weight sampling, NLL + KL / ${DATASET_SIZE}, backward, Adam. 1-thread rows in process CPU time, 2-thread rows in wall-clock time. Each cell runs ${rounds} round(s) alternating PyTorch and qbnn (${steps} timed steps a round after ${warmup} warm-up steps for qbnn, ${torchSteps} after ${torchWarmup} for PyTorch, on a fresh model; ${MLP_STEP_SCALE} times both for the MLP, whose ~2 ms steps would otherwise time a fresh model's first steps, V8 still compiling); a row pools every round's steps (median, quartiles, min, max; extra.round_medians_ms lists each round's median in order), and a speed-up over PyTorch is the median of the rounds' ratios (a round's PyTorch median over qbnn's), their min and max beside it (spreads in the JSON). gflops = images/s x analytic flops of a training image (LeNet-5 ${round(trainFlops(CASES[0]) / 1e6)} MFLOP weights mode, ${round(trainFlops(CASES[1]) / 1e6)} local: the direct convolution's multiply-adds, so native_share_of_fp32_peak_* reads direct-equivalent work a second over the peak and can pass 1 where LeNet-5's conv2 runs as Winograd F(2, 5) on AVX-512, which does fewer); the FP32 FMA peak of one core is measured in the same run (${peak === null ? 'unavailable' : `${round(peak)} GFLOPS`}).`,
    );
    const why = torchUnavailable();
    // per thread count, the tuned- and default-allocator peers (started on first use)
    const peerSets = new Map<number, [string, string, TorchPeer][]>();
    const peersFor = (threads: number): [string, string, TorchPeer][] => {
      if (why) return [];
      let set = peerSets.get(threads);
      if (!set) {
        set = [
          [TORCH_TUNED, 'pytorch', new TorchPeer(TUNED_MALLOC, threads)],
          [TORCH_DEFAULT, 'pytorch_default_malloc', new TorchPeer({}, threads)],
        ];
        peerSets.set(threads, set);
      }
      return set;
    };
    if (why) ctx.note(`PyTorch peer skipped: ${why}. Install Debian python3-torch to run it.`);
    else {
      ctx.note(
        `PyTorch peer: peers/torch_train.py, one long-lived process per allocator setting and thread count (OMP_NUM_THREADS = MKL_NUM_THREADS = OPENBLAS_NUM_THREADS = threads), LD_LIBRARY_PATH=${OPENBLAS} (its fp32 BLAS), torch.set_num_threads(threads); Reparameterization layers (sample every weight, closed-form KL in the forward), Adam. Speed-ups are quoted against the tuned allocator (${Object.entries(
          TUNED_MALLOC,
        )
          .map(([k, v]) => `${k}=${v}`)
          .join(
            ' ',
          )}): with glibc's defaults PyTorch refaults its large buffers every step (thousands of page faults in system time), which can double its step time and scatters it up to 3x between steps; the default-allocator rows show that.`,
      );
    }
    const nativeOn = native?.enableNativeFloatKernels().active === true;
    if (!nativeOn) ctx.note('native fp32 kernels unavailable: qbnn rows run on tfjs-backend-wasm only');
    try {
      for (const c of cases)
        for (const batch of batches) {
          if (!ctx.accepts({ model: c.model, posterior: c.posterior, mode: c.mode, batch })) continue;
          const tagOf = (threads: number) =>
            `${c.model}_${c.posterior}${c.posterior === 'gaussian' ? `_${c.mode}` : ''}_b${batch}_t${threads}`;
          const peerMs = new Map<number, number>();
          for (const threads of threadCounts) {
            if (!ctx.accepts({ model: c.model, posterior: c.posterior, mode: c.mode, batch, threads }))
              continue;
            const clock = threads === 1 ? 'cpu' : 'wall';
            // each row's steps, round by round
            const pooled = new Map<string, number[][]>();
            const pool = (impl: string, ms: number[]) => pooled.set(impl, [...(pooled.get(impl) ?? []), ms]);
            const peers = peersFor(threads);
            for (let r = 0; r < rounds; ++r) {
              if (c.mode === 'weights')
                for (const [impl, , peer] of peers)
                  pool(
                    impl,
                    await peer.steps({
                      model: c.model,
                      posterior: c.posterior,
                      batch,
                      threads,
                      steps: torchSteps * scale(c),
                      warmup: torchWarmup * scale(c),
                    }),
                  );
              if (nativeOn) {
                native?.setThreads(threads);
                pool(NATIVE, await timeQbnn(c, batch, steps * scale(c), warmup * scale(c), threads === 1));
              }
            }
            const qbnn = pooled.get(NATIVE);
            const qt = qbnn ? timingOf(qbnn) : undefined;
            const mine = qt ? record(ctx, c, NATIVE, batch, threads, qt, clock) : undefined;
            for (const [impl, name] of peers) {
              const ms = pooled.get(impl);
              if (!ms) continue;
              const t = timingOf(ms);
              record(ctx, c, impl, batch, threads, t, clock);
              if (name === 'pytorch') peerMs.set(threads, t.medianMs);
              if (!mine || !qt) continue;
              // rounds alternate, so each pair ran side by side: the median of their ratios, as peers
              const paired = rounds > 1 ? pairedRatios(t.roundMedians, qt.roundMedians) : undefined;
              ctx.ratio(
                `native_speedup_over_${name}_${tagOf(threads)}`,
                paired?.median ?? t.medianMs / mine.median_ms,
                paired,
              );
            }
            if (peak !== null && mine)
              ctx.ratio(
                `native_share_of_fp32_peak_${tagOf(threads)}`,
                ((batch / mine.median_ms) * 1e3 * trainFlops(c)) / (peak * 1e9 * threads),
              );
          }
          // tfjs-wasm's own kernels (single-threaded): one round, the reference qbnn started from.
          if (!ctx.accepts({ impl: 'wasm', threads: 1 })) continue;
          native?.disableNativeFloatKernels();
          const plain = record(
            ctx,
            c,
            PLAIN,
            batch,
            1,
            timingOf([await timeQbnn(c, batch, steps * scale(c), warmup * scale(c), true)]),
            'cpu',
          );
          if (nativeOn) native?.enableNativeFloatKernels();
          const peer1 = peerMs.get(1);
          if (peer1 !== undefined)
            ctx.ratio(`wasm_speedup_over_pytorch_${tagOf(1)}`, peer1 / plain.median_ms);
        }
    } finally {
      for (const set of peerSets.values()) for (const [, , peer] of set) peer.close();
    }
    native?.setThreads(2);
  },
};
