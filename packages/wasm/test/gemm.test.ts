import { referenceKernels as js } from '@qbnn/core';
import { describe, test } from 'vitest';
import { checkGemm, extremeGemms, gemmCase, randomGemms, sameBytes } from '../../core/test/kernel-cases.js';
import { unpackWeights, wasmAvailable, wasmKernels as wk } from '../src/index.js';
import { onVariant, variants } from './helpers.js';

describe.skipIf(!wasmAvailable())('qgemm is bit-identical to the JS reference', () => {
  for (const v of variants()) {
    test(`random shapes, all output kinds (${v})`, () =>
      onVariant(v, () => randomGemms(wk, js, v, 600, 12e6)));

    test(`worst-case values 255 x -128 / 127, K up to MAX_GEMM_K (${v})`, () =>
      onVariant(v, () => extremeGemms(wk, js, v)));

    test(`activations larger than one copy step are processed in row chunks (${v})`, () =>
      onVariant(v, () => {
        // 2100 x 8200 bytes of activations: more than the 16 MiB moved into wasm memory a step.
        const c = gemmCase(9, 2100, 3, 8200);
        c.output = { kind: 'u8', scale: 900, zeroPoint: 100 };
        checkGemm(wk, js, c, v);
      }));
  }

  test('packWeights round-trips through the packed layout', () => {
    for (const [n, k] of [
      [1, 1],
      [37, 71],
      [8, 4],
      [9, 5],
    ]) {
      const c = gemmCase(5, 1, n, k);
      sameBytes(unpackWeights(wk.packWeights(c.w, n, k, c.zw)), c.w, `unpack ${n}x${k}`);
    }
  });

  test('m = 0 returns an empty result', () => {
    const p = wk.packWeights(new Int8Array(6), 2, 3, 0);
    const args = { a: new Uint8Array(0), m: 0, aScale: 1, aZeroPoint: 0, w: p, wScale: 1 };
    sameBytes(wk.qgemm({ ...args, output: { kind: 'i32' } }), new Int32Array(0), 'empty');
  });
});
