// The unrolled microkernels are generated: each committed file must be what its script writes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
// @ts-expect-error: a plain .mjs build script without type declarations
import { generate as generateConv } from '../scripts/gen-conv-kernels.mjs';
// @ts-expect-error: a plain .mjs build script without type declarations
import { generate as generateGemm } from '../scripts/gen-gemm-kernels.mjs';

for (const [file, script, generate] of [
  ['conv_avx512_micro.inc', 'gen-conv-kernels.mjs', generateConv],
  ['gemm_avx512_micro.inc', 'gen-gemm-kernels.mjs', generateGemm],
] as [string, string, () => string][]) {
  test(`native/src/${file} is up to date with scripts/${script}`, () => {
    const committed = readFileSync(join(import.meta.dirname, '..', 'native', 'src', file), 'utf8');
    expect(committed === generate(), `stale: run node packages/native-amx/scripts/${script}`).toBe(true);
  });
}
