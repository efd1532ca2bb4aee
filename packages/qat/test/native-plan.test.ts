/**
 * Native execution plans (issue 18, items 1 and 3): a whole forward as one native call must give
 * the logits of the kernel-by-kernel integer engine byte for byte, for every built-in posterior,
 * engine mode, a low bit width, batches of one and of several tiles, and 1 or 2 threads; on
 * LeNet-5, the MLP and a narrow ResNet-18 with the extreme inputs (all 0, all 1.0) in the batch.
 * The reference is the engine on core's JS provider (no plan, no native code).
 */
import { JS_PROVIDER } from '@qbnn/core';
import { getThreads, loadError, NATIVE_PROVIDER, nativeAvailable, setThreads } from '@qbnn/native-amx';
import { BatchNorm2d, Flatten, Linear, lenet5, type Module, ReLU, resnet18, Sequential } from '@qbnn/nn';
import { BayesConv2d, BayesLinear, type SghmcPosterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuantizedModel } from '../src/engine/quantized-model.js';
import { calibrate, convert, prepare } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { mnistDigits } from './fidelity-helpers.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);
const threads0 = nativeAvailable ? getThreads() : 1;
afterAll(() => {
  if (nativeAvailable) setThreads(threads0);
});

type Post = 'none' | 'gaussian' | 'radial' | 'mcdropout' | 'sghmc';
type Shape = 'lenet5' | 'mlp' | 'resnet18';

const CI = process.env.CI === 'true';
const runNative = nativeAvailable || CI;
if (!nativeAvailable && !CI) console.warn(`native-plan: skipped, the addon is not available: ${loadError}`);

const INPUT: Record<Shape, [number, number, number]> = {
  lenet5: [1, 28, 28],
  mlp: [1, 28, 28],
  resnet18: [1, 16, 16],
};

function factory(p: Post) {
  if (p === 'none') return undefined;
  const opts = p === 'mcdropout' ? { p: 0.2 } : p === 'sghmc' ? {} : { rhoInit: -3 };
  const posterior = { posterior: p, posteriorOptions: opts as never };
  type Ctx = { rng: never; stride?: never; padding?: never; bias?: boolean; path: string };
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

function build(shape: Shape, p: Post): Module {
  if (shape === 'lenet5') return lenet5({}, { seed: 3, factory: factory(p) });
  if (shape === 'resnet18') {
    const net = resnet18(
      { inChannels: 1, numClasses: 10, widthMultiplier: 1 / 8, blocks: [1, 1, 1, 1] },
      { seed: 4, factory: factory(p) },
    );
    const r = lcg(17);
    for (const m of net.modules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      const v = (f: () => number) => tf.tensor1d(Array.from({ length: m.numFeatures }, f));
      m.buffer('running_mean').assign(v(() => (r() - 0.5) * 0.2));
      m.buffer('running_var').assign(v(() => 0.5 + r()));
      m.param('weight').assign(v(() => 0.5 + r()));
      m.param('bias').assign(v(() => (r() - 0.5) * 0.2));
    }
    return net;
  }
  const f = factory(p) as unknown as {
    linear: (i: number, o: number, c: { rng: never; path: string }) => Module;
  };
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

function images(shape: [number, number, number], n: number, from: number): Float32Array {
  if (shape.join() === '1,28,28') return mnistDigits(Math.ceil(n / 10), from).x.subarray(0, n * 784);
  const r = lcg(from + 1);
  return Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => r());
}

function collectMembers(net: Module): void {
  for (const m of net.modules()) {
    if (!(m instanceof BayesConv2d || m instanceof BayesLinear)) continue;
    const sp = m.posterior as SghmcPosterior;
    sp.collect();
    sp.weight.assign(tf.mul(sp.weight, 1.1));
    sp.collect();
  }
}

async function quantised(shape: Shape, p: Post, bits = 8): Promise<QuantizedModel> {
  const net = build(shape, p);
  if (p === 'sghmc') collectMembers(net);
  prepare(net, defaultQConfig({ weightBits: bits, activationBits: bits }));
  const s = INPUT[shape];
  const x = tf.tensor(images(s, 4, 0), [4, ...s]);
  await calibrate(net, [x], { passes: 1 });
  x.dispose();
  return convert(net, { inputShape: s });
}

/** `n` examples: all 0, all 1.0, then real digits (or noise). */
function batch(shape: [number, number, number], n: number): Float32Array {
  const px = shape[0] * shape[1] * shape[2];
  const x = new Float32Array(n * px);
  x.fill(1, px, 2 * px);
  x.set(images(shape, n - 2, 300).subarray(0, (n - 2) * px), 2 * px);
  return x;
}

function same(a: Float32Array, b: Float32Array, what: string): void {
  let bad = -1;
  for (let i = 0; i < a.length && bad < 0; i++) if (!Object.is(a[i], b[i])) bad = i;
  expect(a.length, what).toBe(b.length);
  expect(bad < 0 ? 'identical' : `logit ${bad}: plan ${a[bad]} vs engine ${b[bad]}`, what).toBe('identical');
}

const cases: [Shape, Post][] = [
  ['lenet5', 'gaussian'],
  ['lenet5', 'radial'],
  ['lenet5', 'mcdropout'],
  ['lenet5', 'sghmc'],
  ['lenet5', 'none'],
  ['mlp', 'gaussian'],
  ['mlp', 'mcdropout'],
  ['mlp', 'radial'],
  ['resnet18', 'gaussian'],
  ['resnet18', 'mcdropout'],
  ['resnet18', 'sghmc'],
];

describe('native execution plans = the integer engine (logits byte for byte)', () => {
  for (const [shape, p] of cases) {
    it.skipIf(!runNative)(`${shape} / ${p}: weights and local modes, 1 and 2 threads`, async () => {
      const qm = await quantised(shape, p);
      const modes = p === 'radial' || p === 'none' ? (['weights'] as const) : (['weights', 'local'] as const);
      const s = INPUT[shape];
      // a batch of one, and one of several batch tiles for the small models
      const sizes = shape === 'resnet18' ? [3] : [1, 70];
      for (const mode of modes) {
        expect(qm.planned({ mode, provider: NATIVE_PROVIDER })).toBe(true);
        for (const B of sizes) {
          const x = B === 1 ? images(s, 1, 400) : batch(s, B);
          const opts = { samples: 2, seed: 987654321, mode };
          // the reference: the integer engine kernel by kernel, on core's JS kernels for the
          // small batches and on the native kernels (equal to them, native-whole-model.test.ts)
          // for the batch of several tiles, which the JS kernels take long over
          const js = qm.forward(x, {
            ...opts,
            provider: B > 3 ? NATIVE_PROVIDER : JS_PROVIDER,
            plan: false,
          }).logits;
          setThreads(1);
          const one = qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits;
          setThreads(2);
          const two = qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits;
          same(one, js, `${shape}/${p}/${mode}/B=${B}: plan (1 thread) vs engine`);
          same(two, js, `${shape}/${p}/${mode}/B=${B}: plan (2 threads) vs engine`);
        }
      }
    });
  }

  it.skipIf(!runNative)('4-bit LeNet-5 Gaussian (low-bit clamps) in both modes', async () => {
    const qm = await quantised('lenet5', 'gaussian', 4);
    const x = batch(INPUT.lenet5, 5);
    for (const mode of ['weights', 'local'] as const) {
      const opts = { samples: 2, seed: 5, mode };
      same(
        qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
        qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
        `4-bit ${mode}`,
      );
    }
  });

  it.skipIf(!runNative)('plan: false and QBNN_PLAN=0 run kernel by kernel', async () => {
    const qm = await quantised('mlp', 'gaussian');
    expect(qm.planned({ provider: NATIVE_PROVIDER, plan: false })).toBe(false);
    expect(qm.planned({ provider: JS_PROVIDER })).toBe(false);
    const saved = process.env.QBNN_PLAN;
    process.env.QBNN_PLAN = '0';
    try {
      expect(qm.planned({ provider: NATIVE_PROVIDER })).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.QBNN_PLAN;
      else process.env.QBNN_PLAN = saved;
    }
    expect(() => qm.forward(new Float32Array(784), { plan: 'yes' as never })).toThrow(
      /opts.plan must be a boolean/,
    );
  });
});
