import {
  BatchNorm2d,
  Conv2d,
  crossEntropy,
  Flatten,
  Linear,
  MaxPool2d,
  type Module,
  ReLU,
  Sequential,
} from '@qbnn/nn';
import { BayesConv2d, BayesLinear, type LocScalePosterior, type SghmcPosterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrate, convert, FoldedBias, foldBatchNorm, prepare, prepareQat } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { QuantLayer } from '../src/quant-layer.js';
import { simulate } from '../src/testing.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

function images(seed: number, b: number): tf.Tensor {
  const rnd = lcg(seed);
  return tf.tensor(
    Float32Array.from({ length: b * 64 }, () => rnd()),
    [b, 1, 8, 8],
  );
}

function detNet(bn: boolean): Sequential {
  const layers: Record<string, Module> = {
    conv: new Conv2d(1, 4, 3, { padding: 1, seed: 1, bias: !bn }),
  };
  if (bn) layers.bn = new BatchNorm2d(4);
  Object.assign(layers, {
    relu: new ReLU(),
    pool: new MaxPool2d(2),
    flat: new Flatten(),
    fc1: new Linear(64, 16, { seed: 2 }),
    relu2: new ReLU(),
    fc2: new Linear(16, 5, { seed: 3 }),
  });
  return new Sequential(layers);
}

type Post = 'gaussian' | 'radial' | 'mcdropout' | 'sghmc';

function bayesNet(posterior: Post, rho = -6): Sequential {
  const po =
    posterior === 'gaussian' || posterior === 'radial'
      ? { rhoInit: rho }
      : posterior === 'mcdropout'
        ? { p: 0.2 }
        : {};
  return new Sequential({
    conv: new BayesConv2d(1, 4, 3, {
      padding: 1,
      seed: 1,
      posterior,
      posteriorOptions: po as never,
      isInput: true,
    }),
    relu: new ReLU(),
    pool: new MaxPool2d(2),
    flat: new Flatten(),
    fc1: new BayesLinear(64, 16, { seed: 2, posterior, posteriorOptions: po as never }),
    relu2: new ReLU(),
    fc2: new BayesLinear(16, 5, { seed: 3, posterior, posteriorOptions: po as never }),
  });
}

function setBnStats(net: Sequential): void {
  const bn = net.child<BatchNorm2d>('bn');
  bn.buffer('running_mean').assign(tf.tensor1d([0.1, -0.2, 0.3, 0]));
  bn.buffer('running_var').assign(tf.tensor1d([0.5, 2, 1.5, 0.8]));
  bn.param('weight').assign(tf.tensor1d([1.5, -0.7, 0.9, 1.1]));
  bn.param('bias').assign(tf.tensor1d([0.2, 0.1, -0.3, 0.05]));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('BatchNorm folding', () => {
  it('deterministic conv without bias: same eval output, FoldedBias placed', () => {
    const net = detNet(true);
    setBnStats(net);
    net.eval();
    const x = images(1, 3);
    const before = tf.tidy(() => net.apply(x).dataSync().slice());
    expect(foldBatchNorm(net)).toEqual(['bn']);
    expect(net.child('bn')).toBeInstanceOf(FoldedBias);
    const after = tf.tidy(() => net.apply(x).dataSync().slice());
    expect(maxAbsDiff(before, after)).toBeLessThan(1e-4);
  });

  it('Bayesian conv: mu scaled by f, sigma by |f|, mean output unchanged', () => {
    const net = new Sequential({
      conv: new BayesConv2d(1, 4, 3, { padding: 1, seed: 1, posteriorOptions: { rhoInit: -3 } as never }),
      bn: new BatchNorm2d(4),
    });
    setBnStats(net as Sequential);
    net.eval();
    const conv = net.child<BayesConv2d>('conv');
    conv.mode = 'mean';
    const p = conv.posterior as LocScalePosterior;
    const sigma0 = tf.softplus(p.params[0].rho).dataSync().slice();
    const x = images(2, 2);
    const before = tf.tidy(() => net.apply(x).dataSync().slice());
    foldBatchNorm(net);
    const after = tf.tidy(() => net.apply(x).dataSync().slice());
    expect(maxAbsDiff(before, after)).toBeLessThan(1e-4);
    const sigma1 = tf.softplus(p.params[0].rho).dataSync();
    const f = [1.5, -0.7, 0.9, 1.1].map((g, c) => g / Math.sqrt([0.5, 2, 1.5, 0.8][c] + 1e-5));
    for (let i = 0; i < sigma0.length; i++) {
      const c = Math.floor(i / 9);
      expect(sigma1[i]).toBeCloseTo(sigma0[i] * Math.abs(f[c]), 5);
    }
  });
});

describe('PTQ: prepare -> calibrate -> convert', () => {
  it('deterministic CNN with BN: integer logits track the float model', async () => {
    const net = detNet(true);
    setBnStats(net);
    net.eval();
    const x = images(3, 16);
    const ref = tf.tidy(() => net.apply(x).dataSync().slice());
    prepare(net, defaultQConfig());
    expect(net.child('conv')).toBeInstanceOf(QuantLayer);
    await calibrate(net, [images(4, 32), x]);
    const qm = convert(net, { inputShape: [1, 8, 8] });
    expect(qm.layers.map((l) => l.relu)).toEqual([true, true, false]);
    const y = qm.forward(x.dataSync()).logits;
    // a tensor is accepted as is
    expect(Array.from(qm.forward(x).logits)).toEqual(Array.from(y));
    let range = 0;
    for (const v of ref) range = Math.max(range, Math.abs(v));
    expect(maxAbsDiff(y, ref)).toBeLessThan(0.05 * range);
    const am = (a: ArrayLike<number>, i: number) => {
      let b = 0;
      for (let c = 1; c < 5; c++) if (a[i * 5 + c] > a[i * 5 + b]) b = c;
      return b;
    };
    let agree = 0;
    for (let i = 0; i < 16; i++) if (am(y, i) === am(ref, i)) agree++;
    expect(agree).toBeGreaterThanOrEqual(14);
  });

  for (const post of ['gaussian', 'radial', 'mcdropout', 'sghmc'] as Post[]) {
    it(`${post}: converts, and the integer engine equals its float twin`, async () => {
      const net = bayesNet(post);
      if (post === 'sghmc') {
        for (const [, m] of net.namedModules()) {
          if (m instanceof BayesConv2d || m instanceof BayesLinear) {
            const sp = m.posterior as SghmcPosterior;
            sp.collect();
            sp.weight.assign(tf.mul(sp.weight, 1.1));
            sp.collect();
          }
        }
      }
      prepare(net, defaultQConfig());
      await calibrate(net, [images(5, 16), images(6, 16)], { passes: 2 });
      const qm = convert(net, { inputShape: [1, 8, 8] });
      const kinds = qm.layers.map((l) => l.weights.kind);
      const expected = { gaussian: 'gaussian', radial: 'radial', mcdropout: 'mcdropout', sghmc: 'ensemble' }[
        post
      ];
      expect(kinds).toEqual([expected, expected, expected]);
      if (post === 'mcdropout') {
        expect(qm.layers[0].dropout).toBeUndefined();
        expect(qm.layers[1].dropout?.p).toBeCloseTo(0.2);
      }
      const x = images(7, 4).dataSync();
      const a = qm.forward(x, { samples: 4, seed: 1 }).logits;
      const b = simulate(qm, x, { samples: 4, seed: 1 }).logits;
      let close = 0;
      for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) < 1e-3) close++;
      expect(close / a.length).toBeGreaterThan(0.9);
    });
  }

  it('Gaussian with small sigma: integer predictions track the float posterior mean', async () => {
    const net = bayesNet('gaussian', -9);
    net.eval();
    for (const [, m] of net.namedModules())
      if (m instanceof BayesConv2d || m instanceof BayesLinear) m.mode = 'mean';
    const x = images(8, 16);
    const ref = tf.tidy(() => net.apply(x).dataSync().slice());
    for (const [, m] of net.namedModules())
      if (m instanceof BayesConv2d || m instanceof BayesLinear) m.mode = undefined;
    prepare(net, defaultQConfig());
    await calibrate(net, [images(9, 32), x], { passes: 3 });
    const qm = convert(net, { inputShape: [1, 8, 8] });
    const p = qm.forward(x.dataSync(), { samples: 3, seed: 2 });
    let range = 0;
    for (const v of ref) range = Math.max(range, Math.abs(v));
    for (let l = 0; l < 3; l++) {
      expect(maxAbsDiff(p.logits.subarray(l * 80, (l + 1) * 80), ref)).toBeLessThan(0.08 * range);
    }
  });

  it('mixed precision from one QConfig object', async () => {
    const net = detNet(false);
    const qc = defaultQConfig();
    qc.layers = { fc1: { weight: { bits: 4 }, activation: { bits: 6 } } };
    prepare(net, qc);
    await calibrate(net, [images(10, 8)]);
    const qm = convert(net, { inputShape: [1, 8, 8] });
    const fc1 = qm.layers[1];
    expect(fc1.weights.kind === 'fixed' && fc1.weights.wq.bits).toBe(4);
    expect(fc1.output?.bits).toBe(6);
    const w = fc1.weights.kind === 'fixed' ? fc1.weights.w : new Int8Array();
    expect(Math.max(...w)).toBeLessThanOrEqual(7);
    expect(Math.min(...w)).toBeGreaterThanOrEqual(-8);
    expect(qm.layers[2].input.bits).toBe(6);
  });
});

describe('QAT', () => {
  it.each(['gaussian', 'radial'] as const)(
    '%s: fake-quant at every Ferianc point, gradients reach mu and rho, training lowers the loss',
    (post) => {
      const net = bayesNet(post, -4);
      prepareQat(net, defaultQConfig({ qat: true, weightBits: 4, activationBits: 6 }));
      net.train();
      const x = images(11, 16);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0], 'int32'), 5);
      tf.tidy(() => net.apply(x));
      const fc1 = net.child<QuantLayer>('fc1');
      expect([...fc1.pointFqs[0].keys()].sort()).toEqual(['mu', 'noise', 'sigma', 'weight']);
      expect(fc1.outputFq?.ready).toBe(true);
      expect(net.child<QuantLayer>('conv').inputFq?.ready).toBe(true);
      const params = net.trainableParameters();
      const opt = tf.train.adam(0.01);
      const lossOf = () => crossEntropy(net.apply(x), y);
      const l0 = tf.tidy(() => lossOf().dataSync()[0]);
      for (let s = 0; s < 30; s++) {
        tf.tidy(() => {
          const { grads } = tf.variableGrads(lossOf, params);
          if (s === 0) {
            const post = (fc1.inner as BayesLinear).posterior as LocScalePosterior;
            const gRho = grads[post.params[0].rho.name];
            const gMu = grads[post.params[0].mu.name];
            expect(gRho).toBeDefined();
            expect(tf.sum(tf.abs(gRho)).dataSync()[0]).toBeGreaterThan(0);
            expect(tf.sum(tf.abs(gMu)).dataSync()[0]).toBeGreaterThan(0);
          }
          opt.applyGradients(grads);
        });
      }
      const l1 = tf.tidy(() => lossOf().dataSync()[0]);
      expect(l1).toBeLessThan(l0);
      const qm = convert(net, { inputShape: [1, 8, 8] });
      expect(qm.layers[1].weights.kind).toBe(post);
    },
  );
});

describe('QAT with learnable scales (LSQ)', () => {
  it('scales become trainable parameters after the first forward and receive gradients', async () => {
    const net = detNet(false);
    const qc = defaultQConfig({ qat: true });
    qc.weight.learnableScale = true;
    qc.activation.learnableScale = true;
    prepareQat(net, qc);
    const before = net.trainableParameters().length;
    await calibrate(net, [images(20, 8)]);
    const params = net.trainableParameters();
    expect(params.length).toBeGreaterThan(before);
    const fc1 = net.child<QuantLayer>('fc1');
    expect(fc1.hasParam('lsq_weight_0')).toBe(true);
    const x = images(21, 8);
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(net.apply(x))) as tf.Scalar, params);
    const g = grads[fc1.param('lsq_weight_0').name];
    expect(g).toBeDefined();
    expect(tf.sum(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    const qm = convert(net, { inputShape: [1, 8, 8] });
    const w = qm.layers[1].weights;
    expect(w.kind === 'fixed' && w.wq.scale[0]).toBeCloseTo(fc1.param('lsq_weight_0').dataSync()[0], 6);
  });
});

describe('QAT placement for the other posteriors', () => {
  it('MC Dropout observes the masked, rescaled input separately (not on the input layer)', () => {
    const net = bayesNet('mcdropout');
    prepareQat(net, defaultQConfig({ qat: true }));
    net.train();
    tf.tidy(() => net.apply(images(30, 8)));
    expect(net.child<QuantLayer>('conv').maskedFq).toBeUndefined();
    const fc1 = net.child<QuantLayer>('fc1');
    expect(fc1.maskedFq?.ready).toBe(true);
    // the masked input is rescaled by 1/(1-p): its range exceeds the unmasked input's
    const masked = fc1.maskedFq!.observer.range().max[0];
    const plain = net.child<QuantLayer>('conv').outputFq!.observer.range().max[0];
    expect(masked).toBeGreaterThan(plain);
  });

  it('SGHMC: each member gets its own weight fake-quant', () => {
    const net = bayesNet('sghmc');
    for (const [, m] of net.namedModules()) {
      if (m instanceof BayesConv2d || m instanceof BayesLinear) {
        const sp = m.posterior as SghmcPosterior;
        sp.collect();
        sp.weight.assign(tf.mul(sp.weight, 3));
        sp.collect();
      }
    }
    prepareQat(net, defaultQConfig({ qat: true }));
    for (let i = 0; i < 12; i++) tf.tidy(() => net.apply(images(31 + i, 2)));
    const fc1 = net.child<QuantLayer>('fc1');
    expect(fc1.pointFqs.length).toBe(2);
    const s0 = fc1.point('weight', 0).qparams().scale[0];
    const s1 = fc1.point('weight', 1).qparams().scale[0];
    expect(s1 / s0).toBeCloseTo(3, 1);
  });
});
