import { afterEach, expect, test } from 'vitest';
import { lapTimer, measure } from '../src/harness.js';

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
