import { Flatten, ReLU, Sequential } from '@qbnn/nn';
import {
  BayesLinear,
  type Posterior,
  type PosteriorSpec,
  registerPosterior,
  type SampleOptions,
  unregisterPosterior,
} from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrate, convert, prepare, prepareQat } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import type { QuantLayer } from '../src/quant-layer.js';
import { simulate } from '../src/testing.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';

/** A third-party posterior: multiplicative noise w = mu (1 + 0.1 xi); reports only a 'scale' point. */
function multiplicative(spec: PosteriorSpec): Posterior {
  const n = spec.weightShape.reduce((a, b) => a * b, 1);
  const init = spec.rng
    .fork(0)
    .normal(n)
    .map((v) => v * 0.3);
  const mu = spec.createParameter!('weight_mu', tf.tensor(init, spec.weightShape as number[]));
  const rng = spec.rng.fork(1);
  const sample = (o: SampleOptions = {}) => {
    const hook = o.hook ?? ((_p: string, _r: string, t: tf.Tensor) => t);
    const xi = tf.tensor(rng.normal(n), spec.weightShape as number[]);
    const scale = hook('scale', 'weight', tf.add(1, tf.mul(0.1, xi)));
    return { weight: tf.mul(mu, scale) };
  };
  return {
    kind: 'multiplicative',
    modes: ['weights'],
    klMethods: [],
    defaultMode: 'weights',
    parameters: () => new Map([['weight_mu', mu]]),
    buffers: () => new Map(),
    sample,
    mean: () => ({ weight: mu }),
    forward: (x, op, o) => op.apply(x, sample(o).weight),
    getKl: () => tf.scalar(0),
    dispose: () => mu.dispose(),
  };
}

beforeAll(async () => {
  await useCpu();
  registerPosterior('multiplicative', multiplicative);
});
afterAll(() => {
  unregisterPosterior('multiplicative');
});

function net(): Sequential {
  return new Sequential({
    flat: new Flatten(),
    fc1: new BayesLinear(16, 8, { posterior: 'multiplicative', bias: false, seed: 1 }),
    relu: new ReLU(),
    fc2: new BayesLinear(8, 3, { posterior: 'multiplicative', bias: false, seed: 2 }),
  });
}

function batch(seed: number, b: number): tf.Tensor {
  const r = lcg(seed);
  return tf.tensor(
    Float32Array.from({ length: b * 16 }, () => r()),
    [b, 1, 4, 4],
  );
}

describe('third-party posterior without an integer form (stored draws, an explicit opt-in)', () => {
  it('fake-quantises its reported points and the sampled weight; a leading Flatten is fine', async () => {
    const m = net();
    prepare(m, defaultQConfig());
    await calibrate(m, [batch(1, 8), batch(2, 8)], { passes: 3 });
    const fc1 = m.child<QuantLayer>('fc1');
    expect([...fc1.pointFqs[0].keys()].sort()).toEqual(['scale', 'weight']);
    // no integer form registered for it: a typed error naming what to register, no silent fallback
    let err: unknown;
    try {
      convert(m, { inputShape: [1, 4, 4] });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_UNKNOWN' });
    expect((err as Error).message).toContain("posterior 'multiplicative' has no integer form");
    expect((err as Error).message).toContain('registerIntegerForm');
    expect((err as Error).message).toContain('storedDraws');
    const qm = convert(m, { inputShape: [1, 4, 4], storedDraws: 8 });
    expect(qm.ops.map((o) => o.op)).toEqual(['quantize', 'flatten', 'layer', 'layer']);
    const x = batch(3, 2).dataSync();
    expect(qm.forward(x, { samples: 2 }).logits.length).toBe(12);
  });

  it('converts when the first op is the layer, and the integer engine equals its twin', async () => {
    const m = new Sequential({
      fc1: new BayesLinear(16, 8, { posterior: 'multiplicative', bias: false, seed: 1 }),
      relu: new ReLU(),
      fc2: new BayesLinear(8, 3, { posterior: 'multiplicative', bias: false, seed: 2 }),
    });
    prepare(m, defaultQConfig());
    const flat = (t: tf.Tensor) => tf.reshape(t, [t.shape[0], 16]);
    await calibrate(m, [flat(batch(1, 8)), flat(batch(2, 8))], { passes: 3 });
    const qm = convert(m, { inputShape: [16], storedDraws: 5 });
    for (const l of qm.layers) {
      expect(l.weights.kind).toBe('ensemble');
      expect(l.weights.kind === 'ensemble' && l.weights.members.length).toBe(5);
    }
    const x = flat(batch(3, 4)).dataSync();
    const a = qm.forward(x, { samples: 5, seed: 1 }).logits;
    const b = simulate(qm, x, { samples: 5, seed: 1 }).logits;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-3);
    // different members give different samples
    expect(Array.from(a.slice(0, 12))).not.toEqual(Array.from(a.slice(12, 24)));
  });

  it('QAT on a third-party posterior trains through the fake-quantisers', () => {
    const m = new Sequential({
      fc1: new BayesLinear(16, 3, { posterior: 'multiplicative', bias: false, seed: 1 }),
    });
    prepareQat(m, defaultQConfig({ qat: true }));
    const x = tf.reshape(batch(4, 8), [8, 16]);
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.square(m.apply(x))) as tf.Scalar,
      m.trainableParameters(),
    );
    const g = Object.values(grads)[0];
    expect(tf.sum(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
  });
});
