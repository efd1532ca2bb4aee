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
import {
  BatchNorm2d,
  Conv2d,
  Flatten,
  Linear,
  lenet5,
  type Module,
  ReLU,
  resnet18,
  Sequential,
} from '@qbnn/nn';
import { BayesConv2d, BayesLinear, type SghmcPosterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuantizedModel } from '../src/engine/quantized-model.js';
import { calibrate, convert, prepare } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { mnistDigits } from './fidelity-helpers.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

type Post = 'none' | 'gaussian' | 'radial' | 'mcdropout' | 'sghmc';
type Shape = 'lenet5' | 'mlp' | 'resnet18' | 'conv-kmax' | 'linear-kmax';

const CI = process.env.CI === 'true';
const runNative = nativeAvailable || CI;
if (!nativeAvailable && !CI) {
  console.warn(`native-whole-model: native cases skipped, the addon is not available: ${loadError}`);
}

function postOptions(p: Post): Record<string, unknown> {
  if (p === 'gaussian' || p === 'radial') return { rhoInit: -3 };
  if (p === 'mcdropout') return { p: 0.2 };
  return {};
}

type Ctx = { rng: never; stride?: never; padding?: never; bias?: boolean; path: string };

function factory(p: Post) {
  if (p === 'none') return undefined;
  const posterior = { posterior: p, posteriorOptions: postOptions(p) as never };
  return {
    linear: (i: number, o: number, c: Ctx) =>
      new BayesLinear(i, o, { seed: c.rng, bias: c.bias, ...posterior }),
    conv2d: (i: number, o: number, k: number | [number, number], c: Ctx) =>
      new BayesConv2d(i, o, k, {
        stride: c.stride,
        padding: c.padding,
        bias: c.bias,
        seed: c.rng,
        isInput: c.path === 'conv1',
        ...posterior,
      }),
  } as never;
}

/** Per-example input shape [C, H, W]. */
const INPUT: Record<Shape, [number, number, number]> = {
  lenet5: [1, 28, 28],
  mlp: [1, 28, 28],
  resnet18: [1, 16, 16],
  // K = 1321 * 5 * 5 = MAX_GEMM_K (33025), the largest reduction a GEMM accepts
  'conv-kmax': [1321, 5, 5],
  'linear-kmax': [1, 5, 6605],
};

function build(shape: Shape, p: Post): Module {
  if (shape === 'lenet5') return lenet5({}, { seed: 3, factory: factory(p) });
  if (shape === 'resnet18') {
    const net = resnet18(
      { inChannels: 1, numClasses: 10, widthMultiplier: 1 / 6, blocks: [2, 2, 2, 2] },
      { seed: 4, factory: factory(p) },
    );
    // Non-trivial BatchNorm statistics, so folding matters.
    const r = lcg(17);
    for (const m of net.modules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      const c = m.numFeatures;
      const v = (f: () => number) => tf.tensor1d(Array.from({ length: c }, f));
      m.buffer('running_mean').assign(v(() => (r() - 0.5) * 0.2));
      m.buffer('running_var').assign(v(() => 0.5 + r()));
      m.param('weight').assign(v(() => 0.5 + r()));
      m.param('bias').assign(v(() => (r() - 0.5) * 0.2));
    }
    return net;
  }
  if (shape === 'conv-kmax') {
    const c =
      (factory(p) as unknown as { conv2d?: (i: number, o: number, k: number, c: Partial<Ctx>) => Module }) ??
      {};
    const first = c.conv2d
      ? c.conv2d(1321, 4, 5, { rng: 8 as never, path: 'conv1' })
      : new Conv2d(1321, 4, 5, { seed: 8 });
    const fc =
      (factory(p) as unknown as { linear?: (i: number, o: number, c: Partial<Ctx>) => Module }) ?? {};
    return new Sequential({
      conv1: first,
      relu1: new ReLU(),
      flatten: new Flatten(),
      fc: fc.linear ? fc.linear(4, 10, { rng: 9 as never, path: 'fc' }) : new Linear(4, 10, { seed: 9 }),
    });
  }
  if (shape === 'linear-kmax') {
    const f = factory(p) as unknown as
      | { linear?: (i: number, o: number, c: Partial<Ctx>) => Module }
      | undefined;
    return new Sequential({
      flatten: new Flatten(),
      fc: f?.linear
        ? f.linear(MAX_GEMM_K, 10, { rng: 10 as never, path: 'fc' })
        : new Linear(MAX_GEMM_K, 10, { seed: 10 }),
    });
  }
  const f = factory(p) as unknown as
    | { linear: (i: number, o: number, c: Partial<Ctx>) => Module }
    | undefined;
  const lin = (i: number, o: number, seed: number, path: string) =>
    f ? f.linear(i, o, { rng: seed as never, path }) : new Linear(i, o, { seed });
  return new Sequential({
    flatten: new Flatten(),
    fc1: lin(784, 48, 5, 'fc1'),
    relu1: new ReLU(),
    fc2: lin(48, 24, 6, 'fc2'),
    relu2: new ReLU(),
    fc3: lin(24, 10, 7, 'fc3'),
  });
}

/** Images of a shape: real digits at [1, 28, 28], lcg noise otherwise. */
function images(shape: [number, number, number], n: number, from: number): Float32Array {
  if (shape.join() === '1,28,28') return mnistDigits(Math.ceil(n / 10), from).x.subarray(0, n * 784);
  const r = lcg(from + 1);
  return Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => r());
}

/** SGHMC: two collected members, the second perturbed so they differ. */
function collectMembers(net: Module): void {
  for (const m of net.modules()) {
    if (!(m instanceof BayesConv2d || m instanceof BayesLinear)) continue;
    const sp = m.posterior as SghmcPosterior;
    sp.collect();
    sp.weight.assign(tf.mul(sp.weight, 1.1));
    sp.collect();
  }
}

async function quantised(shape: Shape, p: Post): Promise<QuantizedModel> {
  const net = build(shape, p);
  if (p === 'sghmc') collectMembers(net);
  prepare(net, defaultQConfig());
  const s = INPUT[shape];
  const x = tf.tensor(images(s, 4, 0), [4, ...s]);
  await calibrate(net, [x], { passes: 1 });
  x.dispose();
  return convert(net, { inputShape: s });
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
