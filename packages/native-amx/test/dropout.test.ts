// The native inverted dropout ('QbnnDropout' on tfjs-wasm) against @qbnn/core's JS reference
// dropoutApply: bit for bit, masks shared by rows, lengths ending inside a block and a thread
// task, 1 and 2 threads; the kernel registered for the wasm backend; bad arguments refused.
import { DROPOUT, type DropoutAttrs, dropoutApply, initBackend, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';
import { addon } from '../src/binding.js';
import {
  disableNativeFloatKernels,
  enableNativeFloatKernels,
  nativeAvailable,
  setThreads,
} from '../src/index.js';
import { sameBits } from './helpers.js';

const d = nativeAvailable && addon!.fp32.info().avx512 ? describe : describe.skip;

d('native dropout', () => {
  // read lazily: the body is collected even when the suite is skipped (no addon)
  const fp32 = addon?.fp32 as NonNullable<typeof addon>['fp32'];
  afterAll(() => {
    fp32.setPortable(false);
    setThreads(2);
    enableNativeFloatKernels();
  });

  for (const portable of [false, true])
    for (const threads of [1, 2])
      test(`equals dropoutApply bit for bit (${portable ? 'scalar' : 'AVX-512'}, ${threads} thread${threads > 1 ? 's' : ''})`, () => {
        fp32.setPortable(portable);
        setThreads(threads);
        // p on a 2^-24 step (a word's u equal to p is kept), just above one, 0, and in between
        for (const [rows, maskSize, p] of [
          [1, 1, 0.5],
          [1, 4097, 0.2],
          [3, 5, 0.3],
          [2, 33, 0.25],
          [2, 1000, 0.25 + 2 ** -30],
          [1, 999, 0],
          [64, 2450, 0.2],
          [1, 200_003, 0.7],
        ] as const) {
          const n = rows * maskSize;
          const x = new Rng(n).normal(n);
          const a: DropoutAttrs = { k0: 0x9e3779b9, k1: 12345, firstBlock: 2 ** 40 + 3, p, maskSize };
          const want = new Float32Array(n);
          dropoutApply(x, want, a);
          const got = new Float32Array(n);
          fp32.dropout(x, maskSize, Uint32Array.of(a.k0, a.k1), a.firstBlock, p, got);
          expect(sameBits(got, want), `rows=${rows} maskSize=${maskSize}`).toBe(true);
        }
      });

  test('the wasm kernel is native and gives what the JS kernel gives', async () => {
    fp32.setPortable(false);
    await initBackend({ backend: 'wasm' });
    const attrs = { k0: 5, k1: 6, firstBlock: 9, p: 0.25, maskSize: 300 };
    const run = () => {
      const x = tf.tensor(new Rng(1).normal(3000), [10, 300]);
      const y = tf.engine().runKernel(DROPOUT, { x }, attrs as never) as tf.Tensor;
      const data = y.dataSync() as Float32Array;
      tf.dispose([x, y]);
      return data;
    };
    expect(enableNativeFloatKernels().kernels).toContain(DROPOUT);
    const native = run();
    disableNativeFloatKernels();
    const js = run();
    enableNativeFloatKernels();
    expect(sameBits(native, js)).toBe(true);
  });

  test('refuses bad arguments', () => {
    const x = new Float32Array(6);
    const key = Uint32Array.of(1, 2);
    expect(() => fp32.dropout(x, 4, key, 0, 0.5, x)).toThrow(/maskSize/);
    expect(() => fp32.dropout(x, 3, key, 0, 1, x)).toThrow(/p must be in/);
    expect(() => fp32.dropout(x, 3, new Uint32Array(3), 0, 0.5, x)).toThrow(/key must be/);
    expect(() => fp32.dropout(x, 3, key, -1, 0.5, x)).toThrow(/firstBlock/);
    expect(() => fp32.dropout(x, 3, key, 0, 0.5, new Float32Array(5))).toThrow(/out holds 5 floats/);
  });
});
