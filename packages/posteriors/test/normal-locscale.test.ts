// The inference sample path of the Gaussian posterior: where a backend has @qbnn/core's
// 'QbnnNormalLocScale' (normals drawn inside the sample kernel) and no gradient records, predict
// takes it, with sigma kept across the prediction's samples. A kernel written here in plain JS
// (Rng.normal's values from the given block, float32 product then sum) stands in for the native
// one, so the test checks the posterior's side: the same stream positions and the same values
// as the composed path, sigma recomputed after an assign, and no tensor left behind.
import { NORMAL_LOCSCALE, type NormalLocScaleAttrs, normalLocScaleFused, Rng } from '@qbnn/core';
import { Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dnnToBnn, GaussianPosterior, predict } from '../src/index.js';
import { withSigmaCache } from '../src/sample-scope.js';
import { setup } from './helpers.js';

beforeAll(setup);

let calls = 0;
function registerJsKernel(): void {
  calls = 0;
  tf.registerKernel({
    kernelName: NORMAL_LOCSCALE,
    backendName: tf.getBackend(),
    kernelFunc: ({ inputs, backend, attrs }) => {
      calls++;
      const { mu, sigma } = inputs as { mu: tf.TensorInfo; sigma: tf.TensorInfo };
      const { k0, k1, firstBlock } = attrs as unknown as NormalLocScaleAttrs;
      const m = backend.readSync(mu.dataId) as Float32Array;
      const s = backend.readSync(sigma.dataId) as Float32Array;
      const eps = Rng.fromKey(k0, k1, firstBlock).normal(m.length);
      const w = Float32Array.from(m, (v, i) => v + Math.fround(s[i] * eps[i]));
      const b = backend as unknown as {
        makeOutput?: (shape: number[], dtype: string) => tf.TensorInfo;
        typedArrayFromHeap: (t: tf.TensorInfo) => Float32Array;
        makeTensorInfo: (shape: number[], dtype: string, values: Float32Array) => tf.TensorInfo;
      };
      if (b.makeOutput === undefined) return b.makeTensorInfo([...mu.shape], 'float32', w);
      const out = b.makeOutput([...mu.shape], 'float32');
      b.typedArrayFromHeap(out).set(w);
      return out;
    },
  });
}

afterEach(() => {
  if (normalLocScaleFused()) tf.unregisterKernel(NORMAL_LOCSCALE, tf.getBackend());
});

const model = () =>
  dnnToBnn(new Sequential(new Linear(7, 33, { seed: 1 }), new ReLU(), new Linear(33, 5, { seed: 2 })), {
    posterior: 'gaussian',
    seed: 3,
  }).model;

describe('Gaussian inference sample with the normals inside the kernel', () => {
  it('predict gives the values and stream positions of the composed path and leaves no tensor', () => {
    const x = tf.tensor(new Rng(9).uniform(4 * 7), [4, 7]);
    const run = () => {
      const m = model();
      // the second prediction starts where the first left the streams
      return [0, 1].map(() => {
        const out = predict(m, x, { samples: 6, mode: 'weights' });
        const v = Array.from(out.probs.dataSync());
        out.probs.dispose();
        return v;
      });
    };
    expect(normalLocScaleFused()).toBe(false);
    const composed = run();
    registerJsKernel();
    const before = tf.memory().numTensors;
    const fused = run();
    expect(calls).toBe(2 * 6 * 2 * 2); // predictions x samples x layers x (weight, bias)
    expect(fused).toEqual(composed);
    expect(tf.memory().numTensors).toBe(before + 8); // the new model's own 8 variables
  });

  it('keeps sigma within a prediction scope only, and recomputes it after an assign to rho', () => {
    registerJsKernel();
    const post = new GaussianPosterior({ weightShape: [3, 2], fanIn: 2, rng: new Rng(1) } as never);
    const { mu, rho } = post.params[0];
    const op = { kind: 'linear', apply: (_x: tf.Tensor, w: tf.Tensor) => w.clone() } as never;
    const x = tf.zeros([1]);
    const draw = () =>
      Array.from(post.forward(x, op, { mode: 'weights', rng: Rng.fromKey(5, 6) }).dataSync());
    const expected = () =>
      tf.tidy(() =>
        Array.from(
          tf.add(mu, tf.mul(tf.softplus(rho), tf.tensor(Rng.fromKey(5, 6).normal(6), [3, 2]))).dataSync(),
        ),
      );
    const before = tf.memory().numTensors;
    const [a, b] = withSigmaCache(() => {
      const first = draw();
      expect(tf.memory().numTensors).toBe(before + 2); // the output and the kept sigma
      const half = tf.fill([3, 2], 0.5);
      rho.assign(half);
      half.dispose();
      return [first, draw()];
    });
    expect(a).not.toEqual(b);
    expect(b).toEqual(expected());
    expect(tf.memory().numTensors).toBe(before + 2); // the two outputs: sigma freed with the scope
  });
});

describe('local mode prediction', () => {
  it('computes sigma once per rho tensor for all of its passes, and keeps none after', () => {
    const m = model();
    const x = tf.tensor(new Rng(9).uniform(4 * 7), [4, 7]);
    const engine = tf.engine();
    const runKernel = engine.runKernel.bind(engine);
    let softplus = 0;
    engine.runKernel = ((name: string, ...rest: never[]) => {
      if (name === tf.Softplus) softplus++;
      return (runKernel as (...a: unknown[]) => unknown)(name, ...rest);
    }) as typeof engine.runKernel;
    const before = tf.memory().numTensors;
    try {
      // maxBatch 8: two stacked samples of the 4 examples a pass, three passes
      const out = predict(m, x, { samples: 6, mode: 'local', maxBatch: 8 });
      expect(out.probs.shape).toEqual([6, 4, 5]);
      out.probs.dispose();
    } finally {
      engine.runKernel = runKernel;
    }
    expect(softplus).toBe(4); // 2 layers x (weight, bias), not 3 passes x 4
    expect(tf.memory().numTensors).toBe(before);
  });
});
