// The portable inflate against node:zlib (the independent reference): random data of every
// compressibility through every deflate level and strategy must come back byte for byte, and a
// mutated stream must give zlib's bytes when zlib accepts it and a typed error when zlib refuses it.
import { constants, deflateRawSync, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32, gunzip, inflateRaw, isGzip, QbnnError } from '../src/index.js';

const runs = Number(process.env.QBNN_FUZZ_RUNS ?? 200);

/** Bytes from a seeded generator: `alphabet` distinct values in runs up to `run` long (small alphabets and long runs compress well). */
function sample(n: number, alphabet: number, run: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  for (let i = 0; i < n; ) {
    const v = next() % alphabet;
    const len = 1 + (next() % run);
    for (let k = 0; k < len && i < n; k++) out[i++] = v;
    // Copies of earlier text give the long-distance matches a real file has.
    if (i > 1000 && next() % 8 === 0) {
      const from = next() % (i - 500);
      const m = Math.min(n - i, 3 + (next() % 300));
      out.copyWithin(i, from, from + m);
      i += m;
    }
  }
  return out;
}

const STRATEGIES = [
  constants.Z_DEFAULT_STRATEGY,
  constants.Z_FILTERED,
  constants.Z_HUFFMAN_ONLY,
  constants.Z_RLE,
  constants.Z_FIXED,
];

function expectFormatError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QbnnError);
    expect((e as QbnnError).code).toBe('ERR_FORMAT');
    return;
  }
  throw new Error('expected a QbnnError ERR_FORMAT, got a result');
}

describe('inflateRaw equals zlib', () => {
  it('every level and strategy, random data of every compressibility', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 70_000 }),
        fc.integer({ min: 1, max: 256 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 9 }),
        fc.constantFrom(...STRATEGIES),
        fc.integer({ min: 9, max: 15 }),
        fc.nat(),
        (n, alphabet, run, level, strategy, windowBits, seed) => {
          const data = sample(n, alphabet, run, seed);
          const z = deflateRawSync(data, { level, strategy, windowBits });
          expect(Buffer.from(inflateRaw(new Uint8Array(z))).equals(Buffer.from(data))).toBe(true);
        },
      ),
      { numRuns: runs, seed: 16 },
    );
  });

  it('a large mixed stream (stored, fixed and dynamic blocks, 32 KiB distances)', () => {
    const data = new Uint8Array(3_000_000);
    data.set(sample(1_000_000, 256, 1, 1), 0); // incompressible: stored blocks
    data.set(sample(1_000_000, 4, 30, 2), 1_000_000);
    data.set(sample(1_000_000, 40, 3, 3), 2_000_000);
    for (const level of [1, 6, 9]) {
      const z = new Uint8Array(deflateRawSync(data, { level }));
      const got = inflateRaw(z);
      expect(got.length).toBe(data.length);
      expect(crc32(got)).toBe(crc32(data));
    }
  });

  it('mutated streams: zlib bytes when zlib accepts them, ERR_FORMAT when it refuses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4000 }),
        fc.integer({ min: 1, max: 64 }),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.nat(), { freq: 3 }),
        (n, alphabet, seed, flips, cut) => {
          let z = new Uint8Array(deflateRawSync(sample(n, alphabet, 4, seed)));
          for (const [at, v] of flips) z[at % z.length] = v;
          if (cut !== null) z = z.subarray(0, cut % (z.length + 1));
          let ref: Buffer | undefined;
          try {
            ref = inflateRawSync(z, { finishFlush: constants.Z_SYNC_FLUSH });
            // zlib returns what it decoded so far on a truncated stream with a sync flush;
            // a complete stream also inflates under the default (finishing) flush.
            inflateRawSync(z);
          } catch {
            ref = undefined;
          }
          if (ref) expect(Buffer.from(inflateRaw(z)).equals(ref)).toBe(true);
          else expectFormatError(() => inflateRaw(z));
        },
      ),
      { numRuns: runs * 5, seed: 61 },
    );
  });

  it('an incomplete literal/length code is refused, as zlib does; the completed one decodes', () => {
    // Literal 'a' (1 bit) and end-of-block (2 bits) leave a quarter of the code space unused.
    const incomplete = dynamicBlock({ 97: 1, 256: 2 }, [97, 97, 256]);
    expect(() => inflateRawSync(incomplete)).toThrow();
    expectFormatError(() => inflateRaw(incomplete));
    const complete = dynamicBlock({ 97: 1, 98: 2, 256: 2 }, [97, 98, 97, 256]);
    expect(Buffer.from(inflateRaw(complete)).toString()).toBe(inflateRawSync(complete).toString());
    expect(Buffer.from(inflateRaw(complete)).toString()).toBe('aba');
  });

  it('stops at maxOutputLength: a deflate bomb is refused at the cap', () => {
    const z = new Uint8Array(deflateRawSync(new Uint8Array(2 ** 24)));
    expect(z.length).toBeLessThan(20_000);
    expect(() => inflateRaw(z, { maxOutputLength: 2 ** 20 })).toThrow(/inflates to more than 1048576 bytes/);
    expect(inflateRaw(z, { maxOutputLength: 2 ** 24 }).length).toBe(2 ** 24);
    expect(inflateRaw(new Uint8Array(deflateRawSync(new Uint8Array(0))), { maxOutputLength: 0 }).length).toBe(
      0,
    );
  });

  it('bad arguments are typed errors', () => {
    expect(() => inflateRaw('abc' as never)).toThrow(/inflateRaw: the bytes must be a Uint8Array/);
    expect(() => inflateRaw(new Uint8Array(1), { maxOutputLength: -1 })).toThrow(/maxOutputLength must be/);
    expectFormatError(() => inflateRaw(new Uint8Array(0)));
    expectFormatError(() => inflateRaw(new Uint8Array([0x07]))); // block type 3
  });
});

describe('gunzip equals zlib', () => {
  it('single and multi-member files with header fields', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 256 }),
        fc.integer({ min: 0, max: 9 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 3 }),
        (sizes, alphabet, level, seed, suffix) => {
          const parts = sizes.map((n, i) => sample(n, alphabet, 5, seed + i));
          const gz = new Uint8Array(Buffer.concat([...parts.map((p) => gzipSync(p, { level })), suffix]));
          expect(isGzip(gz)).toBe(true);
          let ref: Buffer | undefined;
          try {
            ref = gunzipSync(gz);
          } catch {
            ref = undefined;
          }
          if (ref) expect(Buffer.from(gunzip(gz)).equals(ref)).toBe(true);
          else expectFormatError(() => gunzip(gz));
        },
      ),
      { numRuns: runs, seed: 7 },
    );
    // FEXTRA, FNAME, FCOMMENT and FHCRC (zlib's gzipSync writes none of them).
    const body = new Uint8Array(deflateRawSync(Buffer.from('hello, hello, hello')));
    const head = [
      0x1f,
      0x8b,
      8,
      4 | 8 | 16 | 2,
      0,
      0,
      0,
      0,
      0,
      3,
      3,
      0,
      1,
      2,
      3,
      0x61,
      0,
      0x62,
      0,
      0xaa,
      0xbb,
    ];
    const crc = crc32(Buffer.from('hello, hello, hello'));
    const tail = [crc & 255, (crc >>> 8) & 255, (crc >>> 16) & 255, crc >>> 24, 19, 0, 0, 0];
    const file = new Uint8Array([...head, ...body, ...tail]);
    expect(new TextDecoder().decode(gunzip(file))).toBe('hello, hello, hello');
  });

  it('corrupt trailers, headers and streams are ERR_FORMAT', () => {
    const gz = new Uint8Array(gzipSync(sample(5000, 16, 3, 9)));
    const bad = (f: (b: Uint8Array) => void): Uint8Array => {
      const b = gz.slice();
      f(b);
      return b;
    };
    expect(() => gunzip(bad((b) => (b[b.length - 8] ^= 1)))).toThrow(/CRC-32 mismatch/);
    expect(() => gunzip(bad((b) => (b[b.length - 4] ^= 1)))).toThrow(/length trailer mismatch/);
    expect(() => gunzip(bad((b) => (b[2] = 7)))).toThrow(/unknown compression method 7/);
    expect(() => gunzip(bad((b) => (b[3] = 0x20)))).toThrow(/reserved gzip header flags/);
    expect(() => gunzip(gz.subarray(0, gz.length - 3))).toThrow(/truncated gzip trailer|truncated deflate/);
    expect(() => gunzip(gz.subarray(0, 5))).toThrow(/truncated gzip header/);
    expect(() => gunzip(new Uint8Array([1, 2, 3]))).toThrow(/not gzip data/);
    expect(() => gunzip(new Uint8Array([...gz, 1, 0]))).toThrow(/trailing bytes after the gzip data/);
    expect(gunzip(new Uint8Array([...gz, 0, 7, 0x1f]))).toEqual(gunzip(gz)); // zero padding ends the data
    const bomb = new Uint8Array(gzipSync(new Uint8Array(2 ** 22)));
    expect(() => gunzip(bomb, { maxOutputLength: 1000 })).toThrow(/inflates to more than 1000 bytes/);
  });
});

/**
 * One final dynamic block written bit by bit (RFC 1951 3.2.7): literal/length code lengths
 * `lit` (symbol -> bits, 257 symbols), one 1-bit distance code, the code lengths sent with a
 * complete code-length code (symbols 0..15, 4 bits each), then the literal symbols `syms`.
 */
function dynamicBlock(lit: Record<number, number>, syms: number[]): Uint8Array {
  const bytes: number[] = [];
  let acc = 0;
  let nbits = 0;
  const put = (value: number, n: number): void => {
    for (let i = 0; i < n; i++) {
      acc |= ((value >>> i) & 1) << nbits++;
      if (nbits === 8) {
        bytes.push(acc);
        acc = 0;
        nbits = 0;
      }
    }
  };
  const putCode = (code: number, len: number): void => {
    for (let i = len - 1; i >= 0; i--) put((code >>> i) & 1, 1);
  };
  const lengths = new Array(258).fill(0);
  for (const [s, l] of Object.entries(lit)) lengths[Number(s)] = l;
  lengths[257] = 1; // the distance code
  put(1, 1); // final
  put(2, 2); // dynamic
  put(0, 5); // 257 literal/length codes
  put(0, 5); // 1 distance code
  put(15, 4); // 19 code-length code lengths
  for (const s of [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]) put(s < 16 ? 4 : 0, 3);
  for (const l of lengths) putCode(l, 4); // canonical code of symbol s of 16 equal lengths is s
  // Canonical literal codes: by length, then by symbol.
  const order = Object.keys(lit)
    .map(Number)
    .sort((a, b) => lit[a] - lit[b] || a - b);
  const codes = new Map<number, number>();
  let code = 0;
  let prev = lit[order[0]];
  for (const s of order) {
    code <<= lit[s] - prev;
    prev = lit[s];
    codes.set(s, code++);
  }
  for (const s of syms) putCode(codes.get(s) as number, lit[s]);
  if (nbits > 0) bytes.push(acc);
  return new Uint8Array(bytes);
}
