// Runs every suite in --quick mode through the built CLI (CI builds before testing) and checks
// the JSON document's shape. No timing assertion: how fast is the benchmark's business, not the
// test's.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { estimateMs, planRuns } from '../src/suites/bnn.js';
import { SUITES } from '../src/suites/index.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

function checkDocument(doc: Record<string, unknown>, suite: string): void {
  expect(doc.suite).toBe(suite);
  const m = doc.machine as Record<string, unknown>;
  expect(typeof m.cpu).toBe('string');
  expect(Number.isInteger(m.cores) && (m.cores as number) > 0).toBe(true);
  expect(typeof m.isa).toBe('string');
  expect(m.node).toMatch(/^v\d+/);
  expect(Array.isArray(doc.results)).toBe(true);
  for (const r of doc.results as Record<string, unknown>[]) {
    expect(typeof r.case).toBe('string');
    expect(typeof r.impl).toBe('string');
    expect(typeof r.params).toBe('object');
    for (const k of ['median_ms', 'min_ms', 'max_ms']) {
      expect(Number.isFinite(r[k]) && (r[k] as number) >= 0).toBe(true);
    }
    expect(r.min_ms as number).toBeLessThanOrEqual(r.median_ms as number);
    expect(r.median_ms as number).toBeLessThanOrEqual(r.max_ms as number);
    expect(Number.isInteger(r.runs) && (r.runs as number) >= 1).toBe(true);
    expect(r.throughput === null || Number.isFinite(r.throughput)).toBe(true);
    expect(typeof r.unit).toBe('string');
  }
  expect(typeof doc.ratios).toBe('object');
  for (const v of Object.values(doc.ratios as Record<string, unknown>)) expect(Number.isFinite(v)).toBe(true);
  // a ratio measured in rounds quotes the median of its spread
  const ratios = doc.ratios as Record<string, number>;
  for (const [name, s] of Object.entries((doc.spreads ?? {}) as Record<string, Record<string, number>>)) {
    expect(ratios[name]).toBe(s.median);
    expect(s.min).toBeLessThanOrEqual(s.median);
    expect(s.median).toBeLessThanOrEqual(s.max);
    expect(Number.isInteger(s.n) && s.n >= 1).toBe(true);
  }
}

describe('bench suites in --quick mode', () => {
  it('lists the suites of issues 9, 14 and 16', () => {
    expect(SUITES.map((s) => s.name)).toEqual([
      'gemm',
      'conv',
      'rng',
      'kl',
      'bnn',
      'peers',
      'train',
      'size',
      'wasm',
    ]);
  });

  it('plans fewer runs for slow bnn cells and estimates from measured ones', () => {
    expect(planRuns(10, 7)).toBe(7);
    expect(planRuns(2000, 7)).toBe(3);
    expect(planRuns(60_000, 7)).toBe(1);
    expect(estimateMs([], 32, 20)).toBe(0);
    // t = L (s + p B) with s = 10, p = 1
    const cells = [
      { batch: 1, samples: 1, ms: 11 },
      { batch: 1, samples: 20, ms: 220 },
      { batch: 32, samples: 1, ms: 42 },
    ];
    expect(estimateMs(cells, 256, 20)).toBeCloseTo(20 * (10 + 256), 6);
    expect(estimateMs(cells.slice(0, 2), 4, 1)).toBeCloseTo(11 * 2, 6);
  });

  it('refuses a --rounds that is not a positive integer', async (ctx) => {
    if (!existsSync(main)) ctx.skip(`${main} is not built (pnpm build runs first in CI)`);
    for (const bad of ['0', '2.5', 'x']) {
      const r = await promisify(execFile)(process.execPath, [main, 'peers', '--rounds', bad]).then(
        () => null,
        (err: { code: number; stderr: string }) => err,
      );
      expect(r?.code).toBe(2);
      expect(r?.stderr).toContain(`--rounds needs an integer from 1 to 100, got '${bad}'`);
    }
  });

  it('decides the float MC target (issue 14) by paired rounds', { timeout: 180_000 }, async (ctx) => {
    if (!existsSync(main)) ctx.skip(`${main} is not built (pnpm build runs first in CI)`);
    const filter = 'model=lenet5,impl=fp32-native|torch-fp32,batch=32,L=20';
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [main, 'peers', '--quick', '--json', '--rounds', '2', '--filter', filter],
      { maxBuffer: 64 << 20, timeout: 170_000 },
    );
    const doc = JSON.parse(stdout) as Record<string, unknown>;
    checkDocument(doc, 'peers');
    const notes = doc.notes as string[];
    if (notes.some((n) => n.startsWith('peers skipped') || n.startsWith('float MC paired rounds skipped')))
      ctx.skip('PyTorch or the native fp32 kernels are not available here');
    const spreads = (doc.spreads ?? {}) as Record<string, { n: number }>;
    expect(spreads['target_qbnn_fp32native_speedup_over_torch-fp32_b32_L20']?.n).toBe(2);
    const rows = (doc.results as { impl: string; params: { rounds?: number } }[]).filter(
      (r) => r.params.rounds === 2,
    );
    expect(rows.map((r) => r.impl).sort()).toEqual(['fp32-native', 'torch-fp32']);
  });

  it('runs as many train rounds as --rounds asks', { timeout: 180_000 }, async (ctx) => {
    if (!existsSync(main)) ctx.skip(`${main} is not built (pnpm build runs first in CI)`);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [main, 'train', '--quick', '--json', '--rounds', '3', '--filter', 'model=mlp,batch=64,threads=1'],
      { maxBuffer: 64 << 20, timeout: 170_000 },
    );
    const doc = JSON.parse(stdout) as Record<string, unknown>;
    checkDocument(doc, 'train');
    // every row of a cell timed in rounds lists each round's median (the plain tfjs-wasm row: one)
    const rows = (doc.results as { impl: string; extra: { round_medians_ms: string } }[]).filter(
      (r) => !r.impl.includes('plain'),
    );
    const notes = doc.notes as string[];
    if (
      notes.some((n) => n.startsWith('PyTorch peer skipped')) &&
      notes.some((n) => n.startsWith('native fp32 kernels unavailable'))
    )
      ctx.skip('neither PyTorch nor the native fp32 kernels are available here');
    // the filter picks from the full grid (the quick grid has no MLP)
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.extra.round_medians_ms.split(' '), r.impl).toHaveLength(3);
    for (const s of Object.values((doc.spreads ?? {}) as Record<string, { n: number }>)) expect(s.n).toBe(3);
  });

  it('times only the filtered rng cases', { timeout: 180_000 }, async (ctx) => {
    if (!existsSync(main)) ctx.skip(`${main} is not built (pnpm build runs first in CI)`);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [main, 'rng', '--quick', '--json', '--filter', 'impl=js,kernel=sampler,scales=observed|ptq-model'],
      { maxBuffer: 64 << 20, timeout: 170_000 },
    );
    const doc = JSON.parse(stdout) as Record<string, unknown>;
    checkDocument(doc, 'rng');
    const rows = doc.results as { case: string; impl: string; params: { scales?: string } }[];
    expect(rows.map((r) => `${r.case} ${r.impl} ${r.params.scales}`).sort()).toEqual([
      'fused gaussian sample+pack js observed',
      'fused gaussian sample+pack js ptq-model',
    ]);
  });

  for (const suite of SUITES.map((s) => s.name)) {
    it(`${suite} emits a well-formed JSON document`, { timeout: 180_000 }, async (ctx) => {
      if (!existsSync(main)) ctx.skip(`${main} is not built (pnpm build runs first in CI)`);
      const { stdout } = await promisify(execFile)(process.execPath, [main, suite, '--quick', '--json'], {
        maxBuffer: 64 << 20,
        timeout: 170_000,
      });
      const doc = JSON.parse(stdout) as Record<string, unknown>;
      checkDocument(doc, suite);
      const results = doc.results as unknown[];
      const notes = doc.notes as string[];
      if (suite === 'peers' && results.length === 0) {
        expect(notes.some((n) => n.startsWith('peers skipped'))).toBe(true);
      } else if (suite === 'peers') {
        // the whole-model cells in paired rounds (2 with --quick), their ratios and their shares
        // of the limit measured in the same rounds, each with a spread
        const spreads = Object.entries((doc.spreads ?? {}) as Record<string, { n: number; median: number }>);
        expect(spreads.map(([k]) => k).sort()).toEqual([
          'int8native_2threads_over_1thread_lenet5_b8_L2',
          'qbnn_int8-native_share_of_limit_paired_b1_L2',
          'qbnn_int8-native_speedup_over_torch-int8-onednn_b1_L2',
          'resnet18_qbnn_int8-native_share_of_limit_paired_b2_L1',
          'resnet18_qbnn_int8-native_speedup_over_torch-int8-onednn_b2_L1',
          'resnet18_qbnn_int8-native_speedup_over_torch-int8-onednn_default_malloc_b2_L1',
        ]);
        for (const [, s] of spreads) expect(s.n).toBe(2);
        // a share is qbnn's images/s over the limit's: positive, and not far above 1 (the limit
        // is a bound; a wrong work count or a ms / s slip would put it orders of magnitude off)
        for (const [k, s] of spreads.filter(([k]) => k.includes('share')))
          expect(s.median > 0.01 && s.median < 2, `${k} ${s.median}`).toBe(true);
      } else {
        expect(results.length).toBeGreaterThan(0);
      }
    });
  }
});
