import { QbnnError } from '@qbnn/core';
import { Conv2d, Flatten, Linear, ReLU, Sequential } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrate, prepare } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { quantize } from '../src/quantize.js';
import { serializeQuantized } from '../src/save.js';
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
    // (saveQuantized({}) was 'Cannot read properties of undefined (reading 'map')')
    await refuses(() => serializeQuantized({} as never), /serializeQuantized: qm must be a QuantizedModel/);
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
    // planned() checks the options forward checks (a mode forward refuses read true)
    await refuses(() => q.planned({ mode: 'bogus' as never }), /opts.mode must be one of/);
    await refuses(() => q.planned({ plan: 'yes' as never }), /opts.plan must be a boolean/);
    await refuses(() => q.planned(null as never), /opts must be an object/);
    data.dispose();
  });

  it('a tensor of another shape of the same size (channels last) is an ERR_SHAPE, not other pixels', async () => {
    const model = new Sequential(new Conv2d(3, 2, 3), new ReLU(), new Flatten(), new Linear(2 * 4 * 4, 3));
    const data = tf.randomUniform([4, 3, 6, 6]);
    const q = await quantize(model, { mode: 'ptq', data });
    const x = tf.randomUniform([2, 3, 6, 6]);
    const want = q.forward(x).logits;
    // the same values in the accepted forms: with or without the batch axis, flat, axes of 1 added
    for (const shape of [[2, 108], [216], [2, 1, 3, 6, 6], [2, 3, 6, 6, 1]]) {
      const y = tf.reshape(x, shape);
      expect(Array.from(q.forward(y).logits), String(shape)).toEqual(Array.from(want));
    }
    expect(q.forward(tf.slice(x, 0, 1).reshape([3, 6, 6])).logits).toHaveLength(3);
    let err: unknown;
    try {
      q.forward(tf.transpose(x, [0, 2, 3, 1])); // [2, 6, 6, 3]: channels last
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QbnnError);
    expect((err as QbnnError).code).toBe('ERR_SHAPE');
    expect((err as Error).message).toMatch(/x has shape \[2,6,6,3\]; expected \[batch, 3,6,6\]/);
    expect(() => q.predictProba(tf.zeros([2, 6, 3, 6]))).toThrow(/x has shape \[2,6,3,6\]/);
    data.dispose();
  });
});
