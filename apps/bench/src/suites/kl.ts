import { initBackend, Rng } from '@qbnn/core';
import { lenet5, type Module } from '@qbnn/nn';
import { BayesLinear, categoricalNll, dnnToBnn, elboLoss, type KlMethod, modelKl } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { measure, type Suite, type SuiteContext } from '../harness.js';

/** Largest estimated step peak the suite attempts: tfjs-wasm's heap is a 32-bit (4 GiB) space. */
const MEMORY_CAP = 1.5e9;
/** Largest estimated step time attempted in full mode. */
const TIME_CAP_MS = 20_000;
const DATASET_SIZE = 60_000;

interface Subject {
  name: string;
  description: string;
  model: Module;
  x: tf.Tensor;
  /** The data term of the loss (a mean over the batch). */
  nll(out: tf.Tensor): tf.Scalar;
}

function subjects(batch: number, quick: boolean): Subject[] {
  const rng = new Rng(21);
  // quick mode (a smoke run) trains a small BayesLinear only
  const [inF, outF] = quick ? [64, 32] : [784, 500];
  const linear = new BayesLinear(inF, outF, { seed: 1 });
  const { model: lenet } = dnnToBnn(lenet5({}, { seed: 2 }), { posterior: 'gaussian', seed: 2 });
  const labels = tf.tensor1d(
    Int32Array.from(rng.uint32(batch), (u) => u % 10),
    'int32',
  );
  return [
    {
      name: `BayesLinear ${inF}x${outF}`,
      description: `BayesLinear(${inF}, ${outF}), Gaussian posterior, prior N(0, 1); loss = mean(y^2) + KL / 60000`,
      model: linear,
      x: tf.tensor2d(rng.normal(batch * inF), [batch, inF]),
      nll: (out) => tf.mean(tf.square(out)) as tf.Scalar,
    },
    {
      name: 'Bayesian LeNet-5',
      description:
        'LeNet-5 (dnnToBnn, Gaussian, local reparameterisation in the forward), prior N(0, 1); loss = categorical NLL + KL / 60000',
      model: lenet,
      x: tf.tensor4d(rng.normal(batch * 784), [batch, 1, 28, 28]),
      nll: (out) => categoricalNll(out, labels),
    },
  ];
}

/** One training step: forward, negative ELBO with the KL method, gradients, Adam update. */
function stepFn(s: Subject, opt: tf.Optimizer, method: KlMethod, m: number): () => void {
  const vars = s.model.trainableParameters();
  return () => {
    const loss = opt.minimize(
      () =>
        elboLoss(s.nll(s.model.apply(s.x)), modelKl(s.model, { method, nMcIter: m }), {
          datasetSize: DATASET_SIZE,
        }),
      true,
      vars,
    );
    loss?.dataSync();
    loss?.dispose();
  };
}

/** Peak tfjs bytes above the starting level during one step (tf.profile's high-water mark). */
async function peakBytes(fn: () => void): Promise<number> {
  const start = tf.memory().numBytes;
  const info = await tf.profile(fn);
  return Math.max(0, info.peakBytes - start);
}

export const klSuite: Suite = {
  name: 'kl',
  description:
    'KL methods closed / direct / repar for M in {1, 10, 100, 1000}: ms per training step and peak tfjs memory',
  async run(ctx: SuiteContext) {
    const info = await initBackend({ backend: 'wasm' });
    const batch = 32;
    const ms = ctx.quick ? [1, 10] : [1, 10, 100, 1000];
    const all = subjects(batch, ctx.quick);
    const subs = ctx.quick ? all.slice(0, 1) : all;
    for (const s of all.slice(subs.length)) s.model.dispose();
    ctx.note(
      `tfjs-${info.backend} (single-threaded), batch ${batch}, Adam lr 1e-3, untrained models. Time: median ms of a whole training step (forward, negative ELBO with KL / 60000, gradients, update). peak_bytes (extra, and ratios peak_mb_*): tfjs high-water bytes above the level before the step, from tf.profile in a separate step. closed ignores M (run once).`,
    );
    const skipped: string[] = [];
    // direct's growth per MC sample, per trainable parameter (bytes, ms), fitted on the first
    // subject's two smallest M and used to estimate larger cells of every subject.
    let slope: { bytes: number; ms: number } | undefined;
    for (const s of subs) {
      ctx.note(`${s.name}: ${s.description}`);
      const params = s.model.numParameters();
      const opt = tf.train.adam(1e-3);
      for (const method of ['closed', 'direct', 'repar'] as KlMethod[]) {
        const seen: { m: number; peak: number; ms: number }[] = [];
        for (const m of method === 'closed' ? [1] : ms) {
          const last = seen[seen.length - 1];
          let estPeak = last?.peak ?? 0;
          let estMs = last?.ms ?? 0;
          if (method === 'direct' && last) {
            // linear in M: from this subject's own two points, else the fitted per-parameter slope
            const first = seen[0];
            const perBytes =
              seen.length > 1
                ? (last.peak - first.peak) / (last.m - first.m)
                : (slope?.bytes ?? last.peak) * (slope ? params : 1);
            const perMs =
              seen.length > 1
                ? (last.ms - first.ms) / (last.m - first.m)
                : (slope?.ms ?? last.ms) * (slope ? params : 1);
            estPeak = last.peak + perBytes * (m - last.m);
            estMs = last.ms + perMs * (m - last.m);
          }
          if (method === 'direct' && !ctx.quick && (estPeak > MEMORY_CAP || estMs > TIME_CAP_MS)) {
            skipped.push(
              `${s.name} direct M=${m} (estimated ${(estPeak / 1e9).toFixed(1)} GB peak, ${(estMs / 1e3).toFixed(1)} s a step)`,
            );
            continue;
          }
          const fn = stepFn(s, opt, method, m);
          const slow = estMs > 2000;
          const r = await measure(
            `kl train step ${s.name}`,
            method,
            { M: method === 'closed' ? '-' : m, batch },
            fn,
            { runs: slow ? 3 : ctx.runs, warmup: 1, work: 1, unit: 'steps/s' },
          );
          const peak = await peakBytes(fn);
          r.extra = { peak_bytes: peak };
          ctx.add(r);
          const tag = `${s.name.startsWith('BayesLinear') ? 'linear' : 'lenet5'}_${method}${method === 'closed' ? '' : `_M${m}`}`;
          ctx.ratio(`peak_mb_${tag}`, peak / 2 ** 20);
          if (slow) ctx.note(`${s.name} ${method} M=${m}: 3 timed runs (estimated over 2 s a step)`);
          seen.push({ m, peak, ms: r.median_ms });
          if (method === 'direct' && !slope && seen.length === 2) {
            const [a, b] = seen;
            slope = {
              bytes: Math.max(0, (b.peak - a.peak) / (b.m - a.m) / params),
              ms: Math.max(0, (b.ms - a.ms) / (b.m - a.m) / params),
            };
          }
        }
      }
      opt.dispose();
      s.model.dispose();
      s.x.dispose();
    }
    if (skipped.length)
      ctx.note(
        `direct keeps all M weight samples in the autodiff graph, so its memory grows linearly with M; cells estimated over ${MEMORY_CAP / 1e9} GB (tfjs-wasm's heap is a 32-bit space) or ${TIME_CAP_MS / 1e3} s a step were skipped, the estimate linear in M from the subject's own two smallest M, or from the growth per sample and parameter fitted on the BayesLinear: ${skipped.join('; ')}. repar and closed run at every M in flat memory.`,
      );
  },
};
