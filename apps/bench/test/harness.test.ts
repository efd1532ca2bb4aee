import { afterEach, expect, test } from 'vitest';
import { callsPerRun, lapTimer, measure } from '../src/harness.js';

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
  // each lap is measured from the previous one, not from the start
  const t0 = performance.now();
  while (performance.now() - t0 < 5);
  const first = lap();
  const second = lap();
  expect(first).toBeGreaterThanOrEqual(4);
  expect(second).toBeLessThan(first);
});

test('minRunMs repeats a short call within each run and reports the time of one call', async () => {
  // a call that takes ~0.5 ms of wall time (busy wait)
  let calls = 0;
  const spin = () => {
    calls++;
    const t0 = performance.now();
    while (performance.now() - t0 < 0.5);
  };
  const r = await measure('case', 'impl', {}, spin, { runs: 3, warmup: 1, minRunMs: 10 });
  const per = r.extra?.calls_per_run as number;
  // ~20 calls a run (10 ms / 0.5 ms), whatever the host's noise did to the warm-up call
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
