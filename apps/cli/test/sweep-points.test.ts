import { describe, expect, test } from 'vitest';
import { bitSettings } from '../src/commands/sweep.js';
import { ACTIVATION_LINE, GRID, toSweepPoints, WEIGHT_LINE } from '../src/lib/sweep-points.js';
import { pointKey, type StoredPoint } from '../src/lib/sweep-store.js';

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('the settings of a sweep', () => {
  test("the paper's two lines: W3..8 at A7 and A3..7 at W8 share W8A7, so 10 models, not 11", () => {
    const s = bitSettings(range(3, 8), range(3, 7), false);
    expect(s).toHaveLength(10);
    expect(new Set(s.map(([w, a]) => `${w},${a}`)).size).toBe(10);
    for (let w = 3; w <= 8; w++) expect(s).toContainEqual([w, 7]);
    for (let a = 3; a <= 7; a++) expect(s).toContainEqual([8, a]);
  });

  test('--grid: every pair', () => {
    const s = bitSettings(range(3, 8), range(3, 7), true);
    expect(s).toHaveLength(30);
    expect(s).toContainEqual([3, 3]);
  });
});

const point = (mode: StoredPoint['mode'], w: number, a: number, error: number): StoredPoint => ({
  key: pointKey('gaussian', mode, w, a),
  task: 'classification',
  data: 'mnist',
  posterior: 'gaussian',
  mode,
  wbits: w,
  abits: a,
  metrics: { error, confApe: error / 10 },
  seconds: 1,
});

describe('stored points as the report draws them', () => {
  test('W8A7 lies on both lines; the float model starts the line of every flow', () => {
    const pts = toSweepPoints([
      point('float', 32, 32, 0.1),
      point('ptq', 8, 7, 0.2),
      point('qat', 4, 7, 0.3),
      point('ptq', 8, 3, 0.4),
    ]);
    const errors = pts.filter((p) => p.metric === 'MNIST error');
    const on = (sweep: string, mode: string) =>
      errors
        .filter((p) => p.sweep === sweep && p.mode === mode)
        .map((p) => [p.bits, p.value])
        .sort((x, y) => x[0] - y[0]);
    expect(on(WEIGHT_LINE, 'ptq')).toEqual([
      [8, 0.2],
      [32, 0.1],
    ]);
    expect(on(ACTIVATION_LINE, 'ptq')).toEqual([
      [3, 0.4],
      [7, 0.2],
      [32, 0.1],
    ]);
    expect(on(WEIGHT_LINE, 'qat')).toEqual([
      [4, 0.3],
      [32, 0.1],
    ]);
    expect(on(ACTIVATION_LINE, 'qat')).toEqual([[32, 0.1]]);
    expect(pts.filter((p) => p.sweep === GRID)).toEqual([]);
    // the confusion set of MNIST is Fashion-MNIST
    expect(pts.some((p) => p.metric === 'Fashion-MNIST aPE (confusion)' && p.value === 0.04)).toBe(true);
  });

  test('a grid run puts every quantised point on the grid as well', () => {
    const pts = toSweepPoints([
      point('float', 32, 32, 0.1),
      point('ptq', 3, 3, 0.5),
      point('ptq', 8, 7, 0.2),
    ]);
    const grid = pts.filter((p) => p.sweep === GRID && p.metric === 'MNIST error');
    expect(grid.map((p) => [p.wbits, p.abits, p.value]).sort()).toEqual([
      [3, 3, 0.5],
      [8, 7, 0.2],
    ]);
  });
});

test('settings run widest first, so a stopped run holds the high-precision end of both lines', () => {
  expect(bitSettings(range(3, 8), range(3, 8), false).slice(0, 4)).toEqual([
    [8, 8],
    [8, 7],
    [8, 6],
    [7, 7],
  ]);
});
