import { afterEach, expect, test } from 'vitest';
import { measure } from '../src/harness.js';

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
