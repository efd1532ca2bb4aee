import { QbnnError } from '@qbnn/core';
import { Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrate, prepare } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { quantize } from '../src/quantize.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

async function refuses(p: () => Promise<unknown> | unknown, what: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p();
  } catch (e) {
    err = e;
  }
  expect(err, String(what)).toBeInstanceOf(QbnnError);
  expect((err as QbnnError).code).toBe('ERR_ARG');
  expect((err as Error).message).toMatch(what);
}

const mlp = () => new Sequential(new Linear(4, 6), new ReLU(), new Linear(6, 3));

// Hostile arguments of the one-call API and of the forward it returns. Before the checks,
// quantize(model, { batchSize: 0 }) never returned (the calibration slices stepped by 0),
// batchSize -1 / NaN were tfjs' untyped slice errors, and a disposed input tensor reached
// dataSync ('Tensor is disposed.').
describe('quantize and forward: bad arguments', () => {
  it('batchSize and passes must be positive integers, checked before the model is prepared', async () => {
    const data = tf.randomUniform([6, 4]);
    for (const batchSize of [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '8']) {
      const model = mlp();
      await refuses(
        () => quantize(model, { mode: 'ptq', data, batchSize } as never),
        /quantize: opts.batchSize must be a positive integer/,
      );
      // nothing was done to the model: it can still be quantised
      await expect(quantize(model, { mode: 'ptq', data })).resolves.toBeDefined();
    }
    for (const passes of [0, -3, 1.5, Number.NaN])
      await refuses(
        () => quantize(mlp(), { mode: 'ptq', data, passes }),
        /quantize: opts.passes must be a positive integer/,
      );
    const prepared = mlp();
    prepare(prepared, defaultQConfig());
    await refuses(
      () => calibrate(prepared, [data], { passes: 0 }),
      /calibrate: opts.passes must be a positive integer/,
    );
    await refuses(() => quantize(mlp(), undefined as never), /quantize: opts must be an object/);
    data.dispose();
  });

  it('a disposed input tensor is an ERR_ARG naming x', async () => {
    const data = tf.randomUniform([6, 4]);
    const q = await quantize(mlp(), { mode: 'ptq', data });
    const x = tf.randomUniform([2, 4]);
    expect(q.forward(x).logits).toHaveLength(6);
    x.dispose();
    await refuses(() => q.forward(x), /x is a disposed tensor/);
    await refuses(() => q.predictProba(x, { samples: 2 }), /x is a disposed tensor/);
    data.dispose();
  });
});
