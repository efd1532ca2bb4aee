import {
  type JsPackedWeights,
  type KernelProvider,
  type PackedWeights,
  referenceKernels,
  registerKernelProvider,
  unregisterKernelProvider,
} from '@qbnn/core';
import { describe, expect, it } from 'vitest';
import type { QOp } from '../src/engine/ir.js';
import { QuantizedModel } from '../src/engine/quantized-model.js';
import type { IntegerWeights as LayerWeights } from '../src/forms/types.js';
import { simulate, simulateTrace } from '../src/testing.js';
import { act, gauss, lcg, randomFixedWeights, randomGaussianWeights } from './helpers.js';

type Kind = 'gaussian' | 'radial' | 'ensemble' | 'mcdropout' | 'fixed';

function weightsOf(kind: Kind, rnd: () => number, n: number, k: number, bits: number): LayerWeights {
  if (kind === 'gaussian' || kind === 'radial') return randomGaussianWeights(rnd, n, k, bits, kind);
  if (kind === 'ensemble')
    return { kind: 'ensemble', members: [0, 1, 2].map(() => randomFixedWeights(rnd, n, k, bits)) };
  return randomFixedWeights(rnd, n, k, bits);
}

/** conv(1->4, 3x3, pad 1) + ReLU -> maxpool 2 -> flatten -> linear(36 -> 10) + ReLU -> linear(10 -> 5) */
function smallModel(kind: Kind, wBits: number, aBits: number, seed = 1, relu = true): QuantizedModel {
  const rnd = lcg(seed);
  const a0 = act(0, 1, aBits);
  // without ReLU the hidden grids hold negative values too (zero point > 0)
  const a1 = act(relu ? 0 : -1, 1.5, aBits);
  const a2 = act(relu ? 0 : -1, 2, aBits);
  const dropout = kind === 'mcdropout';
  const ops: QOp[] = [
    { op: 'quantize', q: a0 },
    {
      op: 'layer',
      layer: {
        op: 'conv2d',
        path: 'conv',
        n: 4,
        k: 9,
        wShape: [4, 1, 3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
        input: a0,
        output: a1,
        relu,
        weights: weightsOf(kind, rnd, 4, 9, wBits),
      },
    },
    { op: 'maxpool2d', kernel: [2, 2], stride: [2, 2], padding: [0, 0], q: a1 },
    { op: 'flatten' },
    {
      op: 'layer',
      layer: {
        op: 'linear',
        path: 'fc1',
        n: 10,
        k: 36,
        input: a1,
        output: a2,
        relu,
        weights: weightsOf(kind, rnd, 10, 36, wBits),
        dropout: dropout ? { p: 0.25, masked: act(0, 2, aBits) } : undefined,
      },
    },
    {
      op: 'layer',
      layer: {
        op: 'linear',
        path: 'fc2',
        n: 5,
        k: 10,
        input: a2,
        output: null,
        relu: false,
        weights: weightsOf(kind, rnd, 5, 10, wBits),
        dropout: dropout ? { p: 0.25, masked: act(0, 2.7, aBits) } : undefined,
      },
    },
  ];
  return new QuantizedModel(ops, [1, 6, 6]);
}

function randomInput(seed: number, b: number): Float32Array {
  const rnd = lcg(seed);
  return Float32Array.from({ length: b * 36 }, () => Math.min(1, Math.abs(gauss(rnd)) * 0.5));
}

describe('integer engine vs its float64 twin', () => {
  for (const kind of ['gaussian', 'radial', 'ensemble', 'mcdropout', 'fixed'] as Kind[]) {
    for (const [wb, ab] of [
      [8, 8],
      [4, 7],
    ]) {
      for (const mode of kind === 'gaussian' || kind === 'mcdropout'
        ? (['weights', 'local'] as const)
        : (['weights'] as const))
        it(`${kind} W${wb}/A${ab}${mode === 'local' ? ' local' : ''}: every activation within one step, logits agree`, () => {
          const m = smallModel(kind, wb, ab);
          const x = randomInput(3, 4);
          const opts = { samples: 3, seed: 42, mode };
          const it8 = m.trace(x, opts);
          const tw = simulateTrace(m, x, opts);
          expect(it8.states.length).toBe(tw.states.length);
          let differing = 0;
          let total = 0;
          m.ops.forEach((op, i) => {
            const si = it8.states[i];
            const sf = tw.states[i];
            if (!si) return;
            expect(si.shared).toBe(sf.shared);
            expect(si.data.length).toBe(sf.data.length);
            const q =
              op.op === 'quantize'
                ? op.q
                : op.op === 'layer'
                  ? op.layer.output!
                  : op.op === 'flatten'
                    ? undefined
                    : op.q;
            const qq = q ?? (m.ops[i - 1] as { q: { scale: number; zeroPoint: number } }).q;
            for (let j = 0; j < si.data.length; j++) {
              const real = qq.scale * (si.data[j] - qq.zeroPoint);
              const d = Math.abs(real - sf.data[j]);
              expect(d).toBeLessThanOrEqual(qq.scale * 1.0000001);
              if (d > qq.scale * 1e-6) differing++;
              total++;
            }
          });
          expect(differing / total).toBeLessThan(0.01);
          const yi = it8.output.logits;
          const yf = tw.output.logits;
          expect(yi.length).toBe(3 * 4 * 5);
          let close = 0;
          for (let j = 0; j < yi.length; j++) if (Math.abs(yi[j] - yf[j]) < 1e-4) close++;
          expect(close / yi.length).toBeGreaterThan(0.95);
        });
    }
  }

  it('samples differ across MC samples and are reproducible by seed', () => {
    const m = smallModel('gaussian', 8, 8);
    const x = randomInput(5, 2);
    const a = m.forward(x, { samples: 2, seed: 7 }).logits;
    const b = m.forward(x, { samples: 2, seed: 7 }).logits;
    const c = m.forward(x, { samples: 2, seed: 8 }).logits;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(Array.from(a.slice(0, 10))).not.toEqual(Array.from(a.slice(10, 20)));
  });

  it('local reparameterisation without ReLU (signed outputs on the u8 grid): every activation within one step of the twin', () => {
    const m = smallModel('gaussian', 8, 7, 2, false);
    const x = randomInput(4, 3);
    const opts = { samples: 4, seed: 5, mode: 'local' } as const;
    const it8 = m.trace(x, opts);
    const tw = simulateTrace(m, x, opts);
    let differing = 0;
    let total = 0;
    m.ops.forEach((op, i) => {
      if (op.op !== 'layer' || !op.layer.output) return;
      const q = op.layer.output;
      const si = it8.states[i];
      const sf = tw.states[i];
      for (let j = 0; j < si.data.length; j++) {
        const d = Math.abs(q.scale * (si.data[j] - q.zeroPoint) - sf.data[j]);
        expect(d).toBeLessThanOrEqual(q.scale * 1.0000001);
        if (d > q.scale * 1e-6) differing++;
        total++;
      }
    });
    expect(total).toBeGreaterThan(0);
    expect(differing / total).toBeLessThan(0.01);
  });

  it('local reparameterisation: integer engine agrees with the twin', () => {
    const m = smallModel('gaussian', 8, 8);
    const x = randomInput(9, 3);
    const yi = m.forward(x, { samples: 2, seed: 3, mode: 'local' }).logits;
    const yf = simulate(m, x, { samples: 2, seed: 3, mode: 'local' }).logits;
    let close = 0;
    for (let j = 0; j < yi.length; j++) if (Math.abs(yi[j] - yf[j]) < 1e-3) close++;
    expect(close / yi.length).toBeGreaterThan(0.9);
    const yw = m.forward(x, { samples: 2, seed: 3, mode: 'weights' }).logits;
    expect(Array.from(yw)).not.toEqual(Array.from(yi));
  });
});

describe('Monte Carlo samples are independent of L', () => {
  for (const kind of ['gaussian', 'radial', 'mcdropout'] as Kind[]) {
    for (const mode of kind === 'radial' ? (['weights'] as const) : (['weights', 'local'] as const)) {
      it(`${kind} ${mode}: the first samples of L = 5 are the samples of L = 2 (stacking mixes nothing)`, () => {
        const m = smallModel(kind, 8, 8);
        const x = randomInput(5, 3);
        const two = m.forward(x, { samples: 2, seed: 11, mode }).logits;
        const five = m.forward(x, { samples: 5, seed: 11, mode }).logits;
        expect(Array.from(five.subarray(0, two.length))).toEqual(Array.from(two));
        // and the later samples are new draws
        expect(Array.from(five.subarray(two.length, 2 * two.length))).not.toEqual(Array.from(two));
      });
    }
  }
});

describe('kernel registry', () => {
  it('sampled weights not written into the destination pack are disposed after their GEMM; cached packs are kept', () => {
    let sampled = 0;
    let disposed = 0;
    let packs = 0;
    const tracking: KernelProvider = {
      ...referenceKernels,
      name: 'tracking',
      priority: -1,
      packWeights: (...a) => {
        packs++;
        return {
          ...referenceKernels.packWeights(...a),
          provider: 'js',
          dispose: () => expect.fail('cached pack disposed'),
        };
      },
      sampleGaussianPacked: (a) => {
        sampled++;
        let live = true;
        const p = referenceKernels.sampleGaussianPacked(a);
        return {
          ...p,
          provider: 'js',
          dispose: () => {
            expect(live).toBe(true);
            live = false;
            disposed++;
          },
        };
      },
    };
    registerKernelProvider(tracking);
    try {
      const m = smallModel('gaussian', 8, 8);
      const x = randomInput(1, 2);
      const y = m.forward(x, { samples: 4, seed: 4, provider: 'tracking' }).logits;
      // this provider ignores GaussianSampleArgs.out: the first draw of each of the 3 layers is
      // kept as the layer's destination, every later (new) pack is disposed after its GEMM
      expect(sampled).toBe(12);
      expect(disposed).toBe(9);
      expect(Array.from(y)).toEqual(Array.from(m.forward(x, { samples: 4, seed: 4, provider: 'js' }).logits));
      // local mode packs mu and sigma^2 once per layer, whatever L
      m.forward(x, { samples: 4, seed: 4, provider: 'tracking', mode: 'local' });
      m.forward(x, { samples: 7, seed: 5, provider: 'tracking', mode: 'local' });
      expect(packs).toBe(6);
    } finally {
      unregisterKernelProvider('tracking');
    }
  });

  it('a provider that samples into GaussianSampleArgs.out gets one destination per layer, reused for every draw', () => {
    const made = new Set<PackedWeights>();
    let into = 0;
    const reusing: KernelProvider = {
      ...referenceKernels,
      name: 'reusing',
      priority: -1,
      sampleGaussianPacked: (a) => {
        const fresh = referenceKernels.sampleGaussianPacked({ ...a, out: undefined }) as JsPackedWeights;
        if (a.out === undefined) {
          made.add(fresh);
          return { ...fresh, dispose: () => expect.fail('a destination pack was disposed') };
        }
        into++;
        const out = a.out as JsPackedWeights;
        out.data.set(fresh.data);
        out.rowSums.set(fresh.rowSums);
        out.zeroPoint.set(fresh.zeroPoint);
        return out;
      },
    };
    registerKernelProvider(reusing);
    try {
      const m = smallModel('gaussian', 8, 8);
      const x = randomInput(1, 2);
      for (const seed of [4, 5]) {
        const y = m.forward(x, { samples: 4, seed, provider: 'reusing' }).logits;
        expect(Array.from(y)).toEqual(Array.from(m.forward(x, { samples: 4, seed, provider: 'js' }).logits));
      }
      expect(made.size).toBe(3);
      expect(into).toBe(2 * 12 - 3);
    } finally {
      unregisterKernelProvider('reusing');
    }
  });

  it('every GEMM, conv and weight sample goes through the registered provider', () => {
    const calls: Record<string, number> = { qgemm: 0, qconv2d: 0, sampleGaussianPacked: 0, packWeights: 0 };
    const counting: KernelProvider = {
      ...referenceKernels,
      name: 'counting',
      priority: 100,
      packWeights: (...a) => {
        calls.packWeights++;
        return { ...referenceKernels.packWeights(...a), provider: 'counting' };
      },
      qgemm: (a) => {
        calls.qgemm++;
        return referenceKernels.qgemm({ ...a, w: { ...a.w, provider: 'js' } });
      },
      qconv2d: (a) => {
        calls.qconv2d++;
        return referenceKernels.qconv2d({ ...a, w: { ...(a.w as object), provider: 'js' } as never });
      },
      sampleGaussianPacked: (a) => {
        calls.sampleGaussianPacked++;
        return { ...referenceKernels.sampleGaussianPacked(a), provider: 'counting' };
      },
    };
    registerKernelProvider(counting);
    try {
      const m = smallModel('gaussian', 8, 8);
      const x = randomInput(1, 2);
      const viaRegistry = m.forward(x, { samples: 3, seed: 4 }).logits;
      // conv + 2 linear layers, each sampled per MC sample
      expect(calls.sampleGaussianPacked).toBe(9);
      expect(calls.qconv2d).toBe(3);
      expect(calls.qgemm).toBe(6);
      const viaJs = m.forward(x, { samples: 3, seed: 4, provider: 'js' }).logits;
      expect(Array.from(viaRegistry)).toEqual(Array.from(viaJs));
    } finally {
      unregisterKernelProvider('counting');
    }
  });
});
