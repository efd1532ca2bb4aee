import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PlanDescription } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import {
  fp32PeakGflops,
  getThreads,
  isa,
  nativeAvailable,
  nativeKernels,
  nativePhilox,
  nativeQnormalFromWords,
  setIsa,
  setThreads,
  vpdpbusdPeakGops,
} from '../src/index.js';
import { expectArgError, identityLayer } from './helpers.js';

/** A plan that quantises n values (scale 1) and returns them through an identity layer. */
function identityPlan(n: number): { desc: PlanDescription; layer: PlanDescription['layers'][number] } {
  const layer = identityLayer(n);
  const slot = (index: number) => ({ shared: false, index });
  const desc: PlanDescription = {
    inputSize: n,
    classes: n,
    taskSlots: [n, 4 * n],
    sharedSlots: [],
    steps: [
      { op: 'quantize', out: slot(0), scale: 1, zeroPoint: 0, qmax: 255 },
      { op: 'layer', layer: 0, in: slot(0), out: slot(1) },
    ],
    sharedSteps: [false, false],
    layers: [layer],
    output: slot(1),
  };
  return { desc, layer };
}

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
    expectArgError(() => nativePhilox([1, 2], 1.5, new Uint32Array(4)), /nativePhilox: position/);
    expectArgError(() => nativePhilox([-1, 2], 0, new Uint32Array(4)), /nativePhilox: key\[0\]/);
    expectArgError(
      () => nativePhilox([1, 2], 0, new Int32Array(4) as never),
      /nativePhilox: out must be a Uint32Array/,
    );
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

  test('plans: createPlan and run refuse bad descriptions and calls with a typed error', () => {
    // were the addon's RangeError / TypeError, 'Cannot read properties of undefined' for a
    // malformed description or missing args, and reduce: 'bogus' ran without reducing
    const { desc } = identityPlan(4);
    const create = nativeKernels.createPlan!;
    for (const bad of [{}, null, { ...desc, layers: [{}] }])
      expectArgError(() => create(bad as never), /createPlan: desc/);
    expectArgError(() => create({ ...desc, classes: 0 }), /createPlan: plan: classes must be an integer/);
    const plan = create(desc);
    const ok = {
      x: Float64Array.of(1, 2, 3, 4),
      batch: 1,
      samples: 1,
      keys: new Uint32Array(8),
      scalars: new Float64Array(2),
    };
    expect([...plan.run(ok)]).toEqual([1, 2, 3, 4]);
    const cases: [unknown, RegExp][] = [
      [undefined, /args must be an object/],
      [{ ...ok, batch: 0 }, /batch must be an integer in \[1, 16777216\], got 0/],
      [{ ...ok, batch: 2 }, /x must hold batch \* inputSize = 2 \* 4 values, got 4/],
      [{ ...ok, samples: 1.5 }, /samples must be an integer/],
      [{ ...ok, x: [1, 2, 3, 4] }, /x must be a Float64Array or a Float32Array/],
      [{ ...ok, keys: new Int32Array(8) }, /keys must be a Uint32Array of 8 words a layer/],
      [{ ...ok, scalars: new Float64Array(1) }, /scalars must be a Float64Array of 2 a layer and sample/],
      [{ ...ok, reduce: 'bogus' }, /reduce must be 'meanSoftmax' or absent/],
    ];
    for (const [args, what] of cases) expectArgError(() => plan.run(args as never), what);
    plan.dispose();
    expectArgError(() => plan.run(ok), /the plan was disposed/);
  });

  test('a plan call is bounded by the forward budget before anything is allocated', () => {
    // samples 2^24 of a batch of 1 ran for more than 60 s: samples x batch x the largest
    // activation (64 values here) may not pass MAX_FORWARD_ELEMENTS = 2^28, as a forward's
    const { desc } = identityPlan(64);
    const plan = nativeKernels.createPlan!(desc);
    const call = (samples: number, batch: number) => ({
      x: new Float64Array(batch * 64),
      batch,
      samples,
      keys: new Uint32Array(8),
      scalars: new Float64Array(2), // the wrong length for samples > 1: reached only within budget
    });
    expectArgError(
      () => plan.run(call(2 ** 24, 1)),
      /^plan\.run: samples 16777216 x batch 1 x the largest activation \(64 values an example\) = 1073741824 exceeds the budget of one call, 268435456 elements: use fewer samples or a smaller batch$/,
    );
    expectArgError(() => plan.run(call(2 ** 21, 2 ** 2)), /samples 2097152 x batch 4 .* exceeds the budget/);
    // at the budget: the call passes it (and stops at the scalars, so nothing runs)
    expectArgError(() => plan.run(call(2 ** 21, 2)), /scalars must be a Float64Array/);
    plan.dispose();
  });

  test('a plan whose packed weights were disposed refuses to run (it read freed memory: a segfault)', () => {
    const { desc, layer } = identityPlan(64);
    const plan = nativeKernels.createPlan!(desc);
    const args = {
      x: Float64Array.from({ length: 64 }, (_, i) => i),
      batch: 1,
      samples: 1,
      keys: new Uint32Array(8),
      scalars: new Float64Array(2),
    };
    expect([...plan.run(args)]).toEqual([...args.x]);
    if (layer.weights.kind !== 'sets') throw new Error('identityLayer has a set');
    layer.weights.sets[0].packed.dispose?.();
    expectArgError(
      () => plan.run(args),
      /plan: layers\[0\]\.weights\.sets\[0\]\.packed was disposed while the plan uses it/,
    );
    plan.dispose();
  });
});
