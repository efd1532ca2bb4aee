// Issue 17: the IDX reader refuses what is not a regular file before reading (a FIFO hung,
// /dev/zero grew without bound) and stops a gzip bomb at a size cap; a property-based fuzz of
// parseIdx and maybeGunzip (QBNN_FUZZ_RUNS / QBNN_FUZZ_SEED lengthen it, see scripts/fuzz.mjs).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { QbnnError } from '@qbnn/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIdx, maybeGunzip, parseIdx } from '../src/index.js';
import { readIdx } from '../src/node.js';

const tmp = mkdtempSync(join(tmpdir(), 'qbnn-data-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const params = {
  numRuns: Number(process.env.QBNN_FUZZ_RUNS ?? 300),
  seed: Number(process.env.QBNN_FUZZ_SEED ?? 17),
};

function expectQbnn(fn: () => unknown, code: string, message: RegExp): void {
  expect(fn).toThrow(
    expect.objectContaining({ name: 'QbnnError', code, message: expect.stringMatching(message) }),
  );
}

describe('readIdx refuses hostile files', () => {
  it('a FIFO, /dev/zero and a directory are refused before any read', () => {
    const fifo = join(tmp, 'images.idx');
    execFileSync('mkfifo', [fifo]);
    expectQbnn(() => readIdx(fifo), 'ERR_ARG', /images.idx is not a regular file/);
    expectQbnn(() => readIdx('/dev/zero'), 'ERR_ARG', /\/dev\/zero is not a regular file/);
    expectQbnn(() => readIdx(tmp), 'ERR_ARG', /is not a regular file/);
  });

  it('a gzip bomb stops at the size cap; a file above it is refused by its size', () => {
    // 64 MiB of zeros gzip to ~64 KiB: a header claiming them passes until the inflation.
    const bomb = join(tmp, 'bomb.idx.gz');
    const big = new Uint8Array(64 * 2 ** 20);
    big.set([0, 0, 8, 1, 0x04, 0, 0, 0]);
    writeFileSync(bomb, gzipSync(big));
    expectQbnn(
      () => readIdx(bomb, { maxBytes: 2 ** 20 }),
      'ERR_FORMAT',
      /inflates to more than 1048576 bytes/,
    );
    const plain = join(tmp, 'plain.idx');
    writeFileSync(plain, encodeIdx(new Uint8Array(2000), [2000]));
    expectQbnn(
      () => readIdx(plain, { maxBytes: 1000 }),
      'ERR_FORMAT',
      /2008 bytes, more than the 1000 allowed/,
    );
    expect(readIdx(plain).shape).toEqual([2000]);
  });
});

describe('parseIdx of a Node Buffer', () => {
  it('int8 and uint8 data are the payload only, not the Buffer pool around it (found by the fuzz)', () => {
    const bytes = Buffer.from(encodeIdx([-1, 2, -3], [3], 'int8'));
    expect(bytes.buffer.byteLength).toBeGreaterThan(bytes.length);
    expect(Array.from(parseIdx(bytes).data)).toEqual([-1, 2, -3]);
    const u = Buffer.from(encodeIdx([7, 8], [2], 'uint8'));
    const a = parseIdx(u).data;
    expect([a.length, a.buffer.byteLength]).toEqual([2, 2]);
  });
});

describe('fuzz: parseIdx and maybeGunzip give an array or a typed error', () => {
  /** A valid IDX file, sometimes mutated (bytes flipped, truncated, extended, dims rewritten). */
  const idxBytes = fc
    .record({
      dtype: fc.constantFrom('uint8', 'int8', 'int16', 'int32', 'float32', 'float64' as const),
      shape: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 3 }),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat(), { freq: 3 }),
      extra: fc.uint8Array({ maxLength: 5 }),
      bigDim: fc.option(fc.constantFrom(0xffffffff, 0x80000000, 65536), { freq: 4 }),
    })
    .map(({ dtype, shape, flips, cut, extra, bigDim }) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const b = encodeIdx(new Array(n).fill(1), shape, dtype as never);
      let out = new Uint8Array([...b, ...(extra.length > 0 && flips.length > 2 ? extra : [])]);
      for (const [at, v] of flips) if (out.length > 0) out[at % out.length] = v;
      if (bigDim !== null && out.length >= 8) new DataView(out.buffer).setUint32(4, bigDim, false);
      if (cut !== null) out = out.subarray(0, cut % (out.length + 1));
      return out;
    });

  it('any bytes, any mutation of a valid file', () => {
    fc.assert(
      fc.property(fc.oneof(idxBytes, fc.uint8Array({ maxLength: 64 })), fc.boolean(), (bytes, gz) => {
        const input = gz ? new Uint8Array(gzipSync(bytes)) : bytes;
        try {
          const a = parseIdx(maybeGunzip(input, 'fuzz', 4096), 'fuzz');
          const n = a.shape.reduce((x, y) => x * y, 1);
          expect(a.data.length).toBe(n);
        } catch (e) {
          if (!(e instanceof QbnnError)) throw new Error(`untyped error: ${String(e)}`);
          expect(['ERR_FORMAT', 'ERR_ARG']).toContain(e.code);
        }
      }),
      params,
    );
    for (const bad of [null, undefined, 'abc', [0, 0, 8, 1]]) {
      expectQbnn(() => parseIdx(bad as never), 'ERR_ARG', /must be a Uint8Array/);
      expectQbnn(() => maybeGunzip(bad as never), 'ERR_ARG', /must be a Uint8Array/);
    }
  });
});
