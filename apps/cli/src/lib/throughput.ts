import { floatKernelSet, listKernelProviders } from '@qbnn/core';
import type { ImageSet } from '@qbnn/data';
import type { Module } from '@qbnn/nn';
import { predict } from '@qbnn/posteriors';
import type { QuantizedModel } from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { throwIfInterrupted } from '../interrupt.js';
import type { ThroughputResult } from './results.js';

function timeIt(run: () => void, minSeconds: number): number {
  run(); // warm-up: packing caches, wasm compilation
  let reps = 0;
  const t0 = performance.now();
  do {
    throwIfInterrupted();
    run();
    reps++;
  } while (performance.now() - t0 < minSeconds * 1000);
  return (performance.now() - t0) / 1000 / reps;
}

/**
 * The float row's name: tfjs-wasm with qbnn's native fp32 kernels registered (what loading
 * @qbnn/native-amx does) is not plain tfjs-wasm, and the row says so.
 */
export function floatImplName(backend: string): string {
  return backend === 'wasm' && floatKernelSet() !== null
    ? 'float32 native (tfjs-wasm + qbnn kernels)'
    : `float32 tfjs-${backend}`;
}

/**
 * Images per second of Monte Carlo inference (L samples an image) on one batch: the float
 * model on tfjs, and each quantised model on every available kernel provider (the JS
 * reference, and the native addon when it loaded). Measured in one run, so compare ratios.
 */
export function measureThroughput(
  floatModel: Module,
  quantized: { name: string; model: QuantizedModel }[],
  set: ImageSet,
  opts: { batch: number; samples: number; minSeconds: number; backend: string; inputShape?: number[] },
): ThroughputResult[] {
  const b = Math.min(opts.batch, set.shape[0]);
  const per = set.shape[1] * set.shape[2] * set.shape[3];
  const xs = set.images.subarray(0, b * per);
  const out: ThroughputResult[] = [];
  const x = tf.tensor(xs, [b, ...(opts.inputShape ?? set.shape.slice(1))]);
  try {
    const secs = timeIt(() => {
      tf.tidy(() => predict(floatModel, x, { samples: opts.samples }).probs.dataSync());
    }, opts.minSeconds);
    out.push({
      impl: floatImplName(opts.backend),
      imagesPerSecond: b / secs,
      samples: opts.samples,
      batch: b,
    });
  } finally {
    x.dispose();
  }
  const providers = listKernelProviders()
    .filter((p) => p.available)
    .map((p) => p.name);
  for (const q of quantized) {
    for (const provider of providers) {
      const secs = timeIt(() => {
        q.model.forward(xs, { samples: opts.samples, seed: 1, provider });
      }, opts.minSeconds);
      out.push({ impl: `${q.name} ${provider}`, imagesPerSecond: b / secs, samples: opts.samples, batch: b });
    }
  }
  return out;
}
