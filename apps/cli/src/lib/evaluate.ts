import type { ImageSet } from '@qbnn/data';
import type { Module } from '@qbnn/nn';
import type { QuantizedModel } from '@qbnn/qat';
import { startProgress } from '../progress.js';
import { count, type OodData } from './data.js';
import { floatMoments, floatProbs, intMoments, intProbs } from './predict.js';
import { type ModelResult, modelResult, regressionResult, type ThroughputResult } from './results.js';
import { measureThroughput } from './throughput.js';

/** Concatenates image sets of one shape. */
export function concatSets(sets: ImageSet[]): ImageSet {
  if (sets.length === 1) return sets[0];
  const n = sets.reduce((s, x) => s + count(x), 0);
  const per = sets[0].shape[1] * sets[0].shape[2] * sets[0].shape[3];
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  let off = 0;
  for (const s of sets) {
    images.set(s.images, off * per);
    labels.set(s.labels, off);
    off += count(s);
  }
  return {
    images,
    labels,
    shape: [n, sets[0].shape[1], sets[0].shape[2], sets[0].shape[3]],
    classNames: sets[0].classNames,
  };
}

/** Options of {@link evaluateModels}. */
export interface EvaluateOptions {
  samples: number;
  seed: number;
  quiet: boolean;
  /** Per-example input shape of the float model (default the images' [C, H, W]). */
  floatInputShape?: number[];
  /** Measure throughput too (float vs each quantised model, on each kernel provider). */
  throughput?: { batch: number; minSeconds: number; backend: string };
}

/**
 * Runs the float model (if any) and each quantised model over the test and OOD images with L
 * Monte Carlo samples, and computes every figure (see {@link modelResult}).
 */
export function evaluateModels(
  floatModel: Module | null,
  quantized: { name: string; model: QuantizedModel }[],
  test: ImageSet,
  ood: OodData | null,
  opts: EvaluateOptions,
): { models: ModelResult[]; throughput?: ThroughputResult[] } {
  const oodSet = ood ? concatSets(ood.sets.map((s) => s.set)) : null;
  const per = count(test) + (oodSet ? count(oodSet) : 0);
  const total = per * ((floatModel ? 1 : 0) + quantized.length);
  const progress = startProgress('evaluate', total, 'images', opts.quiet);
  const models: ModelResult[] = [];
  let done = 0;
  try {
    if (floatModel) {
      const inputShape = opts.floatInputShape;
      const t = floatProbs(floatModel, test, opts.samples, { inputShape, progress, done0: done });
      done += count(test);
      const o = oodSet
        ? floatProbs(floatModel, oodSet, opts.samples, { inputShape, progress, done0: done })
        : null;
      done += oodSet ? count(oodSet) : 0;
      const r = modelResult('float32', t, test.labels, o);
      // float32 parameters and buffers (what a checkpoint stores)
      r.metrics.sizeBytes = Object.values(floatModel.stateDict()).reduce((s, v) => s + v.size * 4, 0);
      models.push(r);
    }
    for (const q of quantized) {
      const t = intProbs(q.model, test, opts.samples, opts.seed + 1, undefined, progress, done);
      done += count(test);
      const o = oodSet
        ? intProbs(q.model, oodSet, opts.samples, opts.seed + 2, undefined, progress, done)
        : null;
      done += oodSet ? count(oodSet) : 0;
      const r = modelResult(q.name, t, test.labels, o);
      r.metrics.sizeBytes = q.model.sizeBytes();
      models.push(r);
    }
  } finally {
    progress.stop();
  }
  let throughput: ThroughputResult[] | undefined;
  if (opts.throughput && floatModel) {
    throughput = measureThroughput(floatModel, quantized, test, {
      ...opts.throughput,
      inputShape: opts.floatInputShape,
      samples: opts.samples,
    });
  }
  return { models, throughput };
}

/**
 * Regression: the float model (if any) and each quantised model over rows `x` ([n, features])
 * with L Monte Carlo samples, their [N, 2] heads read as mean and variance, scored against
 * `targets` (see {@link regressionResult}).
 */
export function evaluateRegression(
  floatModel: Module | null,
  quantized: { name: string; model: QuantizedModel }[],
  data: { x: Float32Array; n: number; targets: Float32Array },
  opts: { samples: number; seed: number },
): ModelResult[] {
  const { x, n, targets } = data;
  const features = x.length / n;
  const models: ModelResult[] = [];
  if (floatModel) {
    const r = regressionResult('float32', floatMoments(floatModel, x, n, features, opts.samples), targets);
    r.metrics.sizeBytes = Object.values(floatModel.stateDict()).reduce((s, v) => s + v.size * 4, 0);
    models.push(r);
  }
  for (const q of quantized) {
    const r = regressionResult(q.name, intMoments(q.model, x, n, opts.samples, opts.seed + 1), targets);
    r.metrics.sizeBytes = q.model.sizeBytes();
    models.push(r);
  }
  return models;
}
