import { describe, expect, test } from 'vitest';
import { QbnnError } from '../src/errors.js';
import { packedByteLength, packInts, unpackInts } from '../src/quant/index.js';

// The packed layout written out bit by bit (independent of the implementation's shifts and
// masks): value i's bit j (of its two's-complement / unsigned code) is stream bit i * bits + j,
// stream bit p is bit p % 8 of byte floor(p / 8).
function bruteForcePack(values: number[], bits: number, signed: boolean): number[] {
  const bytes = new Array<number>(Math.ceil((values.length * bits) / 8)).fill(0);
  values.forEach((v, i) => {
    const code = signed && v < 0 ? v + 2 ** bits : v;
    for (let j = 0; j < bits; j++) {
      const bit = Math.floor(code / 2 ** j) % 2;
      const p = i * bits + j;
      bytes[Math.floor(p / 8)] += bit * 2 ** (p % 8);
    }
  });
  return bytes;
}

function bruteForceUnpack(bytes: number[], length: number, bits: number, signed: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    let code = 0;
    for (let j = 0; j < bits; j++) {
      const p = i * bits + j;
      code += (Math.floor(bytes[Math.floor(p / 8)] / 2 ** (p % 8)) % 2) * 2 ** j;
    }
    out.push(signed && code >= 2 ** (bits - 1) ? code - 2 ** bits : code);
  }
  return out;
}

function range(bits: number, signed: boolean): [number, number] {
  return signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

/** Deterministic pseudo-random integers in [lo, hi]. */
function randomInts(seed: number, n: number, lo: number, hi: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof QbnnError ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

describe('packInts / unpackInts (sub-byte storage)', () => {
  for (let bits = 2; bits <= 8; bits++) {
    for (const signed of [true, false]) {
      const [lo, hi] = range(bits, signed);
      const name = `${bits}-bit ${signed ? 'signed' : 'unsigned'}`;

      test(`${name}: every value at every bit phase equals the bit-by-bit layout, and unpacks back`, () => {
        const all = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
        // a prefix of 0..7 values shifts where in a byte each value starts
        for (let phase = 0; phase < 8; phase++) {
          const values = [...randomInts(phase + 1, phase, lo, hi), ...all];
          const packed = packInts(values, bits, signed);
          expect(packed).toBeInstanceOf(Uint8Array);
          expect(Array.from(packed)).toEqual(bruteForcePack(values, bits, signed));
          const back = unpackInts(packed, values.length, bits, signed);
          expect(back).toBeInstanceOf(signed ? Int8Array : Uint8Array);
          expect(Array.from(back)).toEqual(values);
          expect(Array.from(back)).toEqual(bruteForceUnpack(Array.from(packed), values.length, bits, signed));
        }
      });

      test(`${name}: random bytes of every length 0..40 and odd long lengths unpack as the bit loop reads them`, () => {
        for (const length of [...Array.from({ length: 41 }, (_, i) => i), 127, 1001, 4099]) {
          const need = packedByteLength(length, bits);
          expect(need).toBe(Math.ceil((length * bits) / 8));
          const bytes = Uint8Array.from(randomInts(length * 7 + bits, need, 0, 255));
          const tail = (length * bits) % 8;
          if (tail !== 0) bytes[need - 1] &= (1 << tail) - 1; // the layout's zero padding
          const values = bruteForceUnpack(Array.from(bytes), length, bits, signed);
          expect(Array.from(unpackInts(bytes, length, bits, signed))).toEqual(values);
          expect(Array.from(packInts(values, bits, signed))).toEqual(Array.from(bytes));
          // into a caller's array, and from a view that does not start at its buffer's byte 0
          const shifted = new Uint8Array(need + 3);
          shifted.set(bytes, 3);
          const out = signed ? new Int8Array(length) : new Uint8Array(length);
          expect(unpackInts(shifted.subarray(3), length, bits, signed, out)).toBe(out);
          expect(Array.from(out)).toEqual(values);
        }
      });

      test(`${name}: out-of-range and non-integer values are refused with their index`, () => {
        for (const bad of [lo - 1, hi + 1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          const values = [lo, hi, bad];
          expect(codeOf(() => packInts(values, bits, signed))).toBe('ERR_ARG');
          expect(() => packInts(values, bits, signed)).toThrow(/values\[2\]/);
        }
      });
    }
  }

  test('bad bits, lengths, byte counts, padding and out arrays are typed errors', () => {
    for (const bits of [0, 1, 9, 16, 2.5, Number.NaN]) {
      expect(codeOf(() => packInts([0], bits, true))).toBe('ERR_ARG');
      expect(codeOf(() => unpackInts(new Uint8Array(1), 1, bits, true))).toBe('ERR_ARG');
      expect(codeOf(() => packedByteLength(1, bits))).toBe('ERR_ARG');
    }
    for (const length of [-1, 1.5, 2 ** 60]) {
      expect(codeOf(() => unpackInts(new Uint8Array(1), length, 4, true))).toBe('ERR_ARG');
    }
    // 5 values of 3 bits take 2 bytes, not 1 or 3
    expect(codeOf(() => unpackInts(new Uint8Array(1), 5, 3, false))).toBe('ERR_ARG');
    expect(() => unpackInts(new Uint8Array(3), 5, 3, false)).toThrow(/take 2 bytes, got 3/);
    // 15 bits used: bit 7 of byte 1 is padding and must be zero
    expect(() => unpackInts(Uint8Array.of(0, 0x80), 5, 3, false)).toThrow(/padding/);
    expect(Array.from(unpackInts(Uint8Array.of(0xff, 0x7f), 5, 3, false))).toEqual([7, 7, 7, 7, 7]);
    expect(codeOf(() => unpackInts(new Uint8Array(2), 5, 3, true, new Int8Array(4)))).toBe('ERR_ARG');
    expect(codeOf(() => unpackInts(new Uint8Array(2), 5, 3, true, new Uint8Array(5) as never))).toBe(
      'ERR_ARG',
    );
    expect(codeOf(() => unpackInts([1, 2] as never, 2, 8, false))).toBe('ERR_ARG');
  });
});
