// The peers limit's sampler rate on a model's own layers (model-sampler.ts).
import { getKernelProvider, initBackend, sampleGaussianWeights } from '@qbnn/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelSamplerRate, sampledLayers, stackedSamplerArgs } from '../src/model-sampler.js';
import { buildBayes, quantizeModel } from '../src/models.js';
import { loadNative } from '../src/native.js';

describe("the fused sampler on a model's own layers", () => {
  let qm: Awaited<ReturnType<typeof quantizeModel>>;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    qm = await quantizeModel('lenet5', buildBayes('lenet5', 'gaussian'));
  }, 120_000);

  it('takes every Bayesian layer of the PTQ model with its own per-channel parameters', () => {
    const layers = sampledLayers(qm);
    expect(layers.map((l) => [l.path, l.args.n, l.args.k, l.dotted])).toEqual([
      ['conv1', 20, 25, false],
      ['conv2', 50, 500, false],
      ['fc1', 500, 2450, true],
      ['fc2', 10, 500, true],
    ]);
    // calibrated per-channel params: the multipliers differ between channels
    for (const { args } of layers) expect(new Set(args.m1).size).toBeGreaterThan(1);
  });

  it('a stacked layer is the layer again, row block by row block, further along the stream', () => {
    const { args } = sampledLayers(qm)[0];
    const copies = 3;
    const all = sampleGaussianWeights({ ...stackedSamplerArgs(args, copies), position: 0 });
    const nk = args.n * args.k; // 500: copy c starts at stream block c * nk / 4
    for (let c = 0; c < copies; c++) {
      const one = sampleGaussianWeights({ ...args, position: (c * nk) / 4 });
      expect(Buffer.from(all.subarray(c * nk, (c + 1) * nk)).equals(Buffer.from(one))).toBe(true);
    }
  });

  it("sums the layers' seconds into the model's rate", async () => {
    const native = await loadNative();
    const kernels = native ? native.nativeKernels : getKernelProvider('js');
    const r = modelSamplerRate(qm, kernels, () => performance.now() / 1e3, 1);
    expect(r).toBeDefined();
    const { weights, seconds, rate, layers } = r!;
    expect(weights).toBe(20 * 25 + 50 * 500 + 500 * 2450 + 10 * 500);
    expect(layers.map((l) => l.copies)).toEqual([2097, 41, 1, 209]);
    const sum = layers.reduce((s, l) => s + (l.n * l.k) / l.rate, 0);
    expect(seconds).toBeCloseTo(sum, 12);
    expect(rate).toBeCloseTo(weights / seconds, 3);
  }, 120_000);

  it('at batch 1, times the linear layers with their dot products as plans draw them there', async () => {
    const native = await loadNative();
    if (!native) return; // the sample + dot is native only
    const r = modelSamplerRate(
      qm,
      native.nativeKernels,
      () => performance.now() / 1e3,
      1,
      native.sampleGaussianDot,
    );
    const one = r?.batchOne;
    if (!one) return; // no AVX-512 sampler on this CPU: plans pack at batch 1 too
    const layers = r!.layers;
    expect(layers.map((l) => l.dotRate !== undefined)).toEqual([false, false, true, true]);
    const sum = layers.reduce((s, l) => s + (l.n * l.k) / (l.dotRate ?? l.rate), 0);
    expect(one.seconds).toBeCloseTo(sum, 12);
    expect(one.dottedMacs).toBe(500 * 2450 + 10 * 500);
  }, 120_000);
});
