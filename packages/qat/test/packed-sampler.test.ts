/**
 * Packed weights in use (issue 19, item 4): a quantised Gaussian or Radial model of fewer than 8
 * weight bits keeps mu and sigma packed while it runs: the provider's fused sampler is handed the
 * packed bytes (core's PackedInts) and decodes them itself. The logits must equal, byte for byte,
 * those of the same model run through a provider that gets mu and sigma one value a byte (a
 * wrapper of the same kernels unpacking with core's unpackInts), and those of the execution plan
 * (which is handed the packed bytes too), on LeNet-5, the MLP and a narrow ResNet-18 at W2..W8.
 */
import {
  type GaussianSampleArgs,
  getKernelProvider,
  type KernelProvider,
  type PackedInts,
  registerKernelProvider,
  unpackInts,
  unregisterKernelProvider,
} from '@qbnn/core';
import { NATIVE_PROVIDER, nativeAvailable } from '@qbnn/native-amx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCpu } from './setup-tf.js';
import { INPUT, images, quantised } from './whole-models.js';

beforeAll(useCpu);

/** How a sampler's mu arrived: one value a byte, or packed at some bits. */
const muKind = (mu: GaussianSampleArgs['mu']) =>
  ArrayBuffer.isView(mu) ? 'bytes' : `packed${(mu as PackedInts).bits}`;

/** The native kernels, but the sampler gets mu and sigma unpacked; records what it was given. */
function unpacking(base: KernelProvider, seen: string[]): KernelProvider {
  const plain = (t: Int8Array | Uint8Array | PackedInts, count: number, signed: boolean) =>
    t instanceof Int8Array || t instanceof Uint8Array ? t : unpackInts(t.bytes, count, t.bits, signed);
  return {
    ...base,
    name: 'unpacking-test',
    priority: -1,
    sampleGaussianPacked(args: GaussianSampleArgs) {
      const count = args.n * args.k;
      seen.push(muKind(args.mu));
      return base.sampleGaussianPacked({
        ...args,
        mu: plain(args.mu, count, true) as Int8Array,
        sigma: plain(args.sigma, count, false) as Uint8Array,
        out: undefined,
      });
    },
    createPlan: undefined,
  };
}

/** Records the kind of mu the native sampler receives. */
function spying(base: KernelProvider, seen: string[]): KernelProvider {
  return {
    ...base,
    name: 'spying-test',
    priority: -1,
    sampleGaussianPacked(args: GaussianSampleArgs) {
      seen.push(muKind(args.mu));
      return base.sampleGaussianPacked(args);
    },
    createPlan: undefined,
  };
}

/** The native provider, recording the kind of mu its execution plans are given. */
function planSpying(base: KernelProvider, seen: string[]): KernelProvider {
  return {
    ...base,
    name: 'plan-spying-test',
    priority: -1,
    createPlan(desc) {
      for (const l of desc.layers) if (l.weights.kind === 'gaussian') seen.push(muKind(l.weights.args.mu));
      return (base.createPlan as NonNullable<KernelProvider['createPlan']>)(desc);
    },
  };
}

const plainSeen: string[] = [];
const spySeen: string[] = [];
const planSeen: string[] = [];
beforeAll(() => {
  if (!nativeAvailable) return;
  const nat = getKernelProvider(NATIVE_PROVIDER);
  registerKernelProvider(unpacking(nat, plainSeen));
  registerKernelProvider(spying(nat, spySeen));
  registerKernelProvider(planSpying(nat, planSeen));
});
afterAll(() => {
  if (!nativeAvailable) return;
  unregisterKernelProvider('unpacking-test');
  unregisterKernelProvider('spying-test');
  unregisterKernelProvider('plan-spying-test');
});

const cases = [
  ['lenet5', 'gaussian', [2, 3, 4, 5, 6, 7, 8]],
  ['lenet5', 'radial', [3, 4]],
  ['mlp', 'gaussian', [2, 4, 7]],
  ['resnet18', 'gaussian', [4]],
] as const;

describe.skipIf(!nativeAvailable)(
  'packed mu and sigma in use: sampled by the native kernels as packed',
  () => {
    for (const [shape, post, widths] of cases) {
      it(`${shape} / ${post} W${widths.join(',')}: packed to the sampler and the plan, logits byte-identical to unpacked`, async () => {
        for (const bits of widths) {
          const qm = await quantised(shape, post, bits);
          const s = INPUT[shape];
          const x = new Float32Array(3 * s[0] * s[1] * s[2]);
          x.fill(1, 0, s[0] * s[1] * s[2]); // all 1.0, then real images
          x.set(images(s, 2, 500), s[0] * s[1] * s[2]);
          const opts = { samples: 3, seed: 4242, plan: false };
          spySeen.length = 0;
          plainSeen.length = 0;
          const packed = qm.forward(x, { ...opts, provider: 'spying-test' }).logits;
          const plain = qm.forward(x, { ...opts, provider: 'unpacking-test' }).logits;
          planSeen.length = 0;
          const planned = qm.forward(x, { ...opts, provider: 'plan-spying-test', plan: true }).logits;
          expect(new Set(spySeen), `W${bits}`).toEqual(new Set([bits < 8 ? `packed${bits}` : 'bytes']));
          expect(new Set(planSeen), `W${bits} plan`).toEqual(new Set([bits < 8 ? `packed${bits}` : 'bytes']));
          expect(plainSeen.length).toBe(spySeen.length);
          expect(Array.from(packed), `W${bits} packed vs unpacked`).toEqual(Array.from(plain));
          expect(Array.from(packed), `W${bits} packed vs plan`).toEqual(Array.from(planned));
          // nothing of the run unpacked the model's stored copy: it is still the packed one
          const sampled = qm.layers.filter((l) => l.weights.kind === post);
          expect(sampled.length).toBeGreaterThan(0);
          for (const l of sampled) {
            const first = qm.storedWeights(l);
            expect(qm.storedWeights(l) === first).toBe(bits < 8);
          }
        }
      }, 120_000);
    }
  },
);
