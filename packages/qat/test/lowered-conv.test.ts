import { Rng } from '@qbnn/core';
import { convTranspose2d } from '@qbnn/nn';
import { dnnToBnn } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadQuantized, saveQuantized } from '../src/node.js';
import { quantize } from '../src/quantize.js';
import { compareWithReference, convTranspose2dF64 } from '../src/testing.js';
import { LOWERED_CONV_CASES as cases } from './conv-models.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

const normal = (seed: number, n: number) => Float32Array.from(new Rng(seed).normal(n));

/** torch's transposed kernel [in, out/g, kh, kw] as the equivalent convolution's, by index (a loop, not the library's tensor ops). */
function equivalentKernelLoop(w: Float32Array, shape: number[], groups: number): Float64Array {
  const [cin, og, kh, kw] = shape;
  const ig = cin / groups;
  const out = new Float64Array(w.length);
  for (let ci = 0; ci < cin; ci++) {
    const g = Math.floor(ci / ig);
    const c = ci % ig;
    for (let j = 0; j < og; j++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) {
          out[(((g * og + j) * ig + c) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] =
            w[((ci * og + j) * kh + y) * kw + x];
        }
  }
  return out;
}

describe('transposed convolution reference', () => {
  it('convTranspose2dF64 over the equivalent kernel equals nn.convTranspose2d (checked against torch in interop)', () => {
    const wShape = [4, 3, 3, 2];
    const w = normal(1, 4 * 3 * 3 * 2);
    const x = normal(2, 2 * 4 * 5 * 4);
    const want = tf.tidy(() =>
      convTranspose2d(
        tf.tensor(x, [2, 4, 5, 4]),
        tf.tensor(w, wShape),
        tf.tensor([0.1, -0.2, 0.3, 0, 0.5, -1]),
        {
          stride: [2, 2],
          padding: [1, 0],
          outputPadding: [1, 0],
          dilation: [1, 2],
          groups: 2,
        },
      ),
    );
    const got = convTranspose2dF64(
      Float64Array.from(x),
      [2, 4, 5, 4],
      equivalentKernelLoop(w, wShape, 2),
      [6, 2, 3, 2],
      [2, 2],
      [1, 0],
      [1, 0],
      [1, 2],
      2,
      Float64Array.from([0.1, -0.2, 0.3, 0, 0.5, -1]),
    );
    expect(got.shape).toEqual(want.shape);
    const y = want.dataSync();
    for (let i = 0; i < y.length; i++) expect(got.out[i]).toBeCloseTo(y[i], 4);
    want.dispose();
  });
});

describe('1-D and transposed convolutions in the integer engine (lowered onto the 2-D kernels)', () => {
  for (const c of cases) {
    for (const posterior of ['none', 'gaussian', 'mcdropout'] as const) {
      it(`${c.name}, ${posterior === 'none' ? 'deterministic' : posterior}: PTQ, engine within one step of the float64 reference`, async () => {
        const det = c.make();
        const model = posterior === 'none' ? det : dnnToBnn(det, { posterior, moped_enable: true }).model;
        const per = c.inputShape.reduce((a, b) => a * b, 1);
        const calib = tf.tensor(normal(5, 16 * per), [16, ...c.inputShape]);
        const x = tf.tensor(normal(6, 3 * per), [3, ...c.inputShape]);
        const float =
          posterior === 'none'
            ? tf
                .tidy(() => model.eval().apply(x))
                .dataSync()
                .slice()
            : undefined;
        const qm = await quantize(model, { mode: 'ptq', data: calib });
        expect(qm.layers.map((l) => l.op)).toEqual(c.ops);
        const xs = x.dataSync() as Float32Array;
        const cmp = compareWithReference(qm, xs, { samples: 2, seed: 9 });
        expect(cmp.maxSteps).toBeLessThanOrEqual(1.0000001);
        expect(cmp.differing).toBeLessThan(0.01);
        expect(cmp.logitsClose).toBeGreaterThan(0.9);
        if (float) {
          // deterministic: the int8 model is the float model up to 8-bit quantisation error
          let num = 0;
          let den = 0;
          for (let i = 0; i < float.length; i++) {
            num += (cmp.logits[i] - float[i]) ** 2;
            den += float[i] ** 2;
          }
          expect(Math.sqrt(num / den)).toBeLessThan(0.05);
        }
        tf.dispose([calib, x]);
        model.dispose();
      });
    }
  }

  it('a quantised transposed-conv model saves and loads with the same outputs', async () => {
    const c = cases[1];
    const model = dnnToBnn(c.make(), { posterior: 'gaussian', moped_enable: true }).model;
    const per = c.inputShape.reduce((a, b) => a * b, 1);
    const calib = tf.tensor(normal(5, 8 * per), [8, ...c.inputShape]);
    const qm = await quantize(model, { mode: 'ptq', data: calib });
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const file = join(mkdtempSync(join(tmpdir(), 'qbnn-lowered-')), 'up.qbnn.safetensors');
    await saveQuantized(qm, file);
    const back = await loadQuantized(file);
    const xs = normal(7, 2 * per);
    expect(Array.from(back.forward(xs, { samples: 2, seed: 1 }).logits)).toEqual(
      Array.from(qm.forward(xs, { samples: 2, seed: 1 }).logits),
    );
    calib.dispose();
    model.dispose();
  });
});
