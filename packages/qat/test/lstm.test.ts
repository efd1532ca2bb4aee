import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@qbnn/core';
import { Flatten, Linear, LSTM, Sequential } from '@qbnn/nn';
import { BayesLinear, BayesLSTM } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { QuantizedModel } from '../src/engine/quantized-model.js';
import { loadQuantized, saveQuantized } from '../src/node.js';
import { quantize } from '../src/quantize.js';
import { compareWithReference } from '../src/testing.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

const sequences = (seed: number, n: number) =>
  tf.tensor(Float32Array.from(new Rng(seed).normal(n * 6 * 3)), [n, 6, 3]);

/** BayesLSTM(3 -> 5) and a head, the LSTM giving its last or every step's h. */
function bayesRegressor(output: 'sequence' | 'last', posterior: 'gaussian' | 'mcdropout' = 'gaussian') {
  return new Sequential({
    lstm: new BayesLSTM(3, 5, { output, seed: 1, posterior }),
    ...(output === 'sequence' ? { flat: new Flatten() } : {}),
    fc: new BayesLinear(output === 'last' ? 5 : 6 * 5, 2, { seed: 3, posterior }),
  });
}

describe('LSTM in the integer engine (integer gate maps, float cell)', () => {
  for (const output of ['last', 'sequence'] as const)
    it(`a Bayesian LSTM (output '${output}') and a head: the engine within one step of the float64 reference`, async () => {
      const model = bayesRegressor(output);
      const calib = sequences(1, 32);
      const x = sequences(2, 3);
      const qm = await quantize(model, { mode: 'ptq', data: calib });
      expect(qm.ops.map((o) => o.op)).toEqual(
        output === 'last' ? ['quantize', 'lstm', 'layer'] : ['quantize', 'lstm', 'flatten', 'layer'],
      );
      const xs = x.dataSync() as Float32Array;
      for (const mode of ['weights', 'local'] as const) {
        const c = compareWithReference(qm, xs, { samples: 3, seed: 5, mode });
        expect(c.maxSteps).toBeLessThanOrEqual(1.0000001);
        expect(c.differing).toBeLessThan(0.01);
        expect(c.logitsClose).toBeGreaterThan(0.9);
      }
      tf.dispose([calib, x]);
      model.dispose();
    });

  it('a quantised LSTM model saves and loads with the same outputs; a bad stored LSTM is refused by name', async () => {
    const model = new Sequential({
      lstm: new BayesLSTM(3, 4, { output: 'last', seed: 1 }),
      fc: new Linear(4, 2, { seed: 2 }),
    });
    const qm = await quantize(model, { mode: 'ptq', data: sequences(3, 16) });
    const file = join(mkdtempSync(join(tmpdir(), 'qbnn-lstm-')), 'lstm.qbnn.safetensors');
    await saveQuantized(qm, file);
    const back = await loadQuantized(file);
    expect(back.ops.map((o) => o.op)).toEqual(['quantize', 'lstm', 'layer']);
    const xs = sequences(4, 2).dataSync() as Float32Array;
    expect(Array.from(back.forward(xs, { samples: 2, seed: 1 }).logits)).toEqual(
      Array.from(qm.forward(xs, { samples: 2, seed: 1 }).logits),
    );
    // a stored LSTM whose maps do not have 4H outputs is refused by name
    const bad = qm.ops.map((o) => (o.op === 'lstm' ? { ...o, hidden: 5 } : o));
    expect(() => new QuantizedModel(bad, qm.inputShape)).toThrow(/ops\[1\]\.ih\.n.*hidden size 5/);
    model.dispose();
  });

  it('refuses what it cannot run with a clear error: MC Dropout inside an LSTM, a deterministic nn LSTM', async () => {
    const drop = bayesRegressor('last', 'mcdropout');
    await expect(quantize(drop, { mode: 'ptq', data: sequences(5, 8) })).rejects.toThrow(
      /MC Dropout inside an LSTM/,
    );
    drop.dispose();
    const det = new Sequential({ lstm: new LSTM(3, 4, { output: 'last' }), fc: new Linear(4, 1) });
    await expect(quantize(det, { mode: 'ptq', data: sequences(6, 8) })).rejects.toThrow(/LSTM/);
    det.dispose();
  });
});
