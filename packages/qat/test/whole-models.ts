/**
 * Whole quantised models for the native tests: LeNet-5 (28x28, the study's layout), an MLP, a
 * narrow ResNet-18 (blocks [2, 2, 2, 2], widths x 1/6, 16x16 input, non-trivial BatchNorms
 * folded) and layers at K = MAX_GEMM_K, under each built-in posterior, calibrated on 4 inputs.
 */
import { MAX_GEMM_K } from '@qbnn/core';
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
import type { QuantizedModel } from '../src/engine/quantized-model.js';
import { calibrate, convert, prepare } from '../src/flows/index.js';
import { defaultQConfig } from '../src/qconfig.js';
import { mnistDigits } from './fidelity-helpers.js';
import { lcg } from './helpers.js';

export type Post = 'none' | 'gaussian' | 'radial' | 'mcdropout' | 'sghmc';
export type Shape = 'lenet5' | 'mlp' | 'resnet18' | 'conv-kmax' | 'linear-kmax';

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
export const INPUT: Record<Shape, [number, number, number]> = {
  lenet5: [1, 28, 28],
  mlp: [1, 28, 28],
  resnet18: [1, 16, 16],
  // K = 1321 * 5 * 5 = MAX_GEMM_K (33025), the largest reduction a GEMM accepts
  'conv-kmax': [1321, 5, 5],
  'linear-kmax': [1, 5, 6605],
};

export function build(shape: Shape, p: Post): Module {
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
export function images(shape: [number, number, number], n: number, from: number): Float32Array {
  if (shape.join() === '1,28,28') return mnistDigits(Math.ceil(n / 10), from).x.subarray(0, n * 784);
  const r = lcg(from + 1);
  return Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => r());
}

/** SGHMC: two collected members, the second perturbed so they differ. */
export function collectMembers(net: Module): void {
  for (const m of net.modules()) {
    if (!(m instanceof BayesConv2d || m instanceof BayesLinear)) continue;
    const sp = m.posterior as SghmcPosterior;
    sp.collect();
    sp.weight.assign(tf.mul(sp.weight, 1.1));
    sp.collect();
  }
}

export async function quantised(shape: Shape, p: Post, bits = 8): Promise<QuantizedModel> {
  const net = build(shape, p);
  if (p === 'sghmc') collectMembers(net);
  prepare(net, defaultQConfig({ weightBits: bits, activationBits: bits }));
  const s = INPUT[shape];
  const x = tf.tensor(images(s, 4, 0), [4, ...s]);
  await calibrate(net, [x], { passes: 1 });
  x.dispose();
  return convert(net, { inputShape: s });
}
