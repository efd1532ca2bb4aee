// Property-based fuzzing (issue 17) of the safetensors reader and of predict / evaluate: any
// input gives a result or a typed QbnnError; never an untyped error, a NaN result from finite
// input, a hang or a tensor leak. QBNN_FUZZ_RUNS / QBNN_FUZZ_SEED lengthen the campaign
// (scripts/fuzz.mjs).
import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  evaluate,
  Linear,
  predict,
  ReLU,
  type SafeDtype,
  type SafeTensor,
  Sequential,
} from '../src/index.js';
import { ready } from './setup.js';

beforeAll(ready);

const RUNS = Number(process.env.QBNN_FUZZ_RUNS ?? 200);
const params = { numRuns: RUNS, seed: Number(process.env.QBNN_FUZZ_SEED ?? 17) };

/** Runs `call`; an error must be a QbnnError with one of `codes`. Returns the result or undefined. */
function typed<T>(call: () => T, codes: string[]): T | undefined {
  try {
    return call();
  } catch (e) {
    if (!(e instanceof QbnnError)) throw new Error(`untyped error: ${String(e)}`);
    expect(codes).toContain(e.code);
    return undefined;
  }
}

const DTYPES: SafeDtype[] = [
  'BOOL',
  'U8',
  'I8',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
];
const CTOR = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
} as const;

const tensorArb: fc.Arbitrary<SafeTensor> = fc
  .record({
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    seed: fc.nat(),
  })
  .map(({ dtype, shape, seed }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const bytes = Uint8Array.from(
      { length: n * CTOR[dtype].BYTES_PER_ELEMENT },
      (_, i) => (seed + i * 131) & 255,
    );
    return { dtype, shape, data: new CTOR[dtype](bytes.buffer) } as SafeTensor;
  });
const fileArb = fc.dictionary(fc.stringMatching(/^[a-z0-9_.]{1,12}$/), tensorArb, { maxKeys: 4 });

/** Mutations of a valid file: byte flips, truncation, extension, a rewritten header length. */
const mutated = fc
  .record({
    file: fileArb,
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
    cut: fc.option(fc.nat(), { freq: 4 }),
    extra: fc.option(fc.uint8Array({ minLength: 1, maxLength: 9 }), { freq: 5 }),
    headerLength: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { freq: 5 }),
    checksum: fc.boolean(),
  })
  .map(({ file, flips, cut, extra, headerLength, checksum }) => {
    let b = encodeSafetensors(file, {}, { checksum });
    if (extra) b = new Uint8Array([...b, ...extra]);
    for (const [at, v] of flips) b[at % b.length] = v;
    if (headerLength !== null) new DataView(b.buffer, b.byteOffset).setBigUint64(0, headerLength, true);
    if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
    return b;
  });

/** A header written by hand: odd JSON (deep nesting, wrong types, huge numbers). */
const headerJson = fc.oneof(
  fc.json(),
  fc.constant(`${'['.repeat(20000)}${']'.repeat(20000)}`),
  fc.constant(`{"a":${'{"b":'.repeat(5000)}1${'}'.repeat(5000)}}`),
  fc.constant('{"t":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}'),
  fc.constant('{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'),
  fc.constant('{"__metadata__":{"qbnn.crc32":null}}'),
);
const handWritten = fc.tuple(headerJson, fc.uint8Array({ maxLength: 16 })).map(([json, data]) => {
  const h = new TextEncoder().encode(json);
  const b = new Uint8Array(8 + h.length + data.length);
  new DataView(b.buffer).setBigUint64(0, BigInt(h.length), true);
  b.set(h, 8);
  b.set(data, 8 + h.length);
  return b;
});

describe('fuzz: the safetensors reader', () => {
  it('a valid file round-trips exactly', () => {
    fc.assert(
      fc.property(fileArb, fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), (file, meta) => {
        const clean = Object.fromEntries(Object.entries(meta).filter(([k]) => k !== 'qbnn.crc32'));
        const back = decodeSafetensors(encodeSafetensors(file, clean));
        expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(file).sort());
        for (const [k, t] of Object.entries(file)) {
          expect(back.tensors[k].dtype).toBe(t.dtype);
          expect(back.tensors[k].shape).toEqual(t.shape);
          expect(new Uint8Array(back.tensors[k].data.buffer)).toEqual(
            new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
          );
        }
        expect(back.metadata).toMatchObject(clean);
      }),
      params,
    );
  });

  it('any mutation, any header, any bytes: tensors that match their shapes, or ERR_FORMAT', () => {
    fc.assert(
      fc.property(fc.oneof(mutated, handWritten, fc.uint8Array({ maxLength: 48 })), (bytes) => {
        const f = typed(() => decodeSafetensors(bytes), ['ERR_FORMAT']);
        if (!f) return;
        let total = 0;
        for (const t of Object.values(f.tensors)) {
          const n = t.shape.reduce((a, b) => a * b, 1);
          expect(t.data.length).toBe(n);
          total += t.data.byteLength;
        }
        // Nothing decoded is larger than the file: no allocation the bytes do not back.
        expect(total).toBeLessThanOrEqual(bytes.length);
      }),
      params,
    );
  });
});

describe('fuzz: predict and evaluate options and inputs', () => {
  const value = fc.oneof(
    fc.double({ min: -10, max: 10, noNaN: true }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e38, -0),
  );
  const option = fc.oneof(
    fc.integer({ min: -2, max: 9 }),
    fc.constantFrom<unknown>(undefined, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '4', null),
  );

  it('a result of the right shape without NaN from finite input, or a QbnnError; no tensor leaks', () => {
    const m = new Sequential(new Linear(3, 5, { seed: 1 }), new ReLU(), new Linear(5, 4, { seed: 2 }));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.array(value, { minLength: 18, maxLength: 18 }),
        fc.array(fc.oneof(fc.integer({ min: -1, max: 5 }), fc.constantFrom(0.5, 99)), {
          minLength: 6,
          maxLength: 6,
        }),
        option,
        (n, values, labels, batchSize) => {
          const before = tf.memory().numTensors;
          const x = tf.tensor2d(values.slice(0, 3 * n), [n, 3]);
          const y = tf.tensor1d(labels.slice(0, n), 'float32');
          const opts = { batchSize: batchSize as number };
          const finite = values.slice(0, 3 * n).every(Number.isFinite);
          const out = typed(() => predict(m, x, opts), ['ERR_ARG', 'ERR_NAN', 'ERR_SHAPE']);
          if (out) {
            expect(out.shape).toEqual([n, 4]);
            if (finite) expect(out.dataSync().every(Number.isFinite)).toBe(true);
            out.dispose();
          }
          const r = typed(() => evaluate(m, { x, y }, opts), ['ERR_ARG', 'ERR_NAN', 'ERR_SHAPE']);
          if (r) {
            expect(Number.isFinite(r.loss) && r.accuracy >= 0 && r.accuracy <= 1).toBe(true);
          }
          tf.dispose([x, y]);
          expect(tf.memory().numTensors).toBe(before);
        },
      ),
      params,
    );
    m.dispose();
  });
});
