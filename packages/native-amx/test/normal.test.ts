// The native normal and uniform fills against @qbnn/core's JS reference (normalsFromWords over philoxFill's
// words): bit for bit, on the AVX-512 body and the scalar path, on 1 and 2 threads, at lengths
// that end inside a block, inside a vector step and inside a thread task, and at stream
// positions whose 64-bit block counter carries.
import {
  initBackend,
  NORMAL_COEFFICIENTS,
  normalFill,
  normalsFromWords,
  normalTensor,
  philoxFill,
  Rng,
  setNormalFill,
  setUniformFill,
  uniformFill,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';
import { addon } from '../src/binding.js';
import { enableNativeFloatKernels, nativeAvailable, setThreads } from '../src/index.js';

const d = nativeAvailable ? describe : describe.skip;

function reference(k0: number, k1: number, first: number, n: number): Float32Array {
  const w = new Uint32Array(n + (n & 1));
  philoxFill(k0, k1, first, w);
  const out = new Float32Array(n);
  normalsFromWords(w, out);
  return out;
}

function expectSameBits(got: Float32Array, want: Float32Array): void {
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let bad = -1;
  for (let i = 0; i < a.length && bad < 0; i++) if (a[i] !== b[i]) bad = i;
  expect(bad, bad < 0 ? '' : `element ${bad}: ${got[bad]} vs ${want[bad]}`).toBe(-1);
}

d('native normal fill', () => {
  // read lazily: the body is collected even when the suite is skipped (no addon)
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => {
    fp32.setPortable(false);
    setThreads(2);
  });

  test('evaluates the same polynomial coefficients as the JS reference', () => {
    const c = fp32.normalCoefficients();
    expect(Array.from(c.log)).toEqual(Array.from(NORMAL_COEFFICIENTS.log));
    expect(Array.from(c.sin)).toEqual(Array.from(NORMAL_COEFFICIENTS.sin));
    expect(Array.from(c.cos)).toEqual(Array.from(NORMAL_COEFFICIENTS.cos));
  });

  const lengths = [1, 2, 3, 4, 5, 31, 32, 33, 63, 4095, 4096, 4097, 100_003];
  const starts: [number, number, number][] = [
    [0, 0, 0],
    [0x12345678, 0x9abcdef0, 7],
    [0xffffffff, 1, 0xfffffffd], // the low counter word carries inside the draw
    [3, 4, 2 ** 53 - 200_000],
  ];
  for (const portable of [false, true])
    for (const threads of [1, 2])
      test(`equals the JS reference bit for bit (${portable ? 'scalar' : 'AVX-512 where present'}, ${threads} thread${threads > 1 ? 's' : ''})`, () => {
        fp32.setPortable(portable);
        setThreads(threads);
        for (const [k0, k1, first] of starts)
          for (const n of lengths) {
            const got = new Float32Array(n);
            fp32.normal(k0, k1, first, got);
            expectSameBits(got, reference(k0, k1, first, n));
          }
      });

  test('Rng.normal gives the same values with and without the native fill', () => {
    fp32.setPortable(false);
    const prev = normalFill();
    expect(prev).not.toBeNull(); // importing the package registered it
    const r = new Rng(2024);
    const native = [r.normal(1000), r.normal(77_777)];
    setNormalFill(null);
    try {
      const s = new Rng(2024);
      expectSameBits(native[0], s.normal(1000));
      expectSameBits(native[1], s.normal(77_777));
    } finally {
      setNormalFill(prev);
    }
  });

  test('normalTensor on tfjs-wasm (drawn natively into the heap) holds the JS values', async () => {
    await initBackend({ backend: 'wasm' });
    const t = normalTensor(new Rng(5), [20, 1, 5, 5]);
    const prev = normalFill();
    setNormalFill(null);
    try {
      expectSameBits(t.dataSync() as Float32Array, new Rng(5).normal(500));
    } finally {
      setNormalFill(prev);
      t.dispose();
    }
  });

  test('refuses bad arguments with a typed error', () => {
    const out = new Float32Array(4);
    expect(() => fp32.normal(-1, 0, 0, out)).toThrow(RangeError);
    expect(() => fp32.normal(0, 2 ** 32, 0, out)).toThrow(/k1 must be an integer/);
    expect(() => fp32.normal(0, 0, 1.5, out)).toThrow(/firstBlock/);
    expect(() => fp32.normal(0, 0, 2 ** 53, out)).toThrow(/firstBlock/);
    expect(() => fp32.normal(0, 0, 0, new Float64Array(4) as never)).toThrow(TypeError);
  });
});

d('native uniform fill', () => {
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => setThreads(2));

  /** The uniforms of philoxFill's words, computed here: top 24 bits times 2^-24. */
  function uniforms(k0: number, k1: number, first: number, n: number): Float32Array {
    const w = new Uint32Array(n);
    philoxFill(k0, k1, first, w);
    return Float32Array.from(w, (v) => Math.floor(v / 256) / 16777216);
  }

  for (const threads of [1, 2])
    test(`equals the words' uniforms bit for bit (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      setThreads(threads);
      // lengths that end inside a block and inside / at the end of a 4096-block thread task
      for (const [k0, k1, first] of [
        [0, 0, 0],
        [0xffffffff, 1, 0xfffffffd],
        [3, 4, 2 ** 53 - 100_000],
      ])
        for (const n of [1, 3, 4, 5, 16383, 16384, 16385, 50_001]) {
          const got = new Float32Array(n);
          fp32.uniform(k0, k1, first, got);
          expectSameBits(got, uniforms(k0, k1, first, n));
        }
    });

  test('Rng.uniform gives the same values and stream position with and without the native fill', () => {
    const prev = uniformFill();
    expect(prev).not.toBeNull(); // importing the package registered it
    const r = new Rng(99);
    const native = [r.uniform(1000), r.uniform(77_777), r.uniform(5000)];
    setUniformFill(null);
    try {
      const s = new Rng(99);
      expectSameBits(native[0], s.uniform(1000));
      expectSameBits(native[1], s.uniform(77_777));
      expectSameBits(native[2], s.uniform(5000));
      expect(r.position).toBe(s.position);
    } finally {
      setUniformFill(prev);
    }
  });

  test('refuses bad arguments with a typed error', () => {
    const out = new Float32Array(4);
    expect(() => fp32.uniform(-1, 0, 0, out)).toThrow(/uniform: k0 must be an integer/);
    expect(() => fp32.uniform(0, 0, 2 ** 53, out)).toThrow(/uniform: firstBlock/);
    expect(() => fp32.uniform(0, 0, 0, new Float64Array(4) as never)).toThrow(TypeError);
  });
});

d('native inference Gaussian sample (normals inside the location-scale kernel)', () => {
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => {
    fp32.setPortable(false);
    setThreads(2);
  });

  /** mu and sigma with a spread of magnitudes (sigma from 1e-30 to 10, some zero). */
  function operands(n: number, seed: number): [Float32Array, Float32Array] {
    const r = new Rng(seed);
    const u = r.uniform(2 * n);
    const mu = Float32Array.from({ length: n }, (_, i) => (u[i] - 0.5) * 4);
    const sigma = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : 10 ** (u[n + i] * 31 - 30)));
    return [mu, sigma];
  }

  /** In float64, rounded to float32 after each operation (exact for float32 operands): mu + sigma eps. */
  function want(mu: Float32Array, sigma: Float32Array, eps: Float32Array): Float32Array {
    return Float32Array.from(mu, (m, i) => m + Math.fround(sigma[i] * eps[i]));
  }

  for (const portable of [false, true])
    for (const threads of [1, 2])
      test(`equals mu + sigma eps with the JS reference's normals bit for bit (${portable ? 'scalar' : 'AVX-512 where present'}, ${threads} thread${threads > 1 ? 's' : ''})`, () => {
        fp32.setPortable(portable);
        setThreads(threads);
        for (const [k0, k1, first] of [
          [0x12345678, 0x9abcdef0, 7],
          [0xffffffff, 1, 0xfffffffd],
        ])
          for (const n of [1, 3, 4, 33, 4095, 4097, 100_003]) {
            const [mu, sigma] = operands(n, n);
            const w = new Float32Array(n);
            fp32.normalLocScale(k0, k1, first, w, mu, sigma);
            expectSameBits(w, want(mu, sigma, reference(k0, k1, first, n)));
          }
      });

  // The tfjs kernels are registered only on a CPU with AVX-512 (the portable build has none).
  const registered = nativeAvailable && addon!.fp32.info().avx512;

  test.runIf(!registered)(
    'without the fp32 kernels the fused sample is not offered (callers compose it)',
    async () => {
      const { normalLocScale, normalLocScaleFused } = await import('@qbnn/core');
      await initBackend({ backend: 'wasm' });
      expect(enableNativeFloatKernels().active).toBe(false);
      expect(normalLocScaleFused()).toBe(false);
      const mu = tf.tensor1d([1, 2, 3]);
      const rng = new Rng(1);
      expect(normalLocScale(mu, mu, rng)).toBeNull();
      expect(rng.position).toBe(new Rng(1).position);
      mu.dispose();
    },
  );

  test.runIf(registered)(
    'on tfjs-wasm: the values and stream advance of mu + sigma * normalTensor, eps never a tensor',
    async () => {
      const { normalLocScale, normalLocScaleFused } = await import('@qbnn/core');
      await initBackend({ backend: 'wasm' });
      enableNativeFloatKernels();
      fp32.setPortable(false);
      expect(normalLocScaleFused()).toBe(true);
      for (const shape of [[7], [500, 2450], [20, 1, 5, 5]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const [muV, sigmaV] = operands(n, 3);
        const mu = tf.tensor(muV, shape);
        const sigma = tf.tensor(sigmaV, shape);
        const a = new Rng(11);
        const b = new Rng(11);
        a.skip(3);
        b.skip(3);
        const before = tf.memory().numTensors;
        const fused = normalLocScale(mu, sigma, a)!;
        expect(tf.memory().numTensors).toBe(before + 1);
        expect(fused.shape).toEqual(shape);
        const composed = tf.tidy(() => tf.add(mu, tf.mul(sigma, normalTensor(b, shape))));
        expectSameBits(fused.dataSync() as Float32Array, composed.dataSync() as Float32Array);
        expect(a.position).toBe(b.position);
        tf.dispose([mu, sigma, fused, composed]);
      }
      // bad inputs: typed errors naming the input or attribute
      const m = tf.tensor1d([1, 2, 3]);
      expect(() => normalLocScale(m, tf.tensor1d([1, 2]), new Rng(1))).toThrow(/sigma has 2 elements/);
      expect(() =>
        tf.engine().runKernel('QbnnNormalLocScale', { mu: m, sigma: m }, { k0: 0, k1: 0, firstBlock: -1 }),
      ).toThrow(/firstBlock must be a non-negative safe integer/);
      expect(() =>
        tf
          .engine()
          .runKernel('QbnnNormalLocScale', { mu: m, sigma: m }, { k0: 2 ** 32, k1: 0, firstBlock: 0 }),
      ).toThrow(/k0 must be an integer/);
    },
  );
});

d('the normals’ checked short evaluation (AVX-512)', () => {
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => fp32.setNormalFastMode(0));

  /**
   * Word pairs at the edges of the short route: u1 = 1 (r = 0), u1 just below 1 (r tiny), the
   * mantissa fold at sqrt(2), the smallest u1; angles at 0, at the complement's edge 2^21 (pi / 4)
   * and around it, and at the end of a quarter, in every quarter. The rest random.
   */
  function edgeWords(): Uint32Array {
    const top = (m: number) => (m - 1) * 256 + 0x5a; // a word whose top 24 bits + 1 = m
    const m0 = [
      2 ** 24,
      2 ** 24 - 1,
      2 ** 24 - 2,
      11863283,
      11863284,
      2 ** 23,
      2 ** 23 + 1,
      1,
      2,
      3,
      5_000_000,
    ];
    const t22 = [0, 1, 2, 2 ** 21 - 1, 2 ** 21, 2 ** 21 + 1, 2 ** 21 + 2, 2 ** 22 - 2, 2 ** 22 - 1];
    const pairs: number[] = [];
    for (const m of m0)
      for (const t of t22) for (let q = 0; q < 4; q++) pairs.push(top(m), (q * 2 ** 22 + t) * 256 + 0x3c);
    const random = new Rng(77).uint32(2 * 200_000);
    const words = new Uint32Array(Math.ceil((pairs.length + random.length) / 64) * 64);
    words.set(pairs);
    words.set(random, pairs.length);
    return words;
  }

  const mode = (m: 0 | 1 | 2) =>
    m === 0 ? 'checked short route' : m === 1 ? 'reference operations' : 'short route always redone';
  for (const m of [0, 1, 2] as const)
    test(`equals the JS reference bit for bit on edge and random words (${mode(m)})`, (ctx) => {
      const words = edgeWords();
      const got = new Float32Array(words.length);
      fp32.setNormalFastMode(m);
      if (!fp32.normalsFromWords(words, got)) ctx.skip();
      const want = new Float32Array(words.length);
      normalsFromWords(words, want);
      expectSameBits(got, want);
    });

  test('the Philox fill equals the reference over 4 M normals with the checked short route', () => {
    fp32.setNormalFastMode(0);
    fp32.setPortable(false);
    const n = 4_000_000;
    const got = new Float32Array(n);
    fp32.normal(9, 10, 12_345, got);
    expectSameBits(got, reference(9, 10, 12_345, n));
  });

  test('refuses bad words arguments', () => {
    expect(() => fp32.normalsFromWords(new Uint32Array(64), new Float32Array(63))).toThrow(/multiple of 64/);
    expect(() => fp32.setNormalFastMode(3 as never)).toThrow(/mode must be 0, 1 or 2/);
  });
});
