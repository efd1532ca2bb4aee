// Issue 17 D12: a checkpoint whose metadata claims 1e9 SGHMC members allocated without bound.
// The members to allocate are now counted from the file's tensors.
import { Rng } from '@qbnn/core';
import { decodeSafetensors, Linear, ReLU, Sequential, serializeModel } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { dnnToBnn, ensembleSize, predict, reserveEnsemble, SghmcPosterior } from '../src/index.js';
import { setup } from './helpers.js';

beforeAll(setup);

const sghmcMlp = () =>
  dnnToBnn(new Sequential(new Linear(3, 4, { seed: 1 }), new ReLU(), new Linear(4, 2, { seed: 2 })), {
    posterior: 'sghmc',
  }).model;

const contentsOf = (bytes: Uint8Array) => {
  const f = decodeSafetensors(bytes);
  return {
    tensors: Object.fromEntries(
      Object.entries(f.tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]),
    ),
  };
};

describe('reserveEnsemble: members counted from the checkpoint, not from its metadata (D12)', () => {
  it('a saved ensemble reloads into a fresh model with exactly the members the file holds', () => {
    const model = sghmcMlp();
    const posts = model
      .modules()
      .map((m) => (m as { posterior?: unknown }).posterior)
      .filter((p): p is SghmcPosterior => p instanceof SghmcPosterior);
    for (let k = 0; k < 3; k++) {
      for (const p of posts) p.weight.assign(tf.add(p.weight, 0.1 * (k + 1)));
      for (const p of posts) p.collect();
    }
    const bytes = serializeModel(model, { config: { members: 1e9 } });
    const fresh = sghmcMlp();
    expect(reserveEnsemble(fresh, contentsOf(bytes))).toBe(3);
    expect(ensembleSize(fresh)).toBe(3);
    fresh.loadStateDict(model.stateDict());
    const x = tf.tensor2d(new Rng(3).normal(6), [2, 3]);
    const a = predict(model, x).probs;
    const b = predict(fresh, x).probs;
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, a, b]);
    model.dispose();
    fresh.dispose();
  });

  it('members not numbered 0..K-1 are an ERR_FORMAT; a bad count to reserveMembers an ERR_ARG', () => {
    const model = sghmcMlp();
    const forged = {
      tensors: {
        '0.member0_weight': { dtype: 'F32', shape: [4, 3] },
        '0.member999999999_weight': { dtype: 'F32', shape: [4, 3] },
      },
    };
    expect(() => reserveEnsemble(model, forged)).toThrow(
      expect.objectContaining({
        code: 'ERR_FORMAT',
        message: expect.stringMatching(/layer '0' are not numbered 0..1 \(found 0, 999999999\)/),
      }),
    );
    expect(ensembleSize(model)).toBe(0);
    const post = (model.getModule('0') as unknown as { posterior: SghmcPosterior }).posterior;
    for (const n of [Number.NaN, -1, 1.5, 1e300]) {
      expect(() => post.reserveMembers(n)).toThrow(
        expect.objectContaining({ code: 'ERR_ARG', message: expect.stringMatching(/reserveMembers\(n\)/) }),
      );
    }
    expect(reserveEnsemble(model, { tensors: {} })).toBe(0);
    model.dispose();
  });
});
