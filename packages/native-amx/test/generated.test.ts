// The unrolled microkernels are generated: the committed file must be what the script writes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
// @ts-expect-error: a plain .mjs build script without type declarations
import { generate } from '../scripts/gen-conv-kernels.mjs';

test('native/src/conv_avx512_micro.inc is up to date with scripts/gen-conv-kernels.mjs', () => {
  const committed = readFileSync(
    join(import.meta.dirname, '..', 'native', 'src', 'conv_avx512_micro.inc'),
    'utf8',
  );
  expect(committed === generate(), 'stale: run node packages/native-amx/scripts/gen-conv-kernels.mjs').toBe(
    true,
  );
});
