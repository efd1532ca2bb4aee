import { crossEntropy, Flatten, ReLU, Sequential } from '@qbnn/nn';
import { BayesConv2d, BayesLinear, type SghmcPosterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantize } from '../src/quantize.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

const N = 96;
// Labels a fixed linear rule of the pixels decides: learnable, so fine-tuning lowers the loss.
function data(): { x: tf.Tensor; y: tf.Tensor } {
  const rnd = lcg(5);
  const x = Float32Array.from({ length: N * 16 }, () => rnd());
  const y = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let j = 0; j < 16; j++) s += x[i * 16 + j] * (j % 3 === 0 ? 1 : -0.5);
    y[i] = s > 0 ? 0 : s > -1 ? 1 : 2;
  }
  return { x: tf.tensor(x, [N, 1, 4, 4]), y: tf.tensor(y, [N], 'int32') };
}

function sghmcNet(): Sequential {
  const net = new Sequential({
    conv: new BayesConv2d(1, 3, 3, { padding: 1, seed: 1, posterior: 'sghmc', isInput: true }),
    relu: new ReLU(),
    flat: new Flatten(),
    fc: new BayesLinear(48, 3, { seed: 2, posterior: 'sghmc' }),
  });
  // Three members: the initial weights scaled, as a chain's samples differ.
  for (const [, m] of net.namedModules()) {
    if (!(m instanceof BayesConv2d || m instanceof BayesLinear)) continue;
    const p = m.posterior as SghmcPosterior;
    for (const scale of [1, 0.8, 1.2]) {
      p.weight.assign(tf.mul(p.weight, scale));
      p.collect();
    }
    p.weight.assign(tf.mul(p.weight, 1.7)); // the chain's position, distinct from every member
  }
  return net;
}

const posteriors = (net: Sequential) =>
  net
    .namedModules()
    .filter(([, m]) => m instanceof BayesConv2d || m instanceof BayesLinear)
    .map(([, m]) => (m as BayesLinear).posterior as SghmcPosterior);

/** Float cross-entropy of the network with member k's weights (no quantisation). */
function memberLoss(net: Sequential, d: { x: tf.Tensor; y: tf.Tensor }, k: number): number {
  for (const p of posteriors(net)) p.select(k);
  const v = tf.tidy(() => crossEntropy(net.apply(d.x), d.y).dataSync()[0]);
  for (const p of posteriors(net)) p.select(null);
  return v;
}

const snapshot = (net: Sequential) =>
  Object.fromEntries(Object.entries(net.stateDict()).map(([k, v]) => [k, v.dataSync().slice()]));

describe('QAT of an SGHMC ensemble', () => {
  it('fine-tunes every member through its own quantisation points and keeps the chain position', async () => {
    const net = sghmcNet();
    const d = data();
    net.eval();
    const lossBefore = [0, 1, 2].map((k) => memberLoss(net, d, k));
    const before = snapshot(net);
    const qm = await quantize(net, {
      mode: 'qat',
      data: d,
      inputShape: [1, 4, 4],
      fit: { epochs: 3, lr: 0.02, batchSize: 16, seed: 0 },
    });
    const after = snapshot(net);
    // The chain's position is restored exactly; each member moved.
    for (const key of ['conv.inner.weight', 'fc.inner.weight']) {
      expect(Array.from(after[key])).toEqual(Array.from(before[key.replace('.inner', '')]));
    }
    for (let k = 0; k < 3; k++) {
      for (const layer of ['conv', 'fc']) {
        const a = after[`${layer}.inner.member${k}_weight`];
        const b = before[`${layer}.member${k}_weight`];
        expect(a.some((v, i) => v !== b[i])).toBe(true);
      }
    }
    // Each member's fine-tuning lowered its own loss (trained on the likelihood through fake
    // quant), measured in float on a fresh network holding the fine-tuned members.
    const fresh = sghmcNet();
    fresh.loadStateDict(
      Object.fromEntries(
        Object.entries(after).map(([k, v]) => [
          k.replace('.inner', ''),
          tf.tensor(v, net.stateDict()[k].shape),
        ]),
      ),
    );
    fresh.eval();
    for (let k = 0; k < 3; k++) expect(memberLoss(fresh, d, k)).toBeLessThan(lossBefore[k]);
    fresh.dispose();
    expect(qm.layers.map((l) => l.weights.kind)).toEqual(['ensemble', 'ensemble']);
    qm.dispose();
    net.dispose();
    tf.dispose([d.x, d.y]);
  });
});
