import { BatchNorm2d, type Module, resnet18 } from '@qbnn/nn';
import { BayesConv2d, BayesLinear } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrate, convert, prepare, prepareQat } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { FakeQuantAfter, QuantLayer } from '../src/quant-layer.js';
import { deserializeQuantized, serializeQuantized } from '../src/save.js';
import { simulateTrace } from '../src/testing.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

const cfg = {
  inChannels: 1,
  numClasses: 5,
  widths: [4, 6, 8, 8] as [number, number, number, number],
  blocks: [1, 1, 1, 1] as [number, number, number, number],
};

function images(seed: number, b: number): tf.Tensor {
  const r = lcg(seed);
  return tf.tensor(
    Float32Array.from({ length: b * 64 }, () => r()),
    [b, 1, 8, 8],
  );
}

function randomiseBn(model: Module, seed: number): void {
  const r = lcg(seed);
  for (const m of model.modules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    const c = m.numFeatures;
    m.buffer('running_mean').assign(tf.tensor1d(Array.from({ length: c }, () => (r() - 0.5) * 0.2)));
    m.buffer('running_var').assign(tf.tensor1d(Array.from({ length: c }, () => 0.5 + r())));
    m.param('weight').assign(tf.tensor1d(Array.from({ length: c }, () => 0.5 + r())));
    m.param('bias').assign(tf.tensor1d(Array.from({ length: c }, () => (r() - 0.5) * 0.2)));
  }
}

const bayesFactory = {
  linear: (i: number, o: number, opts: { rng: never }) =>
    new BayesLinear(i, o, { seed: opts.rng, posteriorOptions: { rhoInit: -6 } as never }),
  conv2d: (i: number, o: number, k: number | [number, number], opts: Record<string, never>) =>
    new BayesConv2d(i, o, k, {
      stride: opts.stride,
      padding: opts.padding,
      bias: opts.bias,
      seed: opts.rng,
      posteriorOptions: { rhoInit: -6 } as never,
    }),
};

describe('residual blocks (ResNet BasicBlock)', () => {
  it('PTQ of a deterministic ResNet: BNs folded, adds observed, integer logits track float', async () => {
    const net = resnet18(cfg, { seed: 3 });
    randomiseBn(net, 1);
    net.eval();
    const x = images(1, 16);
    const ref = tf.tidy(() => net.apply(x).dataSync().slice());
    prepare(net, defaultQConfig());
    expect(net.getModule('layer2.0.conv1')).toBeInstanceOf(QuantLayer);
    expect(net.getModule('layer2.0.shortcut.0')).toBeInstanceOf(QuantLayer);
    expect(net.getModule('layer2.0.post')).toBeInstanceOf(FakeQuantAfter);
    expect(net.getModule('layer2.0.bn1').constructor.name).not.toBe('BatchNorm2d');
    await calibrate(net, [images(2, 32), x]);
    const qm = convert(net, { inputShape: [1, 8, 8] });
    expect(qm.ops.filter((o) => o.op === 'residual').length).toBe(4);
    const y = qm.forward(x.dataSync()).logits;
    let range = 0;
    let err = 0;
    for (let i = 0; i < ref.length; i++) {
      range = Math.max(range, Math.abs(ref[i]));
      err = Math.max(err, Math.abs(ref[i] - y[i]));
    }
    expect(err).toBeLessThan(0.1 * range);
  });

  it('Bayesian ResNet (Gaussian): integer engine equals its float twin; save round trip', async () => {
    const net = resnet18(cfg, { seed: 4, factory: bayesFactory as never });
    randomiseBn(net, 2);
    prepare(net, defaultQConfig());
    await calibrate(net, [images(3, 16)], { passes: 2 });
    const qm = convert(net, { inputShape: [1, 8, 8] });
    expect(qm.layers.every((l) => l.weights.kind === 'gaussian')).toBe(true);
    const x = images(4, 3).dataSync();
    const opts = { samples: 2, seed: 6 };
    const ti = qm.trace(x, opts);
    const tw = simulateTrace(qm, x, opts);
    expect(ti.states.length).toBe(tw.states.length);
    let total = 0;
    let differing = 0;
    qm.ops.forEach((op, i) => {
      const q = 'q' in op ? op.q : op.op === 'layer' ? op.layer.output : undefined;
      if (!q || !ti.states[i]) return;
      const si = ti.states[i];
      for (let j = 0; j < si.data.length; j++) {
        const d = Math.abs(q.scale * (si.data[j] - q.zeroPoint) - tw.states[i].data[j]);
        total++;
        if (d > 1e-6 * q.scale) differing++;
      }
    });
    expect(total).toBeGreaterThan(0);
    expect(differing / total).toBeLessThan(0.02);
    const a = ti.output.logits;
    const b = tw.output.logits;
    let close = 0;
    for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) < 1e-3) close++;
    expect(close / a.length).toBeGreaterThan(0.9);
    const back = deserializeQuantized(serializeQuantized(qm));
    expect(Array.from(back.forward(x, opts).logits)).toEqual(Array.from(qm.forward(x, opts).logits));
  });

  it('QAT fake-quantises the activation after each residual add', () => {
    const net = resnet18(cfg, { seed: 5 });
    prepareQat(net, defaultQConfig({ qat: true }));
    net.train();
    tf.tidy(() => net.apply(images(5, 4)));
    const post = net.getModule('layer3.0.post') as FakeQuantAfter;
    expect(post.fq.ready).toBe(true);
    expect(post.fq.observer.range().min[0]).toBeGreaterThanOrEqual(0);
  });
});
