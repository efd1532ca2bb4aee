import { afterEach, expect, test } from 'vitest';
import {
  callsPerRun,
  cpuIdentity,
  formatMarkdown,
  formatTable,
  lapTimer,
  measure,
  pairedRatios,
  type SuiteReport,
  spreadOf,
} from '../src/harness.js';

const g = globalThis as { gc?: () => void };
const saved = g.gc;
afterEach(() => {
  g.gc = saved;
});

test('measure collects the garbage of earlier cells before it times a cell (node --expose-gc)', async () => {
  // V8's background threads otherwise collect an earlier cell's garbage while this one is timed,
  // and process CPU time counts them (a full peers run timed native cells 15-20% slow).
  const events: string[] = [];
  g.gc = () => events.push('gc');
  await measure('case', 'impl', {}, () => events.push('call'), { runs: 2, warmup: 1, clock: 'cpu' });
  expect(events).toEqual(['gc', 'call', 'call', 'call']);
});

test('without --expose-gc measure still runs', async () => {
  g.gc = undefined;
  let calls = 0;
  const r = await measure('case', 'impl', {}, () => calls++, { runs: 3 });
  expect(calls).toBe(4);
  expect(r.runs).toBe(3);
});

test('lapTimer collects the garbage of earlier cells before its first lap (the train suite times steps with it)', () => {
  const events: string[] = [];
  g.gc = () => events.push('gc');
  const lap = lapTimer('wall');
  events.push('step');
  const ms = lap();
  expect(events).toEqual(['gc', 'step']);
  expect(ms).toBeGreaterThanOrEqual(0);
  // each lap is measured from the previous one, not from the start: the laps add up to at most
  // the time elapsed since the timer was made (laps from the start would add up to about twice
  // it), whatever the scheduler does between them
  const t0 = performance.now();
  const lap2 = lapTimer('wall');
  while (performance.now() - t0 < 5);
  const first = lap2();
  while (performance.now() - t0 < 10);
  const second = lap2();
  const elapsed = performance.now() - t0;
  expect(first).toBeGreaterThanOrEqual(4);
  expect(first + second).toBeLessThanOrEqual(elapsed + 0.01);
});

test('minRunMs repeats a short call within each run and reports the time of one call', async () => {
  // a call that takes ~0.5 ms of wall time (busy wait)
  let calls = 0;
  const spin = () => {
    calls++;
    const t0 = performance.now();
    while (performance.now() - t0 < 0.5);
  };
  const r = await measure('case', 'impl', {}, spin, { runs: 3, warmup: 1, minRunMs: 100 });
  const per = r.extra?.calls_per_run as number;
  // ~200 calls a run (100 ms / 0.5 ms); fewer than 2 only if the warm-up call took over 50 ms
  expect(per).toBeGreaterThanOrEqual(2);
  expect(calls).toBe(1 + 3 * per);
  // the median is one call's time, not the run's
  expect(r.median_ms).toBeGreaterThanOrEqual(0.5);
  expect(r.median_ms).toBeLessThan(5);
});

test('callsPerRun: enough calls to fill the run, within bounds', () => {
  expect(callsPerRun(20, 0.8)).toBe(25);
  expect(callsPerRun(20, 30)).toBe(1);
  expect(callsPerRun(20, 0)).toBe(1);
  expect(callsPerRun(20, 1e-9)).toBe(100_000);
  expect(callsPerRun(20, Number.NaN)).toBe(1);
});

test('pairedRatios divides round by round, not the overall medians', () => {
  // a round where the host was twice as slow for both sides: round ratios 2, 2, 2.5
  const peer = [200, 400, 250];
  const qbnn = [100, 200, 100];
  const s = pairedRatios(peer, qbnn);
  expect(s).toEqual({ min: 2, median: 2, max: 2.5, n: 3 });
  // the ratio of the medians (250 / 100) would read 2.5
  expect(spreadOf(peer).median / spreadOf(qbnn).median).toBe(2.5);
  expect(() => pairedRatios([1, 2], [1])).toThrow(/2 peer rounds but 1 qbnn/);
});

test('spreadOf: min, median (mean of the middle two for even n), max', () => {
  expect(spreadOf([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3, n: 3 });
  expect(spreadOf([4, 1, 3, 2])).toEqual({ min: 1, median: 2.5, max: 4, n: 4 });
  expect(() => spreadOf([])).toThrow(/no values/);
});

test('the printed table and the markdown show a ratio spread beside its value', () => {
  const report: SuiteReport = {
    suite: 's',
    date: 'd',
    command: 'c',
    machine: { cpu: 'x', cores: 2, isa: 'avx512', node: 'v20' },
    results: [],
    ratios: { a: 3.5, b: 2 },
    spreads: { a: { min: 3.1234, median: 3.5, max: 3.9876, n: 5 } },
    notes: [],
  };
  expect(formatTable(report)).toContain('  a: 3.5 (min 3.12, max 3.99 over 5 rounds)');
  expect(formatTable(report)).toMatch(/ {2}b: 2$/m);
  expect(formatMarkdown(report)).toContain('| a | 3.5 (min 3.12, max 3.99 over 5 rounds) |');
  expect(formatMarkdown(report)).toContain('| b | 2 |');
});

test('cpuIdentity reads vendor, family, model and stepping of the first processor', () => {
  // A VM's model name ("AMD EPYC") is the same on Zen 4 (family 25) and Zen 5 (family 26) hosts.
  const processor = (family: number, model: number) =>
    `processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: ${family}\nmodel\t\t: ${model}\nmodel name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu avx512f\n`;
  expect(cpuIdentity(`${processor(25, 17)}\n${processor(26, 2)}`)).toBe(
    'AuthenticAMD family 25 model 17 stepping 1',
  );
  expect(cpuIdentity(processor(26, 2))).toBe('AuthenticAMD family 26 model 2 stepping 1');
  expect(cpuIdentity('processor\t: 0\nmodel name\t: ARMv8\n')).toBeUndefined();
  expect(cpuIdentity('')).toBeUndefined();
});
