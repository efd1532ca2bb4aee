import { describe, expect, it } from 'vitest';
import type { QuantizedModel } from '../src/engine/quantized-model.js';
import { MAX_FORWARD_ELEMENTS } from '../src/engine/validate-input.js';
import { simulate } from '../src/testing.js';
import { errorOf } from './helpers.js';
import { tinyMlp } from './tiny-models.js';

const m = tinyMlp();
const good = (): number[] => Array.from({ length: 32 }, (_, i) => (i % 7) / 7);
const withAt = (i: number, v: unknown): unknown[] => {
  const x: unknown[] = good();
  x[i] = v;
  return x;
};

/** The four entry points of a forward call. */
const entries: [string, (m: QuantizedModel, x: unknown, o?: unknown) => unknown][] = [
  ['forward', (q, x, o) => q.forward(x as never, o as never)],
  ['trace', (q, x, o) => q.trace(x as never, o as never)],
  ['predictProba', (q, x, o) => q.predictProba(x as never, o as never)],
  ['simulate', (q, x, o) => simulate(q, x as never, o as never)],
];

describe('forward-call validation (issue 17: D1-D4)', () => {
  it('D1: infinite pixels are an ERR_NAN naming x and the first bad index', () => {
    for (const [name, call] of entries) {
      expect(
        errorOf(() => call(m, withAt(5, Number.POSITIVE_INFINITY))),
        name,
      ).toBe('ERR_NAN: x[5] must be a finite number, got Infinity');
      expect(errorOf(() => call(m, Float32Array.from(withAt(9, Number.NEGATIVE_INFINITY) as number[])))).toBe(
        'ERR_NAN: x[9] must be a finite number, got -Infinity',
      );
    }
  });

  it('D1: non-numeric inputs are an ERR_ARG, never read as 0', () => {
    expect(errorOf(() => m.forward(withAt(0, 'abc') as never))).toBe(
      "ERR_ARG: x[0] must be a number, got 'abc'",
    );
    expect(errorOf(() => m.forward(withAt(3, undefined) as never))).toBe(
      'ERR_ARG: x[3] must be a number, got undefined undefined',
    );
    const holes = good();
    delete holes[7];
    expect(errorOf(() => m.forward(holes))).toMatch(/^ERR_ARG: x\[7\] must be a number/);
    expect(errorOf(() => m.forward({ length: 16 } as never))).toMatch(
      /^ERR_ARG: x must be an array or typed array/,
    );
    expect(errorOf(() => m.forward('0123456789abcdef' as never))).toMatch(/^ERR_ARG: x must be an array/);
    expect(errorOf(() => m.forward(new BigInt64Array(16) as never))).toMatch(/^ERR_ARG: x must be an array/);
    expect(errorOf(() => m.forward({ dataSync: () => withAt(2, null) } as never))).toBe(
      'ERR_ARG: x[2] must be a number, got null',
    );
  });

  it('D2: an unknown mode is an ERR_ARG listing the modes', () => {
    for (const [name, call] of entries) {
      expect(
        errorOf(() => call(m, good(), { mode: 'bogus' })),
        name,
      ).toBe("ERR_ARG: opts.mode must be one of 'weights', 'local'; got 'bogus'");
    }
  });

  it('D3: simulate, trace and predictProba reject exactly what forward rejects', () => {
    const bad: [unknown, unknown][] = [
      [withAt(4, Number.NaN), undefined],
      [withAt(4, Number.POSITIVE_INFINITY), undefined],
      [good().slice(1), undefined],
      [[], undefined],
      [good(), { samples: 0 }],
      [good(), { samples: 2.5 }],
      [good(), { mode: 'local ' }],
      [good(), { seed: -1 }],
      [good(), { provider: 3 }],
      [null, undefined],
    ];
    for (const [x, o] of bad) {
      const errs = entries.map(([, call]) => errorOf(() => call(m, x, o)));
      expect(new Set(errs).size, JSON.stringify(errs)).toBe(1);
      expect(errs[0]).not.toBe('ok');
    }
    expect(errorOf(() => simulate(m, withAt(4, Number.NaN)))).toBe(
      'ERR_NAN: x[4] must be a finite number, got NaN',
    );
    // a good call still agrees with its twin within a quantisation step of the logits
    const a = m.forward(good(), { samples: 3, seed: 5 }).logits;
    const b = simulate(m, good(), { samples: 3, seed: 5 }).logits;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(0.5);
  });

  it('D4: null, missing or odd arguments are typed errors naming the argument', () => {
    expect(errorOf(() => m.forward(null as never))).toBe(
      'ERR_ARG: x must be an array or typed array of numbers, or a tensor with dataSync(); got null',
    );
    expect(errorOf(() => m.forward(undefined as never))).toMatch(/^ERR_ARG: x must be .*got undefined/);
    expect(errorOf(() => m.forward(good(), null as never))).toBe(
      'ERR_ARG: opts must be an object of forward options, got null',
    );
    for (const s of [-1, 0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2']) {
      expect(errorOf(() => m.forward(good(), { samples: s as number }))).toMatch(
        /^ERR_ARG: opts.samples must be an integer >= 1/,
      );
    }
    expect(errorOf(() => m.forward(good().slice(0, 20)))).toBe(
      'ERR_SHAPE: x has 20 values; expected a positive multiple of 16 (a batch of [16])',
    );
  });

  it('D4: samples beyond the memory budget fail before anything is allocated', () => {
    const before = process.memoryUsage().rss;
    const t0 = performance.now();
    // tinyMlp's largest activation is its 32 hidden units: 2 examples x 32 x 1e9 samples
    expect(errorOf(() => m.forward(good(), { samples: 1e9 }))).toBe(
      `ERR_ARG: opts.samples 1000000000 x batch 2 x the largest activation (32 values an example) = 64000000000 exceeds the forward budget of ${MAX_FORWARD_ELEMENTS} elements: use fewer samples or a smaller batch`,
    );
    expect(errorOf(() => simulate(m, good(), { samples: 2 ** 23 }))).toMatch(/exceeds the forward budget/);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
    // just inside the budget still runs
    const L = Math.floor(MAX_FORWARD_ELEMENTS / (2 * 32));
    expect(L).toBeGreaterThan(1000);
    expect(m.forward(good(), { samples: 64, seed: 1 }).logits.length).toBe(64 * 2 * 4);
  });
});
