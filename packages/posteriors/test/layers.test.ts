import { Rng } from '@qbnn/core';
import { Conv2d, conv2d, Flatten, Linear, lenet5, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BayesConv2d,
  BayesLinear,
  bayesFactory,
  bayesLayers,
  dnnToBnn,
  GaussianPosterior,
  gaussianPrior,
  getPosterior,
  McDropoutPosterior,
  modelKl,
  registerPosterior,
  type SamplingMode,
  unregisterPosterior,
} from '../src/index.js';
import { meanVar, setup, sp } from './helpers.js';

beforeAll(setup);

/** Moments of each output element over K forward passes. */
function outputMoments(f: () => tf.Tensor, k: number): { mean: Float64Array; variance: Float64Array } {
  let s1: Float64Array | null = null;
  let s2: Float64Array | null = null;
  for (let i = 0; i < k; i++) {
    const y = tf.tidy(f);
    const v = y.dataSync();
    y.dispose();
    s1 ??= new Float64Array(v.length);
    s2 ??= new Float64Array(v.length);
    for (let j = 0; j < v.length; j++) {
      s1[j] += v[j];
      s2[j] += v[j] * v[j];
    }
  }
  const mean = (s1 as Float64Array).map((a) => a / k);
  const variance = (s2 as Float64Array).map((a, j) => (a - k * mean[j] * mean[j]) / (k - 1));
  return { mean, variance };
}

describe('BayesLinear (gaussian)', () => {
  it('registers the posterior parameters in the module and round-trips the state dict', () => {
    const l = new BayesLinear(3, 2, { seed: 1 });
    expect(l.namedParameters().map(([n]) => n)).toEqual(['weight_mu', 'weight_rho', 'bias_mu', 'bias_rho']);
    expect(l.trainableParameters().length).toBe(4);
    const copy = new BayesLinear(3, 2, { seed: 2 });
    copy.loadStateDict(l.stateDict());
    const x = tf.tensor2d([[1, -2, 0.5]]);
    l.mode = 'mean';
    copy.mode = 'mean';
    expect(copy.forward(x).arraySync()).toEqual(l.forward(x).arraySync());
  });

  for (const mode of ['weights', 'local', 'flipout'] as SamplingMode[]) {
    it(`mode '${mode}': every output has mean mu.x + b_mu and variance sum(sigma^2 x^2) + sigma_b^2 (5 SE)`, () => {
      const l = new BayesLinear(4, 3, {
        seed: 3,
        mode,
        posteriorOptions: { rhoInit: { mean: -1, std: 0.3 }, muInit: { mean: 0, std: 1 } },
      });
      const x = tf.tensor2d([
        [1, -2, 0.5, 0],
        [0.3, 0.3, -1, 2],
      ]);
      const k = 2000;
      const { mean, variance } = outputMoments(() => l.forward(x), k);
      const mu = l.param('weight_mu').arraySync() as number[][];
      const rho = l.param('weight_rho').arraySync() as number[][];
      const bmu = l.param('bias_mu').arraySync() as number[];
      const brho = l.param('bias_rho').arraySync() as number[];
      const xs = x.arraySync();
      xs.forEach((row, n) => {
        for (let j = 0; j < 3; j++) {
          let m = bmu[j];
          let v = sp(brho[j]) ** 2;
          for (let i = 0; i < 4; i++) {
            m += mu[j][i] * row[i];
            v += sp(rho[j][i]) ** 2 * row[i] * row[i];
          }
          // Gaussian output: SE of the mean sqrt(v / k), of the variance v sqrt(2 / k).
          expect(Math.abs(mean[n * 3 + j] - m)).toBeLessThan(5 * Math.sqrt(v / k));
          expect(Math.abs(variance[n * 3 + j] - v)).toBeLessThan(5 * v * Math.sqrt(2 / k));
        }
      });
    });
  }

  it("'weights' shares one sample across the batch, 'local' does not", () => {
    const x = tf.tensor2d([
      [1, 2],
      [1, 2],
    ]);
    for (const mode of ['weights', 'local'] as const) {
      const l = new BayesLinear(2, 2, { seed: 4, mode, posteriorOptions: { rhoInit: 0 } });
      const y = l.forward(x).arraySync() as number[][];
      if (mode === 'weights') expect(y[0]).toEqual(y[1]);
      else expect(y[0]).not.toEqual(y[1]);
    }
  });

  it('a quantisation hook sees mu, sigma, noise and the weight, and its output is used', () => {
    const l = new BayesLinear(2, 2, { seed: 5, mode: 'weights' });
    // The layer's hook is used by forward; sampleWeights takes its own.
    const seen: string[] = [];
    l.hook = (point, param, t) => {
      seen.push(`${param}:${point}`);
      return point === 'weight' ? tf.zerosLike(t) : t;
    };
    const y = l.forward(tf.tensor2d([[3, 4]]));
    expect(seen).toEqual([
      'weight:mu',
      'weight:sigma',
      'weight:noise',
      'weight:weight',
      'bias:mu',
      'bias:sigma',
      'bias:noise',
      'bias:weight',
    ]);
    // Zero weight and bias samples: the output is exactly 0.
    expect(y.arraySync()).toEqual([[0, 0]]);
    const s = l.sampleWeights({ hook: (_p, _r, t) => t });
    expect(s.weight.shape).toEqual([2, 2]);
    expect(s.bias?.shape).toEqual([2]);
  });

  it('trains: a few Adam steps on the ELBO move mu and rho and lower the loss', () => {
    const l = new BayesLinear(2, 1, { seed: 6, prior: gaussianPrior(0, 1) });
    const x = tf.tensor2d([
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    const y = tf.tensor2d([[1], [-1], [0]]);
    const opt = tf.train.adam(0.05);
    const loss = () =>
      tf.tidy(() => tf.add(tf.mean(tf.square(tf.sub(l.forward(x), y))), tf.div(l.kl(), 1000)) as tf.Scalar);
    const before = loss().dataSync()[0];
    const rho0 = l.param('weight_rho').dataSync().slice();
    for (let i = 0; i < 150; i++) opt.minimize(loss);
    const after = tf.tidy(() => {
      let s = 0;
      for (let i = 0; i < 20; i++) s += loss().dataSync()[0];
      return s / 20;
    });
    expect(after).toBeLessThan(before / 3);
    expect(l.param('weight_rho').dataSync()).not.toEqual(rho0);
  });
});

describe('BayesConv2d', () => {
  it("'mean' equals the deterministic conv with mu; 'local' has the moments conv(x, mu), conv(x^2, sigma^2)", () => {
    const c = new BayesConv2d(2, 3, 3, {
      seed: 7,
      padding: 1,
      stride: 2,
      posteriorOptions: { rhoInit: { mean: -1.5, std: 0.2 } },
    });
    const x = tf.tensor4d(new Rng(1).normal(2 * 2 * 5 * 5), [2, 2, 5, 5]);
    c.mode = 'mean';
    const ref = conv2d(x, c.param('weight_mu'), c.param('bias_mu'), c.params);
    expect(c.forward(x).dataSync()).toEqual(ref.dataSync());
    c.mode = 'local';
    const k = 1200;
    const { mean, variance } = outputMoments(() => c.forward(x), k);
    const expVar = tf
      .tidy(() =>
        conv2d(
          tf.square(x),
          tf.square(tf.softplus(c.param('weight_rho'))),
          tf.square(tf.softplus(c.param('bias_rho'))),
          c.params,
        ),
      )
      .dataSync();
    const expMean = ref.dataSync();
    for (let j = 0; j < expMean.length; j++) {
      expect(Math.abs(mean[j] - expMean[j])).toBeLessThan(5 * Math.sqrt(expVar[j] / k));
      expect(Math.abs(variance[j] - expVar[j])).toBeLessThan(5 * expVar[j] * Math.sqrt(2 / k));
    }
  });

  it('flipout on a convolution has the same per-output moments as independent weight samples', () => {
    const c = new BayesConv2d(1, 2, 2, { seed: 8, mode: 'flipout', posteriorOptions: { rhoInit: -1 } });
    const x = tf.tensor4d(new Rng(2).normal(2 * 4 * 4), [2, 1, 4, 4]);
    const k = 1200;
    const { mean, variance } = outputMoments(() => c.forward(x), k);
    const expMean = conv2d(x, c.param('weight_mu'), c.param('bias_mu'), c.params).dataSync();
    const expVar = tf
      .tidy(() =>
        conv2d(
          tf.square(x),
          tf.square(tf.softplus(c.param('weight_rho'))),
          tf.square(tf.softplus(c.param('bias_rho'))),
          c.params,
        ),
      )
      .dataSync();
    for (let j = 0; j < expMean.length; j++) {
      expect(Math.abs(mean[j] - expMean[j])).toBeLessThan(5 * Math.sqrt(expVar[j] / k));
      expect(Math.abs(variance[j] - expVar[j])).toBeLessThan(5 * expVar[j] * Math.sqrt(2 / k));
    }
  });

  it('radial supports weights and flipout but not local', () => {
    expect(() => new BayesConv2d(1, 1, 1, { posterior: 'radial', mode: 'local' })).toThrow(/local/);
    const c = new BayesConv2d(1, 2, 3, { posterior: 'radial', seed: 1 });
    expect(c.forward(tf.ones([1, 1, 5, 5])).shape).toEqual([1, 2, 3, 3]);
  });
});

describe('registry errors', () => {
  it('unknown posterior: ERR_UNKNOWN naming the registered ones', () => {
    expect(() => getPosterior('nope')).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN' }));
    expect(() => new BayesLinear(2, 2, { posterior: 'nope' })).toThrow(/gaussian/);
  });

  it('unsupported KL method: ERR_UNSUPPORTED', () => {
    const l = new BayesLinear(2, 2, { posterior: 'mcdropout' });
    expect(() => l.kl({ method: 'repar' })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    const s = new BayesLinear(2, 2, { posterior: 'sghmc' });
    expect(() => s.kl()).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
  });
});

describe('posterior option keys', () => {
  const argError = (re: RegExp) =>
    expect.objectContaining({ code: 'ERR_ARG', message: expect.stringMatching(re) });

  it('a misspelt option key of a built-in is ERR_ARG naming it and the known keys (layers and dnnToBnn)', () => {
    expect(
      () => new BayesLinear(2, 2, { posteriorOptions: { sigmaInit: { mean: -3, std: 0.1 } } as never }),
    ).toThrow(
      argError(
        /posterior 'gaussian': posteriorOptions: unknown key 'sigmaInit' \(known: muInit, biasMuInit, rhoInit, initFrom\)/,
      ),
    );
    expect(
      () => new BayesConv2d(1, 2, 3, { posterior: 'radial', posteriorOptions: { rhoinit: -4 } as never }),
    ).toThrow(argError(/posterior 'radial': posteriorOptions: unknown key 'rhoinit'/));
    expect(
      () => new BayesLinear(2, 2, { posterior: 'mcdropout', posteriorOptions: { rate: 0.5 } as never }),
    ).toThrow(argError(/'rate' \(known: init, biasInit, initFrom, p, isInput\)/));
    expect(
      () => new BayesLinear(2, 2, { posterior: 'sghmc', posteriorOptions: { precison: 2 } as never }),
    ).toThrow(argError(/'precison'/));
    expect(() => new BayesLinear(2, 2, { posteriorOptions: 3 as never })).toThrow(
      argError(/must be an object/),
    );
    const net = new Sequential(new Linear(2, 2));
    expect(() =>
      dnnToBnn(net, { posterior: 'gaussian', posteriorOptions: { sigmaInit: 1 } as never }),
    ).toThrow(argError(/posteriorOptions: unknown key 'sigmaInit'/));
    // the layers' own options likewise (a misspelt key was ignored: the default used)
    expect(() => new BayesLinear(2, 2, { posteriorOption: { p: 0.5 } } as never)).toThrow(
      argError(
        /^BayesLinear: options: unknown key 'posteriorOption' \(known: posterior, posteriorOptions, prior, mode, bias, seed, isInput\)$/,
      ),
    );
    expect(() => new BayesConv2d(1, 2, 3, { strid: 2 } as never)).toThrow(
      argError(/^BayesConv2d: options: unknown key 'strid' \(known: .*stride, padding, dilation, groups\)$/),
    );
    new BayesConv2d(1, 2, 3, { stride: 2, padding: 1, posterior: 'radial' }).dispose();
    // dnnToBnn's own options likewise (posterir: 'radial' converted to the default gaussian)
    expect(() => dnnToBnn(net, { posterir: 'radial' } as never)).toThrow(
      argError(
        /dnnToBnn: options: unknown key 'posterir' \(known: posterior, posteriorOptions, prior, moped, /,
      ),
    );
    net.dispose();
    // Known keys still work, and MOPED's initFrom passes through dnnToBnn.
    const l = new BayesLinear(2, 2, { posterior: 'mcdropout', posteriorOptions: { p: 0.5, init: 0 } });
    expect(l.posterior).toBeInstanceOf(McDropoutPosterior);
    l.dispose();
    const moped = dnnToBnn(new Sequential(new Linear(2, 2)), { posterior: 'gaussian', moped: true });
    expect(moped.converted.length).toBe(1);
    moped.model.dispose();
  });

  it('a registered plugin declares its own keys; without optionKeys its options reach it unchecked', () => {
    const seen: unknown[] = [];
    const gaussian = getPosterior('gaussian');
    registerPosterior(
      'test-keys',
      (spec, o) => {
        seen.push(o);
        return gaussian(spec);
      },
      { optionKeys: ['alpha'] },
    );
    registerPosterior('test-nokeys', (spec, o) => {
      seen.push(o);
      return gaussian(spec);
    });
    try {
      new BayesLinear(2, 2, { posterior: 'test-keys', posteriorOptions: { alpha: 1 } as never }).dispose();
      expect(
        () => new BayesLinear(2, 2, { posterior: 'test-keys', posteriorOptions: { alfa: 1 } as never }),
      ).toThrow(argError(/posterior 'test-keys': posteriorOptions: unknown key 'alfa' \(known: alpha\)/));
      new BayesLinear(2, 2, {
        posterior: 'test-nokeys',
        posteriorOptions: { anything: 1 } as never,
      }).dispose();
      expect(seen).toEqual([{ alpha: 1 }, { anything: 1 }]);
      expect(() => registerPosterior('test-bad', gaussian, { optionKeys: 'alpha' as never })).toThrow(
        argError(/optionKeys must be an array of strings/),
      );
    } finally {
      unregisterPosterior('test-keys');
      unregisterPosterior('test-nokeys');
    }
  });
});

describe('MC Dropout', () => {
  it('drops a fraction p of the inputs with 1/(1-p) scaling, not at the network input, and stays on in eval', () => {
    const p = 0.3;
    const post = new McDropoutPosterior(
      { weightShape: [1, 2000], biasShape: null, fanIn: 2000, rng: new Rng(1) },
      { p },
    );
    const x = tf.ones([5, 2000]);
    const m = post.transformInput(x, { training: false }).dataSync();
    let zeros = 0;
    for (const v of m) {
      if (v === 0) zeros++;
      else expect(v).toBeCloseTo(1 / (1 - p), 6);
    }
    const n = m.length;
    expect(Math.abs(zeros / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    expect(
      post
        .transformInput(x, { isInput: true })
        .dataSync()
        .every((v) => v === 1),
    ).toBe(true);
    const shared = post.transformInput(x, { mode: 'weights' }).arraySync() as number[][];
    expect(shared[0]).toEqual(shared[4]);
  });

  it("closed KL is Gal's L2 term", () => {
    const post = new McDropoutPosterior(
      { weightShape: [2, 2], biasShape: [2], fanIn: 2, rng: new Rng(1) },
      { p: 0.25 },
    );
    const w = post.weight.dataSync();
    const b = (post.bias as tf.Variable).dataSync();
    const s0 = 0.5;
    let ref = 0;
    for (const v of w) ref += (0.75 * (v - 0.1) ** 2) / (2 * s0 * s0);
    for (const v of b) ref += (v - 0.1) ** 2 / (2 * s0 * s0);
    expect(post.getKl(gaussianPrior(0.1, s0)).dataSync()[0]).toBeCloseTo(ref, 5);
  });
});

describe('dnnToBnn', () => {
  it('converts Linear children, with MOPED init (mu = w, sigma = delta |w|) and the same mean output', () => {
    const det = new Sequential(new Linear(4, 8, { seed: 1 }), new ReLU(), new Linear(8, 3, { seed: 2 }));
    const x = tf.tensor2d(new Rng(3).normal(5 * 4), [5, 4]);
    const ref = det.apply(x).dataSync().slice();
    const w0 = det.at(0).param('weight').dataSync().slice();
    const { model, converted } = dnnToBnn(det, {
      posterior: 'gaussian',
      moped: { delta: 0.2 },
      mode: 'mean',
    });
    expect(converted).toEqual(['0', '2']);
    const l0 = model.at<BayesLinear>(0);
    expect(l0).toBeInstanceOf(BayesLinear);
    expect(l0.isInput).toBe(true);
    expect(l0.param('weight_mu').dataSync()).toEqual(w0);
    const sig = tf.softplus(l0.param('weight_rho')).dataSync();
    w0.forEach((w, i) => {
      expect(Math.abs(sig[i] - 0.2 * Math.abs(w))).toBeLessThan(1e-6 + 1e-5 * Math.abs(w));
    });
    const y = model.apply(x).dataSync();
    y.forEach((v, i) => {
      expect(v).toBeCloseTo(ref[i], 5);
    });
    expect(Number.isFinite(modelKl(model).dataSync()[0])).toBe(true);
  });

  it('converts Conv2d children with their hyper-parameters (radial, MOPED, mean output unchanged)', () => {
    const det = new Sequential(
      new Conv2d(1, 3, 3, { padding: 1, stride: 2, seed: 1 }),
      new ReLU(),
      new Flatten(),
      new Linear(3 * 3 * 3, 2, { seed: 2 }),
    );
    const x = tf.tensor4d(new Rng(4).normal(2 * 36), [2, 1, 6, 6]);
    const ref = det.apply(x).dataSync().slice();
    const { model, converted } = dnnToBnn(det, { posterior: 'radial', moped: true, mode: 'mean' });
    expect(converted).toEqual(['0', '3']);
    const c = model.at<BayesConv2d>(0);
    expect(c).toBeInstanceOf(BayesConv2d);
    expect(c.params.stride).toEqual([2, 2]);
    model
      .apply(x)
      .dataSync()
      .forEach((v, i) => {
        expect(v).toBeCloseTo(ref[i], 5);
      });
  });

  it('works with any registered posterior, e.g. mcdropout (input layer not dropped)', () => {
    const det = new Sequential(new Linear(4, 8, { seed: 1 }), new ReLU(), new Linear(8, 3, { seed: 2 }));
    const { model } = dnnToBnn(det, { posterior: 'mcdropout', moped: true, posteriorOptions: { p: 0.5 } });
    const first = model.at<BayesLinear>(0).posterior as McDropoutPosterior;
    const second = model.at<BayesLinear>(2).posterior as McDropoutPosterior;
    expect(first.isInput).toBe(true);
    expect(second.isInput).toBe(false);
    expect(model.at<BayesLinear>(2).posterior).not.toBeInstanceOf(GaussianPosterior);
  });
});

describe('bayesFactory', () => {
  it('builds a Bayesian LeNet-5 from the @qbnn/nn zoo with any posterior, the first layer as input', () => {
    const model = lenet5(
      { imageSize: 8 },
      { seed: 3, factory: bayesFactory({ posterior: 'mcdropout', posteriorOptions: { p: 0.5 } }) },
    );
    const layers = bayesLayers(model);
    expect(layers.map(([p]) => p)).toEqual(['conv1', 'conv2', 'fc1', 'fc2']);
    expect(layers.map(([, l]) => l.isInput)).toEqual([true, false, false, false]);
    expect(layers[1][1]).toBeInstanceOf(BayesConv2d);
    expect((layers[1][1] as BayesConv2d).params.padding).toEqual([2, 2]);
    expect(model.apply(tf.ones([2, 1, 8, 8])).shape).toEqual([2, 10]);
  });
});

describe('meanVar helper sanity', () => {
  it('computes unbiased variance', () => {
    expect(meanVar([1, 2, 3]).variance).toBeCloseTo(1, 12);
  });
});
