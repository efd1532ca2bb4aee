import { referenceKernels } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { addon } from '../src/binding.js';
import { nativeKernels as nat, nativeAvailable } from '../src/index.js';

// Every entry point validates before touching memory: wrong input is a thrown error, never a
// crash. Checked through the provider (QbnnError) and against the raw addon (TypeError /
// RangeError from C++), so the native checks hold even for a caller that bypasses the wrapper.
describe.skipIf(!nativeAvailable)('argument validation', () => {
  const w = new Int8Array(6 * 10);
  const a = new Uint8Array(3 * 10);
  const base = { a, m: 3, aScale: 0.1, aZeroPoint: 0, wScale: 0.1, output: { kind: 'i32' } as const };

  test('provider: lengths, types, foreign and disposed packs', () => {
    const p = nat.packWeights(w, 6, 10, 0);
    expect(() => nat.packWeights(w, 6, 11, 0)).toThrow(/length/);
    expect(() => nat.packWeights(new Uint8Array(60) as never, 6, 10, 0)).toThrow(/Int8Array/);
    expect(() => nat.packWeights(w, 6, 10, 300)).toThrow(/zeroPoint/);
    expect(() => nat.qgemm({ ...base, a: new Uint8Array(29), w: p })).toThrow(/length/);
    expect(() => nat.qgemm({ ...base, m: 4, w: p })).toThrow(/length/);
    expect(() => nat.qgemm({ ...base, a: new Int8Array(30) as never, w: p })).toThrow(/Uint8Array/);
    expect(() => nat.qgemm({ ...base, bias: new Int32Array(5), w: p })).toThrow(/bias/);
    expect(() => nat.qgemm({ ...base, out: new Int32Array(17), w: p })).toThrow(/length/);
    expect(() => nat.qgemm({ ...base, out: new Float32Array(18), w: p })).toThrow(/Int32Array/);
    expect(() => nat.qgemm({ ...base, wScale: [1, 2], w: p })).toThrow(/wScale/);
    expect(() => nat.qgemm({ ...base, aScale: Number.NaN, w: p })).toThrow(/aScale/);
    expect(() => nat.qgemm({ ...base, w: referenceKernels.packWeights(w, 6, 10, 0) })).toThrow(
      /provider 'js'/,
    );
    expect(() => nat.qgemm({ ...base, w: { ...p } })).toThrow(/packWeights/);
    expect(() => nat.qnormal({ key: [1, 2], position: -1, out: new Int8Array(3) })).toThrow(/position/);
    expect(() => nat.qnormal({ key: [1, 2], position: 0, out: new Uint8Array(3) as never })).toThrow(
      /Int8Array/,
    );
    expect(nat.qgemm({ ...base, w: p })).toHaveLength(18);
    p.dispose?.();
    expect(() => nat.qgemm({ ...base, w: p })).toThrow(/disposed/);
  });

  test('raw addon: the C++ checks catch what the wrapper would', () => {
    const raw = addon!;
    const p = raw.pack(w, 6, 10, new Int32Array(6));
    const out = new Int32Array(18);
    expect(() => raw.pack(w, 6, 11, new Int32Array(6))).toThrow(RangeError);
    expect(() => raw.pack(w, 6, 10, new Int32Array(5))).toThrow(RangeError);
    expect(() => raw.pack(a as never, 6, 5, new Int32Array(6))).toThrow(TypeError);
    expect(() => raw.qgemm(new Uint8Array(29), 3, 10, 0, p.handle, null, 2, null, 0, false, out)).toThrow(
      RangeError,
    );
    expect(() => raw.qgemm(a, 3, 9, 0, p.handle, null, 2, null, 0, false, out)).toThrow(RangeError);
    expect(() => raw.qgemm(a, 3, 10, 0, {}, null, 2, null, 0, false, out)).toThrow(TypeError);
    expect(() => raw.qgemm(a, 3, 10, 0, p.handle, null, 2, null, 0, false, new Int32Array(17))).toThrow(
      RangeError,
    );
    expect(() =>
      raw.qgemm(a, 3, 10, 0, p.handle, null, 0, new Float64Array(5), 0, false, new Uint8Array(18)),
    ).toThrow(RangeError);
    expect(() =>
      raw.qgemm(
        a,
        3,
        10,
        0,
        p.handle,
        null,
        0,
        new Float64Array(6).fill(Number.NaN),
        0,
        false,
        new Uint8Array(18),
      ),
    ).toThrow(/finite/);
    expect(() => raw.qgemm(a, 3, 10, 0, p.handle, new Int32Array(2), 2, null, 0, false, out)).toThrow(
      RangeError,
    );
    expect(() => raw.qgemm(a, 1.5, 10, 0, p.handle, null, 2, null, 0, false, out)).toThrow(RangeError);
    expect(() => raw.qgemm(a, 3, 10, 256, p.handle, null, 2, null, 0, false, out)).toThrow(RangeError);
    expect(() =>
      raw.qconv2d(
        new Uint8Array(10),
        Int32Array.of(1, 1, 4, 4),
        0,
        [p.handle],
        Int32Array.of(6, 1, 2, 5),
        Int32Array.of(1, 1, 0, 0, 1, 1, 1),
        null,
        2,
        null,
        0,
        false,
        out,
      ),
    ).toThrow(RangeError);
    const huge = 2 ** 31 - 1;
    expect(() =>
      raw.qconv2d(
        new Uint8Array(16),
        Int32Array.of(1, 1, 4, 4),
        0,
        [p.handle],
        Int32Array.of(6, huge, huge, huge),
        Int32Array.of(1, 1, 0, 0, huge, huge, 1),
        null,
        2,
        null,
        0,
        false,
        out,
      ),
    ).toThrow(RangeError);
    expect(() => raw.qnormal(1, 2, 0, new Uint8Array(4) as never)).toThrow(TypeError);
    expect(() => raw.qnormal(2 ** 32, 2, 0, new Int8Array(4))).toThrow(RangeError);
    expect(() => raw.setQnormalTable(new Uint32Array(254))).toThrow(RangeError);
    raw.dispose(p.handle);
    expect(() => raw.qgemm(a, 3, 10, 0, p.handle, null, 2, null, 0, false, out)).toThrow(/disposed/);
    expect(() => raw.unpack(p.handle)).toThrow(/disposed/);
  });
});
