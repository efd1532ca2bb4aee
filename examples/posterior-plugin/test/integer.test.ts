import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng } from '@qbnn/core';
import { BatchNorm2d, Flatten, ReLU, Sequential } from '@qbnn/nn';
import { BayesConv2d, BayesLinear } from '@qbnn/posteriors';
import {
  defaultQConfig,
  deserializeQuantized,
  foldBatchNorm,
  type QuantizedModel,
  quantize,
  serializeQuantized,
  unregisterIntegerForm,
} from '@qbnn/qat';
import { simulate } from '@qbnn/qat/testing';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LowRankWeights, registerLowRank } from '../src/index.js';

beforeAll(async () => {
  await initBackend({ log: () => {} });
  registerLowRank();
});

function net(opts: { rhoInit: number; vInit: number }, bias = true): Sequential {
  return new Sequential({
    flat: new Flatten(),
    fc1: new BayesLinear(16, 8, { posterior: 'lowrank', posteriorOptions: opts, seed: 1, bias }),
    relu: new ReLU(),
    fc2: new BayesLinear(8, 3, { posterior: 'lowrank', posteriorOptions: opts, seed: 2, bias }),
  });
}

function inputs(seed: number, b: number): tf.Tensor {
  return tf.tensor(new Rng(seed).uniform(b * 16), [b, 1, 4, 4]);
}

async function ptq(model: Sequential): Promise<QuantizedModel> {
  const x = inputs(1, 64);
  try {
    return await quantize(model, { mode: 'ptq', data: x, batchSize: 16, passes: 4, inputShape: [1, 4, 4] });
  } finally {
    x.dispose();
  }
}

describe('the low-rank posterior in the integer engine (its form registered from outside qbnn)', () => {
  it('PTQ converts through its own form; L = 100 gives 100 distinct draws; the engine agrees with the float64 reference', async () => {
    const qm = await ptq(net({ rhoInit: -3, vInit: 0.05 }));
    expect(qm.describe().layers.map((l) => [l.path, l.form, l.stochastic])).toEqual([
      ['fc1', 'lowrank', true],
      ['fc2', 'lowrank', true],
    ]);
    const x = inputs(2, 1).dataSync();
    const { logits } = qm.forward(x, { samples: 100, seed: 7 });
    const draws = new Set<string>();
    for (let l = 0; l < 100; l++) draws.add(Array.from(logits.subarray(l * 3, l * 3 + 3)).join(','));
    expect(draws.size).toBe(100);
    // same draws, float64 arithmetic: within a quantisation step or so of each other
    const x4 = inputs(3, 4).dataSync();
    const a = qm.forward(x4, { samples: 6, seed: 3 }).logits;
    const b = simulate(qm, x4, { samples: 6, seed: 3 }).logits;
    let close = 0;
    for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) < 2e-3) close++;
    expect(close / a.length).toBeGreaterThan(0.9);
    // local reparameterisation does not apply to correlated weights: a typed refusal
    expect(() => qm.forward(x, { mode: 'local' })).toThrow(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED' }),
    );
  });

  it('integer draws carry the rank-one correlation: cov(w[0, j], w[1, j]) = v_0j v_1j within 5 standard errors', async () => {
    // one layer without bias; one-hot inputs read column j of each sampled weight exactly
    const model = new Sequential({
      fc: new BayesLinear(4, 2, {
        posterior: 'lowrank',
        posteriorOptions: { rhoInit: -2, vInit: 0.4 },
        seed: 3,
        bias: false,
      }),
    });
    const x = tf.tensor(new Rng(4).uniform(64 * 4), [64, 4]);
    const qm = await quantize(model, { mode: 'ptq', data: x, passes: 8 });
    x.dispose();
    const w = qm.layers[0].weights as LowRankWeights;
    const vReal = (i: number) => {
      const c = Math.floor(i / 4);
      const s = w.vQ.scale.length === 1 ? 0 : c;
      return w.vQ.scale[s] * (w.v[i] - w.vQ.zeroPoint[s]);
    };
    const L = 4000;
    const eye = Float32Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0));
    const { logits } = qm.forward(eye, { samples: L, seed: 11 });
    for (const j of [0, 2]) {
      // sample l, batch row j (input e_j), class c: logits[(l * 4 + j) * 2 + c] = w[c, j]
      const a = Float64Array.from({ length: L }, (_, l) => logits[(l * 4 + j) * 2]);
      const b = Float64Array.from({ length: L }, (_, l) => logits[(l * 4 + j) * 2 + 1]);
      const ma = a.reduce((s, v) => s + v, 0) / L;
      const mb = b.reduce((s, v) => s + v, 0) / L;
      const prod = Float64Array.from(a, (v, l) => (v - ma) * (b[l] - mb));
      const cov = prod.reduce((s, v) => s + v, 0) / L;
      const se = Math.sqrt(prod.reduce((s, v) => s + (v - cov) ** 2, 0) / (L - 1) / L);
      const expected = vReal(j) * vReal(4 + j);
      expect(Math.abs(expected)).toBeGreaterThan(10 * se); // the correlation is really there to see
      expect(Math.abs(cov - expected)).toBeLessThan(5 * se);
    }
  });

  it('QAT (fake quantisation at mu, sigma, noise, weight), save and load give the same samples', async () => {
    const model = net({ rhoInit: -3, vInit: 0.05 });
    const x = inputs(5, 32);
    const y = tf.oneHot(
      tf.tensor1d(
        Array.from({ length: 32 }, (_, i) => i % 3),
        'int32',
      ),
      3,
    );
    const qm = await quantize(model, {
      mode: 'qat',
      data: { x, y },
      qconfig: defaultQConfig({ qat: true, weightBits: 6 }),
      inputShape: [1, 4, 4],
      fit: { epochs: 1, batchSize: 16 },
    });
    tf.dispose([x, y]);
    expect(qm.describe().layers.every((l) => l.form === 'lowrank' && l.weightBits === 6)).toBe(true);
    const back = deserializeQuantized(serializeQuantized(qm));
    const xt = inputs(6, 3).dataSync();
    expect(Array.from(back.forward(xt, { samples: 5, seed: 2 }).logits)).toEqual(
      Array.from(qm.forward(xt, { samples: 5, seed: 2 }).logits),
    );
    // without the form registered, loading names what is missing
    const bytes = serializeQuantized(back);
    unregisterIntegerForm('lowrank');
    try {
      expect(() => deserializeQuantized(bytes)).toThrow(
        expect.objectContaining({
          code: 'ERR_FORMAT',
          message: expect.stringContaining("integer form 'lowrank', which is not registered"),
        }),
      );
    } finally {
      registerLowRank();
    }
  });
});

describe('BatchNorm folding through the form', () => {
  it('a BatchNorm after a low-rank conv folds into mu, sigma and v: the mean output is unchanged', () => {
    const model = new Sequential({
      conv: new BayesConv2d(1, 3, 3, {
        posterior: 'lowrank',
        posteriorOptions: { vInit: 0.1 },
        seed: 5,
        padding: 1,
      }),
      bn: new BatchNorm2d(3),
    });
    const bn = model.child<BatchNorm2d>('bn');
    bn.buffer('running_mean').assign(tf.tensor1d([0.1, -0.2, 0.3]));
    bn.buffer('running_var').assign(tf.tensor1d([0.5, 2, 1.5]));
    bn.param('weight').assign(tf.tensor1d([1.5, -0.7, 0.9]));
    bn.param('bias').assign(tf.tensor1d([0.2, 0.1, -0.3]));
    model.eval();
    const conv = model.child<BayesConv2d>('conv');
    conv.mode = 'mean';
    const x = inputs(7, 2);
    const before = tf.tidy(() => model.apply(x).dataSync().slice());
    const v0 = conv.param('weight_v').dataSync().slice();
    expect(foldBatchNorm(model)).toEqual(['bn']);
    const after = tf.tidy(() => model.apply(x).dataSync().slice());
    for (let i = 0; i < before.length; i++) expect(after[i]).toBeCloseTo(before[i], 4);
    // v scaled by f = gamma / sqrt(var + eps) of its output channel (channel 1: negative)
    const v1 = conv.param('weight_v').dataSync();
    const f1 = -0.7 / Math.sqrt(2 + 1e-5);
    expect(v1[9]).toBeCloseTo(v0[9] * f1, 5);
    x.dispose();
  });
});

describe('the CLI with --plugin', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'qbnn-lowrank-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trains, quantises (PTQ) and evaluates a low-rank model in integers', async () => {
    const { main } = await import('@qbnn/cli');
    const plugin = join(import.meta.dirname, '../src/index.ts');
    const io = () => {
      const o = { out: '', err: '' };
      const io = {
        out: (s: string) => {
          o.out += s;
        },
        err: (s: string) => {
          o.err += s;
        },
      };
      return { o, io };
    };
    const ckpt = join(dir, 'm.safetensors');
    const t = io();
    const split = ['--train-size', '128', '--test-size', '64'];
    const trained = await main(
      [
        'train',
        '--model',
        'mlp',
        '--posterior',
        'lowrank',
        '--plugin',
        plugin,
        ...split,
        '--epochs',
        '1',
        '--out',
        ckpt,
        '--quiet',
      ],
      t.io,
    );
    expect(trained, t.o.err).toBe(0);
    const q = io();
    const out = join(dir, 'q.safetensors');
    const quantised = await main(
      [
        'quantize',
        '--checkpoint',
        ckpt,
        '--plugin',
        plugin,
        '--calibration-size',
        '64',
        '--out',
        out,
        '--json',
        '--quiet',
      ],
      q.io,
    );
    expect(quantised, q.o.err).toBe(0);
    expect(JSON.parse(q.o.out).layers.every((l: { kind: string }) => l.kind === 'lowrank')).toBe(true);
    const e = io();
    const evaluated = await main(
      ['eval', '--quantized', out, '--plugin', plugin, ...split, '--samples', '4', '--json', '--quiet'],
      e.io,
    );
    expect(evaluated, e.o.err).toBe(0);
  });
});
