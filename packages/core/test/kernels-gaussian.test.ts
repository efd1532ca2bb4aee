import { describe, expect, test } from 'vitest';
import {
  packWeights,
  qgemm,
  qnormal,
  referenceKernels,
  sampleGaussianPacked,
  sampleGaussianWeights,
} from '../src/kernels/reference.js';
import type { GaussianSampleArgs } from '../src/kernels/types.js';
import { gaussianSampleMultipliers } from '../src/quant/multipliers.js';
import { packInts } from '../src/quant/packing.js';
import { Rng } from '../src/rng/rng.js';
import { codeOf, randInts, randS8, randU8, refRound } from './helpers.js';

function makeArgs(rng: Rng, n: number, k: number, bits: number): GaussianSampleArgs {
  const qmax = 2 ** (bits - 1) - 1;
  const { m1, m2, m3 } = gaussianSampleMultipliers({
    muScale: Array.from(rng.uniform(n), (u) => 0.01 + 0.02 * u),
    sigmaScale: 0.001,
    noiseScale: Array.from(rng.uniform(n), (u) => 0.005 + 0.01 * u),
    weightScale: 0.03,
    n,
  });
  return {
    mu: randS8(rng, n * k),
    muZeroPoint: Int32Array.from(randInts(rng, n, -5, 5)),
    sigma: randU8(rng, n * k),
    sigmaZeroPoint: Int32Array.from(randInts(rng, n, 0, 3)),
    noiseZeroPoint: Int32Array.from(randInts(rng, n, -2, 2)),
    weightZeroPoint: Int32Array.from(randInts(rng, n, -1, Math.min(1, qmax))),
    m1,
    m2,
    m3,
    n,
    k,
    bits,
    key: [123, 456],
    position: 10,
  };
}

describe('reference fused Gaussian sampler', () => {
  test('equals the contract formula evaluated independently from the qnormal stream', () => {
    const rng = new Rng(3);
    for (const [n, k, bits] of [
      [1, 1, 8],
      [3, 7, 8],
      [5, 33, 4],
      [2, 10, 2],
    ]) {
      const args = makeArgs(rng, n, k, bits);
      const stream = qnormal({ key: args.key, position: args.position, out: new Int8Array(n * k) });
      const qmin = -(2 ** (bits - 1));
      const qmax = 2 ** (bits - 1) - 1;
      const got = sampleGaussianWeights(args);
      for (let r = 0; r < n; r++)
        for (let i = 0; i < k; i++) {
          const idx = r * k + i;
          const nq = Math.min(
            qmax,
            Math.max(
              qmin,
              refRound(stream[idx] * (args.sigma[idx] - args.sigmaZeroPoint[r]) * args.m1[r]) +
                args.noiseZeroPoint[r],
            ),
          );
          const wq =
            refRound(
              (args.mu[idx] - args.muZeroPoint[r]) * args.m2[r] + (nq - args.noiseZeroPoint[r]) * args.m3[r],
            ) + args.weightZeroPoint[r];
          expect(got[idx]).toBe(Math.min(qmax, Math.max(qmin, wq)));
        }
      const packed = sampleGaussianPacked(args);
      expect(packed.provider).toBe('js');
      expect([...packed.data]).toEqual([...got]);
      expect([...packed.rowSums]).toEqual([...packWeights(got, n, k, args.weightZeroPoint).rowSums]);
      expect(referenceKernels.sampleGaussianPacked(args).rowSums).toEqual(packed.rowSums);
    }
  });

  test('sampled weights have the mean and spread of N(mu, sigma^2) after dequantisation', () => {
    // One channel, mu = 0.2, sigma = 0.05, fine output scales: check moments over 40000 draws.
    const k = 40_000;
    const muScale = 0.002;
    const sigScale = 0.001;
    const noiseScale = 0.002;
    const wScale = 0.004;
    const { m1, m2, m3 } = gaussianSampleMultipliers({
      muScale,
      sigmaScale: sigScale,
      noiseScale,
      weightScale: wScale,
      n: 1,
    });
    const w = sampleGaussianWeights({
      mu: new Int8Array(k).fill(100),
      muZeroPoint: Int32Array.of(0),
      sigma: new Uint8Array(k).fill(50),
      sigmaZeroPoint: Int32Array.of(0),
      noiseZeroPoint: Int32Array.of(0),
      weightZeroPoint: Int32Array.of(0),
      m1,
      m2,
      m3,
      n: 1,
      k,
      bits: 8,
      key: [9, 9],
      position: 0,
    });
    let s = 0;
    let s2 = 0;
    for (const q of w) {
      s += q * wScale;
      s2 += (q * wScale) ** 2;
    }
    const mean = s / k;
    const sd = Math.sqrt(s2 / k - mean * mean);
    expect(Math.abs(mean - 0.2)).toBeLessThan(0.002);
    // sigma = 0.05; quantisation of eps (3/127), n and w adds < 10% variance at these scales.
    expect(sd).toBeGreaterThan(0.048);
    expect(sd).toBeLessThan(0.054);
  });

  test('packed samples feed qgemm like packWeights of the same bytes', () => {
    const rng = new Rng(5);
    const args = makeArgs(rng, 4, 9, 8);
    const a = randU8(rng, 2 * 9);
    const run = (w: ReturnType<typeof packWeights>) =>
      qgemm({ a, m: 2, aScale: 0.1, aZeroPoint: 7, w, wScale: 0.03, output: { kind: 'i32' } });
    const p = sampleGaussianPacked(args);
    expect([...run(p)]).toEqual([
      ...run(packWeights(sampleGaussianWeights(args), 4, 9, args.weightZeroPoint)),
    ]);
  });

  test('on packed mu and sigma: exactly the sampler of the unpacked values, every bit width, odd shapes', () => {
    const rng = new Rng(8);
    for (const [n, k] of [
      [1, 1],
      [3, 7],
      [5, 13],
      [2, 33],
    ]) {
      for (let muBits = 2; muBits <= 8; muBits++) {
        for (let sigmaBits = 2; sigmaBits <= 8; sigmaBits++) {
          const args = makeArgs(rng, n, k, (muBits % 2) + 3);
          const lo = -(2 ** (muBits - 1));
          const mu = Int8Array.from(randInts(rng, n * k, lo, -lo - 1));
          const sigma = Uint8Array.from(randInts(rng, n * k, 0, 2 ** sigmaBits - 1));
          const want = sampleGaussianWeights({ ...args, mu, sigma });
          const got = sampleGaussianWeights({
            ...args,
            mu: { bytes: packInts(mu, muBits, true), bits: muBits },
            sigma: { bytes: packInts(sigma, sigmaBits, false), bits: sigmaBits },
          });
          expect([...got]).toEqual([...want]);
        }
      }
    }
  });

  test('on packed mu and sigma: bad bytes and bits are typed errors', () => {
    const args = makeArgs(new Rng(2), 3, 5, 3);
    const mu = packInts(new Int8Array(15).fill(-4), 3, true); // 45 bits: 6 bytes, 3 padding bits
    const sigma = packInts(new Uint8Array(15).fill(7), 3, false);
    const packed = { ...args, mu: { bytes: mu, bits: 3 }, sigma: { bytes: sigma, bits: 3 } };
    const run = (over: Partial<GaussianSampleArgs>) =>
      codeOf(() => sampleGaussianWeights({ ...packed, ...over }));
    expect(run({})).toBeUndefined();
    expect(run({ mu: { bytes: mu.subarray(0, 5), bits: 3 } })).toBe('ERR_SHAPE');
    expect(run({ sigma: { bytes: sigma, bits: 4 } })).toBe('ERR_SHAPE');
    expect(run({ mu: { bytes: mu, bits: 1 } })).toBe('ERR_ARG');
    expect(run({ sigma: { bytes: sigma, bits: 9 } })).toBe('ERR_ARG');
    expect(run({ mu: { bytes: new Int8Array(6) as never, bits: 3 } })).toBe('ERR_ARG');
    const dirty = Uint8Array.from(mu);
    dirty[5] |= 0x80;
    expect(run({ mu: { bytes: dirty, bits: 3 } })).toBe('ERR_ARG');
    // packWeights: the same checks, and exactly the pack of the unpacked weights
    const w = Int8Array.from({ length: 15 }, (_, i) => (i % 8) - 4);
    const pw = packWeights({ bytes: packInts(w, 3, true), bits: 3 }, 3, 5, 1);
    expect([...(pw as { data: Int8Array }).data]).toEqual([...w]);
    expect([...pw.rowSums]).toEqual([...packWeights(w, 3, 5, 1).rowSums]);
    expect(codeOf(() => packWeights({ bytes: packInts(w, 3, true).subarray(1), bits: 3 }, 3, 5, 1))).toBe(
      'ERR_SHAPE',
    );
    expect(codeOf(() => packWeights({ bytes: packInts(w, 3, true), bits: 0 }, 3, 5, 1))).toBe('ERR_ARG');
  });

  test('validates lengths, zero points and multipliers', () => {
    const args = makeArgs(new Rng(1), 2, 3, 4);
    expect(codeOf(() => sampleGaussianWeights({ ...args, mu: new Int8Array(5) }))).toBe('ERR_SHAPE');
    expect(codeOf(() => sampleGaussianWeights({ ...args, weightZeroPoint: Int32Array.of(0, 8) }))).toBe(
      'ERR_ARG',
    );
    expect(codeOf(() => sampleGaussianWeights({ ...args, noiseZeroPoint: Int32Array.of(0) }))).toBe(
      'ERR_SHAPE',
    );
    expect(codeOf(() => sampleGaussianWeights({ ...args, m1: Float64Array.of(1, Number.NaN) }))).toBe(
      'ERR_NAN',
    );
    expect(codeOf(() => sampleGaussianWeights({ ...args, bits: 9 }))).toBe('ERR_ARG');
    expect(codeOf(() => sampleGaussianWeights({ ...args, key: [1, -1] }))).toBe('ERR_ARG');
    expect(codeOf(() => qnormal({ key: [1, 2], position: -1, out: new Int8Array(3) }))).toBe('ERR_ARG');
  });
});
