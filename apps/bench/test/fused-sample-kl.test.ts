// The Gaussian posterior's fused weight sample + KL in training (weights mode, native fp32
// kernels): a training step's loss and gradients against the separate sample and KL kernels
// (the fused kernel unregistered), and the rules for handing the forward's KL to the next kl():
// only for the same prior, the parameters as they were (no assign since) and the same tape, once.
import { GAUSSIAN_KL, GAUSSIAN_SAMPLE_KL, initBackend, Rng } from '@qbnn/core';
import { enableNativeFloatKernels, nativeAvailable, nativeInfo } from '@qbnn/native-amx';
import { crossEntropy, lenet5 } from '@qbnn/nn';
import { BayesLinear, dnnToBnn, elboLoss, gaussianPrior, modelKl, setSamplingMode } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';

const d =
  nativeAvailable && nativeInfo() !== undefined && enableNativeFloatKernels().active
    ? describe
    : describe.skip;

/** Loss and gradients of one ELBO step of a Bayesian LeNet-5 in weights mode, and the kernels it ran. */
function step(): { loss: number; grads: Float32Array[]; kernels: string[] } {
  const { model } = dnnToBnn(lenet5({}, { seed: 3 }), { posterior: 'gaussian', seed: 3 });
  setSamplingMode(model, 'weights');
  model.train();
  const n = 8;
  const x = tf.tensor(
    Float32Array.from(new Rng(5).uint32(n * 784), (v) => v / 2 ** 32),
    [n, 1, 28, 28],
  );
  const y = tf.tensor1d(
    Int32Array.from({ length: n }, (_, i) => i % 10),
    'int32',
  );
  // the kernels the step runs, by name (tf.profile would read every output back)
  const kernels = new Set<string>();
  const engine = tf.engine();
  const run = engine.runKernel.bind(engine);
  engine.runKernel = (name, inputs, attrs) => {
    kernels.add(name);
    return run(name, inputs, attrs);
  };
  try {
    const { value, grads } = tf.variableGrads(
      () => elboLoss(crossEntropy(model.apply(x), y), modelKl(model), { datasetSize: 100, beta: 1 }),
      model.trainableParameters(),
    );
    const out = {
      loss: value.dataSync()[0],
      grads: model.trainableParameters().map((p) => grads[p.name].dataSync() as Float32Array),
      kernels: [...kernels],
    };
    tf.dispose([value, ...Object.values(grads), x, y, ...model.parameters()]);
    return out;
  } finally {
    engine.runKernel = run;
  }
}

d('the fused Gaussian sample and KL in training', () => {
  afterAll(() => enableNativeFloatKernels());

  test('a step equals the separate sample and KL kernels up to float32 rounding', async () => {
    await initBackend({ backend: 'wasm' });
    const fused = step();
    expect(fused.kernels).toContain(GAUSSIAN_SAMPLE_KL);
    expect(fused.kernels).not.toContain(GAUSSIAN_KL);
    tf.unregisterKernel(GAUSSIAN_SAMPLE_KL, 'wasm');
    const separate = step();
    enableNativeFloatKernels();
    expect(separate.kernels).not.toContain(GAUSSIAN_SAMPLE_KL);
    expect(separate.kernels).toContain(GAUSSIAN_KL);
    expect(Math.abs(fused.loss - separate.loss)).toBeLessThan(1e-5 * Math.abs(separate.loss));
    fused.grads.forEach((g, k) => {
      const want = separate.grads[k];
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - want[i]));
      expect(worst, `tensor ${k}`).toBeLessThanOrEqual(1e-4 * scale);
    });
  });

  test("kl() takes the forward's KL only for the same prior, unchanged parameters and tape, once", async () => {
    await initBackend({ backend: 'wasm' });
    const layer = new BayesLinear(30, 20, { mode: 'weights', seed: 2 });
    layer.train();
    const x = tf.tensor(new Rng(1).normal(4 * 30), [4, 30]);
    const value = (t: tf.Tensor) => t.dataSync()[0];
    // the KL of the parameters as they are, with no forward before it
    const fresh = () => tf.tidy(() => value(layer.kl()));
    tf.tidy(() => {
      const before = fresh();
      layer.forward(x);
      const handed = layer.kl();
      expect(value(handed)).toBe(before);
      // handed over once: the next call computes it again (same value, another tensor)
      const again = layer.kl();
      expect(again).not.toBe(handed);
      expect(value(again)).toBe(before);

      // parameters assigned after the forward: the KL of the new values
      layer.forward(x);
      const mu = layer.posterior.parameters().get('weight_mu')!;
      mu.assign(tf.add(mu, 0.5));
      const moved = fresh();
      expect(moved).not.toBe(before);
      layer.forward(x);
      mu.assign(tf.sub(mu, 0.5));
      expect(value(layer.kl())).toBe(fresh());

      // another prior than the forward saw
      layer.forward(x);
      layer.prior = gaussianPrior(0, 0.25);
      expect(value(layer.kl())).toBe(fresh());
      expect(fresh()).not.toBe(before);
      layer.prior = gaussianPrior(0, 1);
    });

    // a forward outside any tape, the KL's gradient asked on one: computed there
    const vars = layer.trainableParameters();
    tf.tidy(() => {
      layer.forward(x);
      const { grads } = tf.variableGrads(() => layer.kl(), vars);
      const want = tf.variableGrads(() => layer.kl(), vars).grads;
      for (const v of vars) expect(grads[v.name].dataSync()).toEqual(want[v.name].dataSync());
    });

    // forwards outside any tidy leave at most the one pending KL behind
    const start = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) layer.forward(x).dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(start + 1);
    layer.kl().dispose();
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([x, ...layer.parameters()]);
  });
});
