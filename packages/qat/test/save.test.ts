import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, Flatten, MaxPool2d, ReLU, Sequential, serializeModel } from '@qbnn/nn';
import { BayesConv2d, BayesLinear, type SghmcPosterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadQuantized, saveQuantized } from '../src/files.js';
import { calibrate, convert, prepare } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { deserializeQuantized, serializeQuantized } from '../src/save.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

function images(seed: number, b: number): tf.Tensor {
  const rnd = lcg(seed);
  return tf.tensor(
    Float32Array.from({ length: b * 256 }, () => rnd()),
    [b, 1, 16, 16],
  );
}

function net(posterior: string): Sequential {
  const po = posterior === 'mcdropout' ? { p: 0.3 } : {};
  return new Sequential({
    conv: new BayesConv2d(1, 8, 3, {
      padding: 1,
      seed: 1,
      posterior,
      posteriorOptions: po as never,
      isInput: true,
    }),
    relu: new ReLU(),
    pool: new MaxPool2d(2),
    flat: new Flatten(),
    fc1: new BayesLinear(512, 64, { seed: 2, posterior, posteriorOptions: po as never }),
    relu2: new ReLU(),
    fc2: new BayesLinear(64, 10, { seed: 3, posterior, posteriorOptions: po as never }),
  });
}

describe('saving quantised models', () => {
  for (const post of ['gaussian', 'radial', 'mcdropout', 'sghmc']) {
    it(`${post}: round trip through safetensors gives identical samples`, async () => {
      const m = net(post);
      if (post === 'sghmc') {
        for (const [, l] of m.namedModules()) {
          if (l instanceof BayesConv2d || l instanceof BayesLinear) {
            (l.posterior as SghmcPosterior).collect();
            (l.posterior as SghmcPosterior).collect();
          }
        }
      }
      const floatBytes = serializeModel(m).length;
      prepare(m, defaultQConfig());
      await calibrate(m, [images(1, 8)], { passes: 2 });
      const qm = convert(m, { inputShape: [1, 16, 16] });
      const bytes = serializeQuantized(qm);
      const file = decodeSafetensors(bytes);
      const dtypes = new Set(Object.values(file.tensors).map((x) => x.dtype));
      expect(dtypes.has('I8')).toBe(true);
      if (post === 'gaussian' || post === 'radial') {
        expect(file.tensors['1:conv.sigma'].dtype).toBe('U8');
        // mu + rho in f32 vs mu_q + sigma_q in 8 bits: ~1/4
        expect(bytes.length / floatBytes).toBeLessThan(0.3);
      }
      const back = deserializeQuantized(bytes);
      const x = images(2, 3).dataSync();
      const a = qm.forward(x, { samples: 3, seed: 9 }).logits;
      const b = back.forward(x, { samples: 3, seed: 9 }).logits;
      expect(Array.from(b)).toEqual(Array.from(a));
    });
  }

  it('saveQuantized / loadQuantized on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qat-'));
    try {
      const m = net('gaussian');
      prepare(m, defaultQConfig());
      await calibrate(m, [images(3, 4)]);
      const qm = convert(m, { inputShape: [1, 16, 16] });
      const path = join(dir, 'q.safetensors');
      await saveQuantized(qm, path);
      expect((await stat(path)).size).toBeGreaterThan(0);
      const back = await loadQuantized(path);
      const x = images(4, 2).dataSync();
      expect(Array.from(back.forward(x, { seed: 1 }).logits)).toEqual(
        Array.from(qm.forward(x, { seed: 1 }).logits),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
