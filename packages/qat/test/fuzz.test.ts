// Property-based fuzzing of the quantised-model loader and the integer engine's forward call
// (issue 17, item 2): whatever the bytes of a file or the arguments of a call, the result is a
// model / finite logits or a QbnnError; never an untyped error, a hang, a NaN that escapes or
// memory beyond the budgets. QBNN_FUZZ_RUNS and QBNN_FUZZ_SEED turn this into a longer campaign.
import { QbnnError } from '@qbnn/core';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '@qbnn/nn';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { QuantizedModel } from '../src/engine/quantized-model.js';
import {
  deserializeQuantized,
  QMODEL_HEADER_CRC_KEY,
  QMODEL_OPS_KEY,
  QMODEL_PACKED_KEY,
  serializeQuantized,
} from '../src/save.js';
import { simulate } from '../src/testing.js';
import { tinyConvNet, tinyMlp } from './tiny-models.js';

const RUNS = Number(process.env.QBNN_FUZZ_RUNS ?? 150);
const SEED = Number(process.env.QBNN_FUZZ_SEED ?? 17);
const params = { numRuns: RUNS, seed: SEED };

const models: [string, QuantizedModel, number][] = [
  ['mlp', tinyMlp(), 16],
  ['conv', tinyConvNet(), 36],
  // 3-bit weights: a format 2 file, its tensors packed and listed in the packed table
  ['mlp-w3', tinyMlp({ weightBits: 3, inputs: 15 }), 15],
];
const saved = models.map(([, m]) => serializeQuantized(m));

/** Runs `fn`; a QbnnError is an accepted outcome, anything else thrown fails the property. */
function typed<T>(fn: () => T): T | QbnnError {
  try {
    return fn();
  } catch (e) {
    if (e instanceof QbnnError) return e;
    throw new Error(`untyped error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
}

/** A loaded model must run: finite logits of the right size, or a typed error. */
function exercise(m: QuantizedModel, perExample: number): void {
  const x = Float32Array.from({ length: 2 * perExample }, (_, i) => (i % 5) / 5);
  for (const mode of ['weights', 'local'] as const) {
    const r = typed(() => m.forward(x, { samples: 2, seed: 1, mode }));
    if (r instanceof QbnnError) continue;
    expect(r.logits.length).toBe(2 * 2 * r.classes);
    for (const v of r.logits) expect(Number.isFinite(v)).toBe(true);
  }
}

const hostile = fc.constantFrom<unknown>(
  null,
  undefined,
  -1,
  0,
  0.5,
  1.5,
  255,
  256,
  1000,
  2 ** 31,
  1e308,
  -1e308,
  '',
  'x',
  true,
  [],
  {},
  [0],
  [1e9, 1e9],
  { op: 'layer' },
);

/** Every path to a leaf or node of a JSON value. */
function paths(
  v: unknown,
  at: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(at);
  if (v !== null && typeof v === 'object')
    for (const [k, c] of Object.entries(v)) paths(c, [...at, Array.isArray(v) ? Number(k) : k], out);
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let o = copy;
  for (const p of path.slice(0, -1)) o = o[p] as Record<string | number, unknown>;
  o[path[path.length - 1]] = value;
  return copy;
}

describe('fuzz: the quantised-model loader', () => {
  it('mutated, truncated or extended file bytes load as a working model or fail with a QbnnError', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: models.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 0, maxLength: 8 }),
        fc.oneof(fc.constant(-1), fc.nat()),
        fc.uint8Array({ maxLength: 16 }),
        (which, flips, cut, tail) => {
          const src = saved[which];
          let b = Uint8Array.from(src);
          for (const [at, v] of flips) b[at % b.length] = v;
          if (cut >= 0) b = b.subarray(0, cut % (b.length + 1));
          if (tail.length > 0) b = Uint8Array.from([...b, ...tail]);
          const m = typed(() => deserializeQuantized(b));
          if (!(m instanceof QbnnError)) exercise(m, models[which][2]);
        },
      ),
      params,
    );
  });

  it('a hostile value anywhere in the ops JSON (with or without the header checksum) is refused or still runs', () => {
    const files = saved.map((bytes) => decodeSafetensors(bytes));
    const opsJson = files.map((f) => JSON.parse(f.metadata[QMODEL_OPS_KEY]));
    const allPaths = opsJson.map((o) => paths(o));
    fc.assert(
      fc.property(
        fc.nat({ max: models.length - 1 }),
        fc.nat(),
        hostile,
        fc.boolean(),
        (which, pick, value, keepCrc) => {
          const list = allPaths[which];
          const ops = setAt(opsJson[which], list[pick % list.length], value);
          const meta = { ...files[which].metadata, [QMODEL_OPS_KEY]: JSON.stringify(ops ?? null) ?? 'null' };
          if (!keepCrc) delete meta[QMODEL_HEADER_CRC_KEY];
          delete meta['qbnn.crc32'];
          const bytes = encodeSafetensors(files[which].tensors as Record<string, SafeTensor>, meta);
          const m = typed(() => deserializeQuantized(bytes));
          if (keepCrc && JSON.stringify(ops) !== files[which].metadata[QMODEL_OPS_KEY])
            expect(m).toBeInstanceOf(QbnnError);
          if (!(m instanceof QbnnError)) exercise(m, models[which][2]);
        },
      ),
      params,
    );
  });

  it('a hostile value anywhere in the packed table (issue 19, item 4) is refused or still runs', () => {
    const which = models.findIndex(([name]) => name === 'mlp-w3');
    const file = decodeSafetensors(saved[which]);
    const table = JSON.parse(file.metadata[QMODEL_PACKED_KEY]);
    const list = paths(table);
    fc.assert(
      fc.property(fc.nat(), hostile, (pick, value) => {
        const edited = setAt(table, list[pick % list.length], value);
        const meta = { ...file.metadata, [QMODEL_PACKED_KEY]: JSON.stringify(edited ?? null) ?? 'null' };
        delete meta[QMODEL_HEADER_CRC_KEY];
        delete meta['qbnn.crc32'];
        const m = typed(() =>
          deserializeQuantized(encodeSafetensors(file.tensors as Record<string, SafeTensor>, meta)),
        );
        if (!(m instanceof QbnnError)) exercise(m, models[which][2]);
      }),
      params,
    );
  });
});

describe('fuzz: the forward call', () => {
  const [, mlp, per] = models[0];
  const value = fc.oneof(
    fc.double(),
    fc.constantFrom<unknown>(Number.NaN, Number.POSITIVE_INFINITY, -0, 'abc', undefined, null, {}, [], 1n),
  );
  const input = fc.oneof(
    fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: per, maxLength: per }),
    fc.array(value, { minLength: 0, maxLength: 3 * per }),
    fc
      .array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: per, maxLength: 4 * per })
      .map((a) => Float32Array.from(a)),
    fc.constantFrom<unknown>(
      null,
      undefined,
      'x'.repeat(per),
      { length: per },
      new BigInt64Array(per),
      new DataView(new ArrayBuffer(per)),
    ),
    fc.anything(),
  );
  const opts = fc.oneof(
    fc.record(
      {
        samples: fc.oneof(fc.integer({ min: 1, max: 4 }), hostile, fc.constantFrom(1e9, Number.NaN, -1, 2.5)),
        mode: fc.oneof(fc.constantFrom('weights', 'local', 'bogus', ''), hostile),
        seed: fc.oneof(fc.nat(), hostile),
        provider: fc.oneof(fc.constantFrom('js', 'nope'), hostile),
      },
      { requiredKeys: [] },
    ),
    fc.constantFrom<unknown>(null, 'weights', 3),
    fc.anything(),
  );

  it('any input and options give finite logits or a QbnnError, the engine and its reference alike', () => {
    const before = process.memoryUsage().rss;
    fc.assert(
      fc.property(input, opts, (x, o) => {
        const a = typed(() => mlp.forward(x as never, o as never));
        const b = typed(() => simulate(mlp, x as never, o as never));
        // the engine and its float64 reference accept and refuse the same calls
        expect(a instanceof QbnnError ? `${a.code}: ${a.message}` : 'ok').toBe(
          b instanceof QbnnError ? `${b.code}: ${b.message}` : 'ok',
        );
        if (a instanceof QbnnError) return;
        for (const v of a.logits) expect(Number.isFinite(v)).toBe(true);
        // nothing invalid is run silently: an accepted call had a batch of finite numbers and known options
        const values = x as ArrayLike<unknown>;
        expect(Array.isArray(x) || (ArrayBuffer.isView(x) && !(x instanceof DataView))).toBe(true);
        expect(values.length > 0 && values.length % per === 0).toBe(true);
        for (let i = 0; i < values.length; i++) expect(Number.isFinite(values[i])).toBe(true);
        const mode = (o as { mode?: unknown } | undefined)?.mode;
        expect([undefined, 'weights', 'local']).toContain(mode);
      }),
      params,
    );
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(256);
  });
});
