/**
 * Native = JS on whole models (issue 19, item 2): the integer engine's logits on the native
 * provider (@qbnn/native-amx) must be byte-identical to those on core's JS reference provider,
 * for fixed seeds, every built-in posterior and engine mode (weights; local where the posterior
 * has it: radial has none), on LeNet-5 (28x28, the study's layout), an MLP and a narrow
 * ResNet-18 (blocks [2, 2, 2, 2], widths x 1/6, 16x16 input, BatchNorms folded), and a conv and
 * a linear layer whose reduction length K is MAX_GEMM_K (the largest a GEMM accepts), with the
 * extreme inputs in every batch: an all-0 image and an all-1.0 image (all 0 / all 255 once
 * quantised, checked on the engine's own input state) beside a real digit.
 *
 * Without the addon the native cases are skipped with the loader's reason; under CI=true the
 * addon must be there (the first test fails otherwise).
 */
import { JS_PROVIDER, MAX_GEMM_K } from '@qbnn/core';
import { loadError, NATIVE_PROVIDER, nativeAvailable } from '@qbnn/native-amx';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpu } from './setup-tf.js';
import { INPUT, images, type Post, quantised, type Shape } from './whole-models.js';

beforeAll(useCpu);

const CI = process.env.CI === 'true';
const runNative = nativeAvailable || CI;
if (!nativeAvailable && !CI) {
  console.warn(`native-whole-model: native cases skipped, the addon is not available: ${loadError}`);
}

/** A batch of three: all 0, all 1.0, a real (or noise) image. */
function extremeBatch(shape: [number, number, number]): Float32Array {
  const px = shape[0] * shape[1] * shape[2];
  const x = new Float32Array(3 * px);
  x.fill(1, px, 2 * px);
  x.set(images(shape, 1, 200).subarray(0, px), 2 * px);
  return x;
}

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function firstMismatch(a: Float32Array, b: Float32Array): string {
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i])) return `logit ${i}: native ${a[i]} vs JS ${b[i]}`;
  return a.length === b.length ? 'none' : `lengths ${a.length} vs ${b.length}`;
}

const shapes: Shape[] = ['lenet5', 'mlp', 'resnet18', 'conv-kmax', 'linear-kmax'];
const posts: Post[] = ['none', 'gaussian', 'radial', 'mcdropout', 'sghmc'];

describe('native provider = JS provider on whole quantised models (logits byte for byte)', () => {
  it('the native addon is available under CI', () => {
    if (CI) expect(nativeAvailable, `native addon missing under CI: ${loadError}`).toBe(true);
  });

  for (const shape of shapes) {
    for (const p of posts) {
      it.skipIf(!runNative)(
        `${shape} / ${p}: weights${p === 'radial' || p === 'none' ? '' : ' and local'} mode, extreme inputs`,
        async () => {
          const qm = await quantised(shape, p);
          const s = INPUT[shape];
          const x = extremeBatch(s);
          // The extreme images are all 0 / all 255 on the engine's input grid.
          const input = qm.trace(x, { samples: 1, seed: 1, provider: JS_PROVIDER }).states[0].data;
          const px = s[0] * s[1] * s[2];
          if (shape.endsWith('kmax')) expect(qm.describe().layers[0].k).toBe(MAX_GEMM_K);
          expect(Array.from(new Set(input.subarray(0, px)))).toEqual([0]);
          expect(Array.from(new Set(input.subarray(px, 2 * px)))).toEqual([255]);
          // radial has no local mode; a deterministic model runs the same ops in both
          const modes =
            p === 'radial' || p === 'none' ? (['weights'] as const) : (['weights', 'local'] as const);
          for (const mode of modes) {
            for (const seed of [987654321]) {
              const opts = { samples: 2, seed, mode };
              const nat = qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits;
              const js = qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits;
              expect(nat.length).toBe(2 * 3 * 10);
              expect(js.every(Number.isFinite)).toBe(true);
              expect(
                bytesOf(nat).equals(bytesOf(js)),
                `${shape}/${p}/${mode}/seed ${seed}: ${firstMismatch(nat, js)}`,
              ).toBe(true);
            }
          }
        },
      );
    }
  }
});
