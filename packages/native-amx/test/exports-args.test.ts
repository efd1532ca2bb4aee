import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  fp32PeakGflops,
  getThreads,
  isa,
  nativeAvailable,
  nativeQnormalFromWords,
  setIsa,
  setThreads,
  vpdpbusdPeakGops,
} from '../src/index.js';
import { expectArgError } from './helpers.js';

// The package's own exports refuse bad arguments with a typed error naming them (the addon's
// checks under them are untyped RangeError / TypeError, and an environment variable's typo read
// 'threads must be an integer in [1, 256], got nan' without naming the variable).
describe.skipIf(!nativeAvailable)('exports: argument checks', () => {
  test('setThreads, setIsa, peaks, nativeQnormalFromWords', () => {
    const threads = getThreads();
    const path = isa();
    for (const n of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 257, 1e9, '2'])
      expectArgError(() => setThreads(n as never), /setThreads: n must be an integer in \[1, 256\]/);
    expect(getThreads()).toBe(threads);
    for (const n of ['bogus', undefined, 3, 'AMX'])
      expectArgError(() => setIsa(n as never), /setIsa: name: unknown isa .*must be one of/);
    expect(isa()).toBe(path);
    for (const n of [0, -5, Number.NaN, 2 ** 31, 0.5])
      expectArgError(() => vpdpbusdPeakGops(n), /vpdpbusdPeakGops: iters must be an integer/);
    expectArgError(
      () => vpdpbusdPeakGops(1000, 'xmm' as never),
      /vpdpbusdPeakGops: width must be 'zmm' or 'ymm'/,
    );
    for (const n of [0, -1, Number.NaN, 1e12])
      expectArgError(() => fp32PeakGflops(n), /fp32PeakGflops: iters must be an integer/);
    expectArgError(() => nativeQnormalFromWords(new Uint32Array(4), 'bogus' as never), /how must be/);
    expectArgError(() => nativeQnormalFromWords(new Uint32Array(4), 'toString' as never), /how must be/);
    expectArgError(() => nativeQnormalFromWords([1, 2] as never), /words must be a Uint32Array/);
    expect(nativeQnormalFromWords(new Uint32Array(3), 'binary')).toHaveLength(3);
  });

  // the import runs in a child process on the built package (skipped before `pnpm build`)
  const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  test.skipIf(!existsSync(entry))(
    'QBNN_NATIVE_THREADS / QBNN_NATIVE_ISA with bad values name the variable',
    () => {
      const run = (env: Record<string, string>) => {
        const script = `import(${JSON.stringify(entry)}).then(() => console.log('loaded'), (e) => console.log(e.name, e.code, e.message))`;
        return execFileSync(process.execPath, ['-e', script], {
          env: { ...process.env, QBNN_NATIVE_QUIET: '1', ...env },
          encoding: 'utf8',
        });
      };
      expect(run({ QBNN_NATIVE_THREADS: 'abc' })).toMatch(
        /QbnnError ERR_ARG QBNN_NATIVE_THREADS must be an integer in \[1, 256\], got 'abc'/,
      );
      expect(run({ QBNN_NATIVE_THREADS: '0' })).toMatch(/QBNN_NATIVE_THREADS must be/);
      expect(run({ QBNN_NATIVE_THREADS: '1e3' })).toMatch(/QBNN_NATIVE_THREADS must be/);
      expect(run({ QBNN_NATIVE_ISA: 'bogus' })).toMatch(
        /QbnnError ERR_ARG QBNN_NATIVE_ISA: unknown isa 'bogus'/,
      );
      expect(run({ QBNN_NATIVE_THREADS: '1', QBNN_NATIVE_ISA: 'scalar' })).toMatch(/loaded/);
    },
  );
});
