import { floatKernelSet, initBackend } from '@qbnn/core';
import type { Module } from '@qbnn/nn';
import { predict } from '@qbnn/posteriors';
import type { QuantizedModel } from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { type CaseResult, type Clock, measure, type Suite, type SuiteContext } from '../harness.js';
import {
  buildBayes,
  INPUT_SHAPE,
  inputBatch,
  MODEL_NOTE,
  MODELS,
  type ModelName,
  POSTERIORS,
  type PosteriorKind,
  quantizeModel,
  supportsMode,
} from '../models.js';
import { loadNative } from '../native.js';
import { runPlainWasmChild } from '../plain-wasm.js';
import { loadWasm } from '../wasm.js';

export type Precision = 'fp32-tfjs-wasm' | 'fp32-native' | 'int8-js' | 'int8-wasm' | 'int8-native';

/**
 * What each precision runs on, for the notes. fp32-native is tfjs-backend-wasm with qbnn's native
 * fp32 kernels in its registry (what importing @qbnn/native-amx gives); fp32-tfjs-wasm is plain
 * tfjs-backend-wasm, measured in a child process started with QBNN_NATIVE_FP32=0 whenever the
 * native kernels are active in this one.
 */
export const PRECISION_LABEL: Record<Precision, string> = {
  'fp32-tfjs-wasm': 'fp32 plain tfjs-wasm',
  'fp32-native': 'fp32 native (tfjs-wasm + qbnn kernels)',
  'int8-js': 'int8 JS reference',
  'int8-wasm': 'int8 @qbnn/wasm',
  'int8-native': 'int8 native addon',
};
export type Mode = 'weights' | 'local';

/** One cell of the grid. */
export interface BnnCell {
  model: ModelName;
  posterior: PosteriorKind;
  precision: Precision;
  mode: Mode;
  batch: number;
  samples: number;
}

/** Full-mode time rules of the grid (see {@link planRuns} and {@link estimateMs}). */
export const LIMITS = {
  /** A probe call (the warm-up) over this: 3 timed runs instead of the default. */
  slowMs: 1000,
  /** A probe call over this: 1 timed run after it. */
  verySlowMs: 4000,
  /** A cell estimated over this is skipped. */
  skipMs: 10_000,
  /** A series (model, posterior, mode, precision) that has spent this much skips its larger cells. */
  seriesBudgetMs: 30_000,
};

/**
 * Timed runs of a cell from its probe call (one untimed call, which is the warm-up): the
 * default count for fast cells, 3 above {@link LIMITS}.slowMs, 1 above verySlowMs.
 */
export function planRuns(probeMs: number, defaultRuns: number): number {
  if (probeMs > LIMITS.verySlowMs) return 1;
  if (probeMs > LIMITS.slowMs) return 3;
  return defaultRuns;
}

/**
 * Estimated ms of a call at (batch, L) from the series' measured cells, with the cost model
 * t = L (s + p B) (s: per-sample cost such as weight sampling; p: per-image cost). With cells at
 * two batch sizes, s and p are solved from the latest of each; with one batch size, the batch
 * scaling is taken as sqrt(B / B0) (between a fixed and a per-image cost). 0 with no data.
 */
export function estimateMs(
  measured: { batch: number; samples: number; ms: number }[],
  batch: number,
  samples: number,
): number {
  if (measured.length === 0) return 0;
  const per = new Map<number, number>();
  for (const m of measured) per.set(m.batch, m.ms / m.samples);
  const bs = [...per.keys()].sort((a, b) => a - b);
  if (bs.length === 1) return per.get(bs[0])! * samples * Math.sqrt(batch / bs[0]);
  const [b0, b1] = [bs[bs.length - 2], bs[bs.length - 1]];
  const p = Math.max(0, (per.get(b1)! - per.get(b0)!) / (b1 - b0));
  const s0 = Math.max(0, per.get(b0)! - p * b0);
  return samples * (s0 + p * batch);
}

/** A runnable model for one precision: returns a function running one MC inference call. */
type Runner = (batch: number, samples: number, mode: Mode) => () => unknown;

/** fp32 input tensors of the current series, disposed with its model. */
const inputs: tf.Tensor[] = [];

/**
 * One fp32 MC inference call (@qbnn/posteriors predict, its outputs read back) of `model` on a
 * batch of the model's inputs; `x` is that input, for the caller to dispose.
 */
export function fp32Call(
  name: ModelName,
  model: Module,
  batch: number,
  samples: number,
  mode: Mode,
): { run: () => void; x: tf.Tensor } {
  const task = name === 'mlp' ? 'regression' : 'classification';
  const x = tf.tensor(inputBatch(name, batch), [batch, ...INPUT_SHAPE[name]]);
  const run = () => {
    const out = predict(model, x, { samples, mode, task } as never) as unknown as Record<string, tf.Tensor>;
    for (const t of Object.values(out)) {
      t.dataSync();
      t.dispose();
    }
  };
  return { run, x };
}

function fp32Runner(name: ModelName, model: Module): Runner {
  return (batch, samples, mode) => {
    const call = fp32Call(name, model, batch, samples, mode);
    inputs.push(call.x);
    return call.run;
  };
}

function int8Runner(name: ModelName, qm: QuantizedModel, provider: 'js' | 'wasm' | 'native'): Runner {
  return (batch, samples, mode) => {
    const x = inputBatch(name, batch);
    return () => qm.forward(x, { samples, mode, provider });
  };
}

export const cellKey = (c: Omit<BnnCell, 'precision'> & { precision: string }) =>
  `${c.model}_${c.posterior}_${c.mode}_${c.precision}_b${c.batch}_L${c.samples}`;

/** Measures one cell and records it; returns the result (or null when skipped). */
async function runCell(
  ctx: SuiteContext,
  cell: BnnCell,
  fn: () => unknown,
  plan: { runs: number; warmup: number; clock?: Clock; threads: number },
): Promise<CaseResult> {
  const images = cell.batch * cell.samples;
  const r = await measure(
    `bnn ${cell.model}/${cell.posterior}`,
    cell.precision,
    {
      mode: cell.mode,
      batch: cell.batch,
      L: cell.samples,
      threads: plan.threads,
      ...(plan.clock === 'cpu' ? { clock: 'cpu' } : {}),
    },
    fn,
    { runs: plan.runs, warmup: plan.warmup, work: cell.batch, unit: 'images/s', clock: plan.clock },
  );
  r.extra = { mc_forward_passes_per_s: Number(((images / r.median_ms) * 1e3).toPrecision(6)) };
  return ctx.add(r);
}

export interface BnnGrid {
  models: ModelName[];
  posteriors: PosteriorKind[];
  precisions: Precision[];
  batches: number[];
  samples: number[];
  modes: Mode[];
  /** Cells (by {@link cellKey}) measured whatever their estimate or their series' budget. */
  mustRun?: (key: string) => boolean;
  /** How cells are timed (default wall clock; `cpu`: process CPU time, the peers suite's one-thread cells). */
  clock?: Clock;
  /** Native thread pool size for the cells (default 1; restored to 2 after the grid). */
  threads?: number;
}

/** The cells of issue 9's targets. */
export const TARGET_CELLS = new Set([
  'lenet5_gaussian_weights_fp32-tfjs-wasm_b32_L20',
  'lenet5_gaussian_weights_fp32-native_b32_L20',
  'lenet5_gaussian_weights_int8-native_b32_L20',
  'lenet5_gaussian_weights_int8-wasm_b32_L20',
  ...(['fp32-tfjs-wasm', 'int8-js', 'int8-native'] as const).flatMap((p) => [
    `lenet5_gaussian_local_${p}_b1_L1`,
    `lenet5_gaussian_local_${p}_b1_L20`,
  ]),
]);

export const FULL_GRID: BnnGrid = {
  models: MODELS,
  posteriors: POSTERIORS,
  precisions: ['fp32-tfjs-wasm', 'fp32-native', 'int8-js', 'int8-wasm', 'int8-native'],
  batches: [1, 32, 256],
  samples: [1, 20],
  modes: ['weights', 'local'],
  mustRun: (key) => TARGET_CELLS.has(key),
};

export const QUICK_GRID: BnnGrid = {
  models: ['lenet5'],
  posteriors: ['gaussian'],
  precisions: ['fp32-tfjs-wasm', 'fp32-native', 'int8-js', 'int8-wasm', 'int8-native'],
  batches: [1],
  samples: [2],
  modes: ['weights'],
};

/** Every cell of a grid (modes a posterior lacks included). */
export function gridCells(grid: Omit<BnnGrid, 'mustRun'>): BnnCell[] {
  return grid.models.flatMap((model) =>
    grid.posteriors.flatMap((posterior) =>
      grid.precisions.flatMap((precision) =>
        grid.modes.flatMap((mode) =>
          grid.batches.flatMap((batch) =>
            grid.samples.map((samples) => ({ model, posterior, precision, mode, batch, samples })),
          ),
        ),
      ),
    ),
  );
}

/**
 * Runs a grid; returns median ms by {@link cellKey}. Shared by the bnn and peers suites.
 * fp32-tfjs-wasm cells run in a child process when the native fp32 kernels are active here.
 */
export async function runGrid(ctx: SuiteContext, grid: BnnGrid): Promise<Map<string, number>> {
  const info = await initBackend({ backend: 'wasm' });
  if (info.backend !== 'wasm') ctx.note(`tfjs backend is ${info.backend}, not wasm: ${info.fallbackReason}`);
  const native = await loadNative();
  const threads = grid.threads ?? 1;
  if (native) native.setThreads(threads);
  else if (grid.precisions.includes('int8-native'))
    ctx.note('native addon not loaded: int8-native cells skipped');
  // Loading the addon installed the native fp32 kernels (unless QBNN_NATIVE_FP32=0): then plain
  // tfjs-wasm runs in a child process without them, and fp32-native here.
  const nativeFp32 = floatKernelSet() !== null;
  if (!nativeFp32 && grid.precisions.includes('fp32-native'))
    ctx.note('native fp32 kernels not active: fp32-native cells skipped');
  const plainInChild = nativeFp32 && grid.precisions.includes('fp32-tfjs-wasm');
  const precisions = grid.precisions.filter(
    (p) => (p !== 'fp32-native' || nativeFp32) && (p !== 'fp32-tfjs-wasm' || !plainInChild),
  );
  const wasm = await loadWasm();
  if (!wasm && grid.precisions.includes('int8-wasm'))
    ctx.note('wasm kernels not loaded: int8-wasm cells skipped');
  const ms = new Map<string, number>();
  const skipped: string[] = [];
  const slow: string[] = [];
  // Cells of a series in increasing work, so each estimate comes from a measured smaller cell.
  const sizes = grid.batches
    .flatMap((b) => grid.samples.map((l) => [b, l] as [number, number]))
    .sort((a, b) => a[0] * a[1] - b[0] * b[1] || a[0] - b[0]);
  for (const name of grid.models) {
    for (const posterior of grid.posteriors) {
      if (!ctx.accepts({ model: name, posterior })) continue;
      const runners = new Map<Precision, Runner>();
      const fp = buildBayes(name, posterior);
      let qm: QuantizedModel | undefined;
      if (precisions.some((p) => p.startsWith('int8') && ctx.accepts({ impl: p }))) {
        try {
          qm = await quantizeModel(name, buildBayes(name, posterior));
        } catch (err) {
          ctx.note(
            `${name}/${posterior}: no int8 cells, qat's convert refused the model: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      }
      for (const p of precisions) {
        if (!ctx.accepts({ impl: p })) continue;
        if (p.startsWith('fp32')) runners.set(p, fp32Runner(name, fp));
        else if (qm && p === 'int8-js') runners.set(p, int8Runner(name, qm, 'js'));
        else if (qm && p === 'int8-wasm' && wasm) runners.set(p, int8Runner(name, qm, 'wasm'));
        else if (qm && p === 'int8-native' && native) runners.set(p, int8Runner(name, qm, 'native'));
      }
      for (const mode of grid.modes) {
        if (!supportsMode(posterior, mode)) continue;
        for (const [precision, runner] of runners) {
          const measured: { batch: number; samples: number; ms: number }[] = [];
          let spent = 0;
          for (const [batch, samples] of sizes) {
            const cell: BnnCell = { model: name, posterior, precision, mode, batch, samples };
            if (!ctx.accepts({ model: name, posterior, impl: precision, mode, batch, L: samples })) continue;
            const key = cellKey(cell);
            const estimate = estimateMs(measured, batch, samples);
            const must = ctx.filtered || (grid.mustRun?.(key) ?? false);
            if (!ctx.quick && !must && (estimate > LIMITS.skipMs || spent > LIMITS.seriesBudgetMs)) {
              skipped.push(
                `${key} (~${(estimate / 1e3).toFixed(1)} s a call${spent > LIMITS.seriesBudgetMs ? ', series budget spent' : ''})`,
              );
              continue;
            }
            const fn = runner(batch, samples, mode);
            const t0 = performance.now();
            await fn(); // the probe is the warm-up
            const probe = performance.now() - t0;
            // the targets' cells keep at least 3 timed runs however slow
            const runs = ctx.quick ? ctx.runs : Math.max(planRuns(probe, ctx.runs), must ? 3 : 1);
            if (runs < ctx.runs) slow.push(`${key} (${runs})`);
            const r = await runCell(ctx, cell, fn, { runs, warmup: 0, clock: grid.clock, threads });
            ms.set(key, r.median_ms);
            measured.push({ batch, samples, ms: r.median_ms });
            spent += probe + r.median_ms * runs;
          }
        }
      }
      fp.dispose();
      for (const t of inputs.splice(0)) t.dispose();
    }
  }
  if (plainInChild) {
    const sub = { ...grid, precisions: ['fp32-tfjs-wasm' as const], mustRun: undefined };
    const cells = gridCells(sub).filter((c) => supportsMode(c.posterior, c.mode));
    const child = await runPlainWasmChild(ctx, {
      grid: sub,
      mustRun: cells.map(cellKey).filter((k) => grid.mustRun?.(k) ?? false),
      accepted: cells.filter((c) => ctx.accepts({ ...c, impl: c.precision, L: c.samples })).map(cellKey),
      quick: ctx.quick,
      filtered: ctx.filtered,
      runs: ctx.runs,
    });
    for (const [k, v] of child) ms.set(k, v);
  }
  if (native) native.setThreads(2);
  if (slow.length)
    ctx.note(
      `every cell runs one untimed probe call (its warm-up) first; cells whose probe took over ${LIMITS.slowMs / 1e3} s ran 3 timed runs, over ${LIMITS.verySlowMs / 1e3} s 1 timed run (3 for the targets' cells; count in brackets): ${slow.join(', ')}`,
    );
  if (skipped.length)
    ctx.note(
      `to keep the full run near 15 minutes, cells estimated over ${LIMITS.skipMs / 1e3} s a call (cost model L (s + p B) fitted to the series' measured cells), or whose series had already spent ${LIMITS.seriesBudgetMs / 1e3} s, were skipped (the cells of issue 9's targets always run): ${skipped.join(', ')}`,
    );
  return ms;
}

/**
 * Runs one cell whatever its estimate (the peers suite's single cells: local mode, ResNet-18,
 * thread scaling); its median ms, or undefined when it did not run.
 */
export async function runOneCell(
  ctx: SuiteContext,
  cell: BnnCell,
  opts: Pick<BnnGrid, 'clock' | 'threads'> = {},
): Promise<number | undefined> {
  const ms = await runGrid(ctx, {
    models: [cell.model],
    posteriors: [cell.posterior],
    precisions: [cell.precision],
    batches: [cell.batch],
    samples: [cell.samples],
    modes: [cell.mode],
    mustRun: () => true,
    ...opts,
  });
  return ms.get(cellKey(cell));
}

/** int8-native / fp32 throughput and L=20 / L=1 cost ratios of a grid's medians. */
export function gridRatios(ctx: SuiteContext, grid: BnnGrid, ms: Map<string, number>): void {
  const lo = Math.min(...grid.samples);
  const hi = Math.max(...grid.samples);
  for (const model of grid.models)
    for (const posterior of grid.posteriors)
      for (const mode of grid.modes)
        for (const batch of grid.batches) {
          const base = { model, posterior, mode, batch };
          for (const samples of grid.samples) {
            const f = ms.get(cellKey({ ...base, samples, precision: 'fp32-tfjs-wasm' }));
            const n = ms.get(cellKey({ ...base, samples, precision: 'int8-native' }));
            if (f && n)
              ctx.ratio(`int8native_over_fp32_${model}_${posterior}_${mode}_b${batch}_L${samples}`, f / n);
            const fn = ms.get(cellKey({ ...base, samples, precision: 'fp32-native' }));
            if (f && fn)
              ctx.ratio(`fp32native_over_fp32_${model}_${posterior}_${mode}_b${batch}_L${samples}`, f / fn);
            const w = ms.get(cellKey({ ...base, samples, precision: 'int8-wasm' }));
            if (f && w)
              ctx.ratio(`int8wasm_over_fp32_${model}_${posterior}_${mode}_b${batch}_L${samples}`, f / w);
          }
          if (lo === hi) continue;
          for (const precision of grid.precisions) {
            const a = ms.get(cellKey({ ...base, samples: lo, precision }));
            const b = ms.get(cellKey({ ...base, samples: hi, precision }));
            if (a && b)
              ctx.ratio(
                `L${hi}_over_L${lo}_cost_${model}_${posterior}_${mode}_${precision}_b${batch}`,
                b / a,
              );
          }
        }
}

export const bnnSuite: Suite = {
  name: 'bnn',
  description:
    'end-to-end MC inference (images/s): models x posteriors x fp32 plain tfjs-wasm / fp32 native / int8 JS / int8 wasm / int8 native x batch x L x mode',
  async run(ctx) {
    const grid = ctx.quick && !ctx.filtered ? QUICK_GRID : FULL_GRID;
    ctx.note(
      'models are untrained (random initialisation): throughput depends on shapes, not weight values. One core: native thread pool set to 1, tfjs-wasm is single-threaded.',
    );
    for (const m of grid.models) ctx.note(`${m}: ${MODEL_NOTE[m]}`);
    ctx.note(
      `precisions: ${Object.entries(PRECISION_LABEL)
        .map(([k, v]) => `${k} = ${v}`)
        .join(
          '; ',
        )}. fp32-tfjs-wasm cells run in a child process started with QBNN_NATIVE_FP32=0 (params process=child) whenever the native fp32 kernels are active in the bench process; ratios fp32native_over_fp32_* = plain tfjs-wasm ms / fp32 native ms.`,
    );
    ctx.note(
      'fp32: @qbnn/posteriors predict on tfjs-wasm (per-sample softmax probabilities, or mean/variance for the MLP, read back); int8: @qbnn/qat QuantizedModel.forward after PTQ (W8A8, per-channel), kernels from core registry provider js or native. throughput = input images/s (batch / median time); extra.mc_forward_passes_per_s = batch x L / time. local mode: Gaussian and MC Dropout only (Radial and SGHMC have no local reparameterisation); the int8 engine applies local reparameterisation to Gaussian layers and draws MC Dropout masks per element in both modes.',
    );
    ctx.note(
      'targets (issue 9): target_lenet5_gaussian_weights_b32_L20_int8native_over_fp32 >= 8; target_lenet5_gaussian_local_b1_L20_over_L1_cost_* <= 4. Issue 16: target_lenet5_gaussian_weights_b32_L20_int8wasm_over_fp32 >= 3 (int8-wasm: @qbnn/wasm under Node, SIMD128 build, one thread).',
    );
    const ms = await runGrid(ctx, grid);
    gridRatios(ctx, grid, ms);
    const target = (k: string) => ms.get(k);
    const f = target('lenet5_gaussian_weights_fp32-tfjs-wasm_b32_L20');
    const n = target('lenet5_gaussian_weights_int8-native_b32_L20');
    if (f && n) ctx.ratio('target_lenet5_gaussian_weights_b32_L20_int8native_over_fp32', f / n);
    const w = target('lenet5_gaussian_weights_int8-wasm_b32_L20');
    if (f && w) ctx.ratio('target_lenet5_gaussian_weights_b32_L20_int8wasm_over_fp32', f / w);
    for (const p of grid.precisions) {
      const a = target(`lenet5_gaussian_local_${p}_b1_L1`);
      const b = target(`lenet5_gaussian_local_${p}_b1_L20`);
      if (a && b) ctx.ratio(`target_lenet5_gaussian_local_b1_L20_over_L1_cost_${p}`, b / a);
    }
  },
};
