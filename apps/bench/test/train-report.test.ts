// The train suite's statistics and the tables' spread column: quartiles against order statistics
// worked out by hand, per-round speed-ups, and the q1-q3 column shown only where a row has it.
import { expect, test } from 'vitest';
import {
  type CaseResult,
  formatMarkdown,
  formatTable,
  quantileOf,
  type SuiteReport,
} from '../src/harness.js';
import { timingOf } from '../src/suites/train.js';

test('quantileOf interpolates between order statistics, whatever the input order', () => {
  const v = [9, 1, 5, 3, 7]; // sorted 1 3 5 7 9
  expect(quantileOf(v, 0)).toBe(1);
  expect(quantileOf(v, 0.25)).toBe(3);
  expect(quantileOf(v, 0.5)).toBe(5);
  expect(quantileOf(v, 1)).toBe(9);
  // 4 values: positions 0.75, 1.5, 2.25 of 1 2 4 8
  expect(quantileOf([8, 4, 2, 1], 0.25)).toBeCloseTo(1.75, 12);
  expect(quantileOf([8, 4, 2, 1], 0.5)).toBe(3);
  expect(quantileOf([8, 4, 2, 1], 0.75)).toBe(5);
  expect(quantileOf([42], 0.75)).toBe(42);
  expect(v).toEqual([9, 1, 5, 3, 7]);
});

test('timingOf pools the rounds and keeps each round median in order', () => {
  const t = timingOf([
    [10, 30, 20],
    [50, 40, 60],
  ]);
  expect(t.runs).toBe(6);
  expect(t.medianMs).toBe(35);
  expect(t.q1Ms).toBe(22.5); // position 1.25 of 10 20 30 40 50 60
  expect(t.q3Ms).toBe(47.5);
  expect([t.minMs, t.maxMs]).toEqual([10, 60]);
  expect(t.roundMedians).toEqual([20, 50]);
  expect(t.meanMs).toBe(35);
  // one slow step (a collection) moves the mean, not the median
  const slow = timingOf([[1, 1, 1, 1, 11]]);
  expect([slow.medianMs, slow.meanMs]).toEqual([1, 3]);
});

function report(results: CaseResult[]): SuiteReport {
  return {
    suite: 's',
    date: 'd',
    command: 'c',
    machine: { cpu: 'cpu', cores: 2, isa: 'x', node: 'v20' },
    results,
    ratios: {},
    notes: [],
  };
}
const row = (extra: Partial<CaseResult> = {}): CaseResult => ({
  case: 'c',
  impl: 'i',
  params: { batch: 64 },
  median_ms: 40,
  min_ms: 35,
  max_ms: 50,
  runs: 20,
  throughput: 1600,
  unit: 'images/s',
  ...extra,
});

test('the tables show q1-q3 only for reports whose rows have quartiles', () => {
  const plain = report([row()]);
  expect(formatTable(plain)).not.toContain('q1-q3');
  expect(formatMarkdown(plain)).toContain(
    '| case | impl | params | median ms | min | max | throughput |\n|---|---|---|---:|---:|---:|---:|\n| c | i | batch=64 | 40 | 35 | 50 | 1600 images/s |',
  );
  const spread = report([row({ q1_ms: 38, q3_ms: 44 }), row()]);
  const table = formatTable(spread).split('\n');
  expect(table[0]).toMatch(/median ms\s+q1-q3\s+min/);
  expect(table[2]).toMatch(/40\s+38-44\s+35\s+50/);
  expect(formatMarkdown(spread)).toContain(
    '| case | impl | params | median ms | q1-q3 | min | max | throughput |\n|---|---|---|---:|---:|---:|---:|---:|\n| c | i | batch=64 | 40 | 38-44 | 35 | 50 | 1600 images/s |\n| c | i | batch=64 | 40 |  | 35 | 50 | 1600 images/s |',
  );
});
