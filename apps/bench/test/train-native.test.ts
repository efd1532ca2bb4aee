// Training on the native fp32 kernels: reproducible bit for bit for a seed, whatever the thread
// count, and the same training as tfjs-backend-wasm's own kernels up to fp32 rounding.
import { initBackend, Rng } from '@qbnn/core';
import {
  disableNativeFloatKernels,
  enableNativeFloatKernels,
  nativeAvailable,
  nativeInfo,
  setThreads,
} from '@qbnn/native-amx';
import { Conv2d, conv2d, crossEntropy, fit, lenet5, ReLU } from '@qbnn/nn';
import { BayesConv2d, dnnToBnn, elboLoss, modelKl, setSamplingMode } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';

const d =
  nativeAvailable && nativeInfo() !== undefined && enableNativeFloatKernels().active
    ? describe
    : describe.skip;

async function train(
  mode: 'weights' | 'local',
  hookConvs = false,
  posterior: 'gaussian' | 'mcdropout' = 'gaussian',
): Promise<{ params: Float32Array; loss: number[] }> {
  await initBackend({ backend: 'wasm' });
  const { model } = dnnToBnn(lenet5({}, { seed: 3 }), { posterior, seed: 3 });
  setSamplingMode(model, mode);
  // a forward hook keeps a conv layer out of the conv + ReLU + pool fusion
  if (hookConvs)
    for (const m of model.modules()) if (m instanceof BayesConv2d) m.registerForwardHook(() => {});
  const n = 16;
  const u = new Rng(5).uint32(n * 784);
  const x = tf.tensor(
    Float32Array.from(u, (v) => v / 2 ** 32),
    [n, 1, 28, 28],
  );
  const y = tf.tensor1d(
    Int32Array.from({ length: n }, (_, i) => i % 10),
    'int32',
  );
  const r = await fit(
    model,
    { x, y },
    {
      epochs: 1,
      batchSize: 8,
      seed: 7,
      loss: (m, xb, yb) => elboLoss(crossEntropy(m.apply(xb), yb), modelKl(m), { datasetSize: n, beta: 1 }),
    },
  );
  const parts = model.parameters().map((p) => p.dataSync() as Float32Array);
  const params = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    params.set(p, at);
    at += p.length;
  }
  x.dispose();
  y.dispose();
  return { params, loss: r.epochLoss };
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
const worstDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
/**
 * Whether the fused conv + ReLU + pool kernel sums this conv weight's gradient from the taps alone
 * (native relu_pool_grad_taps.cc: kernel rows of kw x in >= 16 floats), in another order than the
 * unfused Conv2DBackpropFilter: equal up to float32 rounding, not bit for bit. Its input gradient
 * too, and so every gradient upstream of it.
 */
const summedFromTaps = (shape: readonly number[]) => shape.length === 4 && shape[1] * shape[3] >= 16;
// Trained parameters of the fused and unfused models: 2 Adam steps at lr 1e-3 from gradients that
// differ in their last bits (a wrong gradient moves a weight by ~1e-3 a step).
const FUSION_TOLERANCE = 1e-5;

d('training on the native fp32 kernels', () => {
  afterAll(() => {
    setThreads(2);
    enableNativeFloatKernels();
  });

  test.each(['weights', 'local'] as const)(
    'is bit-reproducible per seed and across thread counts (%s mode)',
    async (mode) => {
      setThreads(1);
      const a = await train(mode);
      const b = await train(mode);
      setThreads(2);
      const c = await train(mode);
      expect(same(a.params, b.params)).toBe(true);
      expect(same(a.params, c.params)).toBe(true);
      // the conv + ReLU + pool fusion (weights mode) trains as the ops it replaces
      setThreads(1);
      const unfused = await train(mode, true);
      expect(worstDiff(a.params, unfused.params)).toBeLessThan(FUSION_TOLERANCE);
      disableNativeFloatKernels();
      const w = await train(mode);
      enableNativeFloatKernels();
      // tfjs-backend-wasm's own kernels: the same training up to fp32 rounding.
      for (let i = 0; i < a.loss.length; i++)
        expect(Math.abs(a.loss[i] - w.loss[i])).toBeLessThan(1e-4 * Math.abs(w.loss[i]));
      let worst = 0;
      for (let i = 0; i < w.params.length; i++) worst = Math.max(worst, Math.abs(a.params[i] - w.params[i]));
      expect(worst).toBeLessThan(1e-4);
    },
  );

  test('MC Dropout trains the same with its conv layers fused with their ReLU and pool', async () => {
    setThreads(1);
    const fused = await train('local', false, 'mcdropout');
    const unfused = await train('local', true, 'mcdropout');
    expect(worstDiff(fused.params, unfused.params)).toBeLessThan(FUSION_TOLERANCE);
    // and the fused kernel is what ran
    const { model } = dnnToBnn(lenet5({}, { seed: 3 }), { posterior: 'mcdropout', seed: 3 });
    const x = tf.tensor(new Rng(4).normal(2 * 784), [2, 1, 28, 28]);
    const profile = await tf.profile(() => model.apply(x));
    expect(profile.kernels.filter((k) => k.name === 'QbnnConvReluMaxPool').length).toBe(2);
    setThreads(2);
  });

  test('conv - ReLU - max pool runs as one kernel, or ReLU - max pool as the pool then the ReLU: the same values and gradients', async () => {
    await initBackend({ backend: 'wasm' });
    setThreads(1);
    const model = lenet5({}, { seed: 4 });
    const n = 5;
    // standard normal pixels: about half of every layer's pre-activations are negative
    const x = tf.tensor(new Rng(12).normal(n * 784), [n, 1, 28, 28]);
    const dy = tf.tensor(new Rng(13).normal(n * 10), [n, 10]);
    const run = async () => {
      const profile = await tf.profile(() => model.apply(x));
      const relus = profile.kernels.filter((k) => k.name === 'Relu').map((k) => k.inputShapes[0]?.join('x'));
      const fusedConvs = profile.kernels.filter((k) => k.name === 'QbnnConvReluMaxPool').length;
      const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(model.apply(xi), dy)))(x);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(model.apply(x), dy)) as tf.Scalar);
      const values = [
        model.apply(x),
        dx,
        ...Object.keys(grads)
          .sort()
          .map((k) => grads[k]),
      ];
      return {
        relus,
        fusedConvs,
        values: values.map((t) => Float32Array.from(t.dataSync())),
        shapes: values.map((t) => t.shape),
      };
    };
    const whole = await run();
    // conv, ReLU and pool in one kernel; fc1's ReLU on its own output
    expect(whole.fusedConvs).toBe(2);
    expect(whole.relus).toEqual([`${n}x500`]);
    // an observed conv layer runs alone; its ReLU then ran on the pooled activations
    const unhookConvs = model
      .modules()
      .filter((m) => m instanceof Conv2d)
      .map((m) => m.registerForwardHook(() => {}));
    const fused = await run();
    for (const r of unhookConvs) r();
    expect(fused.fusedConvs).toBe(0);
    expect(fused.relus).toEqual([`${n}x20x14x14`, `${n}x50x7x7`, `${n}x500`]);
    // a forward hook (an observer) keeps a module as it is: the unfused model
    const remove = model
      .modules()
      .filter((m) => m instanceof ReLU)
      .map((m) => m.registerForwardHook(() => {}));
    const plain = await run();
    for (const r of remove) r();
    expect(plain.relus).toEqual([`${n}x20x28x28`, `${n}x50x14x14`, `${n}x500`]);
    expect(fused.values.length).toBe(plain.values.length);
    for (let i = 0; i < plain.values.length; i++) {
      const [a, b, c] = [fused.values[i], plain.values[i], whole.values[i]];
      expect(c.length).toBe(b.length);
      // values: the output (bit for bit), then the input's and the parameters' gradients: conv2's
      // input and weight gradients are summed from the taps (float32 rounding of another order), and
      // conv1's gradients and the input's follow from conv2's input gradient
      if (i === 0) for (let j = 0; j < c.length; j++) expect(c[j] === b[j]).toBe(true);
      else {
        const scale = 1 + b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(worstDiff(c, b)).toBeLessThan(1e-5 * scale);
        // the taps' kernel ran: conv2's weight gradient is not the dense product's bits
        if (i >= 2 && summedFromTaps(plain.shapes[i])) expect(worstDiff(c, b)).toBeGreaterThan(0);
      }
      expect(a.length).toBe(b.length);
      // equal values (a zero may differ in sign)
      let differ = 0;
      for (let j = 0; j < a.length; j++) if (!(a[j] === b[j])) differ++;
      expect(differ).toBe(0);
    }
    setThreads(2);
  });

  test("nn's NCHW convolution with a bias runs as one FusedConv2D kernel: values and gradients bit for bit conv + add", async () => {
    await initBackend({ backend: 'wasm' });
    setThreads(1);
    const r = new Rng(11);
    const t = (shape: number[]) => tf.tensor(r.normal(shape.reduce((a, b) => a * b, 1)), shape);
    for (const [xs, ws, p] of [
      [[3, 4, 9, 8], [6, 4, 5, 5], { padding: 2 }], // LeNet-like
      [[2, 3, 7, 6], [5, 3, 3, 2], { padding: [1, 0], stride: [1, 2] }],
    ] as [number[], number[], { padding: number | [number, number]; stride?: [number, number] }][]) {
      const x = t(xs);
      const w = t(ws);
      const b = t([ws[0]]);
      const dy = t(conv2d(x, w, b, p).shape);
      const kernels: string[] = [];
      const fused = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(conv2d(xi, wi, bi, p), dy)),
      );
      const profile = await tf.profile(() => conv2d(x, w, b, p));
      kernels.push(...profile.kernels.map((k) => k.name));
      expect(kernels).toContain('FusedConv2D');
      expect(kernels).not.toContain('Add');
      // the composition it replaces: tfjs's NCHW conv, then the bias added
      const composed = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => {
        const pad = typeof p.padding === 'number' ? [p.padding, p.padding] : p.padding;
        const y = tf.conv2d(
          xi as tf.Tensor4D,
          tf.transpose(wi, [2, 3, 1, 0]) as tf.Tensor4D,
          p.stride ?? 1,
          [
            [0, 0],
            [0, 0],
            [pad[0], pad[0]],
            [pad[1], pad[1]],
          ],
          'NCHW',
        );
        return tf.add(y, tf.reshape(bi, [1, ws[0], 1, 1]));
      };
      const ref = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(composed(xi, wi, bi), dy)),
      );
      const bits = (ts: tf.Tensor[]) => ts.map((v) => Float32Array.from(v.dataSync()));
      const got = bits([conv2d(x, w, b, p), ...fused([x, w, b])]);
      const want = bits([composed(x, w, b), ...ref([x, w, b])]);
      for (let i = 0; i < want.length; i++) expect(same(got[i], want[i])).toBe(true);
      // a first layer: no gradient asked for its input
      const [gw, gb] = tf.grads((wi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(conv2d(x, wi, bi, p), dy)))([
        w,
        b,
      ]);
      expect(same(Float32Array.from(gw.dataSync()), want[2])).toBe(true);
      expect(same(Float32Array.from(gb.dataSync()), want[3])).toBe(true);
    }
    setThreads(2);
  });
});
