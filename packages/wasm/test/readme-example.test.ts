import { readFileSync } from 'node:fs';
import { getKernelProvider } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { wasmAvailable } from '../src/index.js';

// Keeps the numbers quoted in README.md honest: the GEMM there, against a float64 loop.
describe.skipIf(!wasmAvailable())('README example', () => {
  test('the documented i32 GEMM', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const w = Int8Array.of(64, -32, 127, -127, 95, 13);
    const a = Uint8Array.of(51, 230, 102);
    const k = getKernelProvider('wasm');
    const y = k.qgemm({
      a,
      m: 1,
      aScale: 1 / 255,
      aZeroPoint: 0,
      w: k.packWeights(w, 2, 3, 0),
      wScale: 1 / 127,
      output: { kind: 'i32' },
    });
    const want = [0, 1].map((n) => a.reduce((s, x, i) => s + x * w[n * 3 + i], 0));
    expect([...y]).toEqual(want);
    expect(readme).toContain(`Int32Array [${want.join(', ')}]`);
  });
});
