import { describe, expect, it } from 'vitest';
import { crc32, decodeSafetensors, encodeSafetensors, type SafeTensor } from '../src/index.js';

const enc = new TextEncoder();

/** Builds a file from a raw header string and data bytes, the way the format defines it. */
function raw(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function sample(): Record<string, SafeTensor> {
  return {
    'w.f32': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -2, 3.25, Number.NaN, -0, 1e-40]) },
    'w.f64': { dtype: 'F64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
    'b.i32': { dtype: 'I32', shape: [3], data: Int32Array.from([-2147483648, 0, 2147483647]) },
    'q.i8': { dtype: 'I8', shape: [5], data: Int8Array.from([-128, -1, 0, 1, 127]) },
    'q.u8': { dtype: 'U8', shape: [1, 3], data: Uint8Array.from([0, 128, 255]) },
    'm.bool': { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
    'h.i16': { dtype: 'I16', shape: [1], data: Int16Array.from([-300]) },
    'e.i64': { dtype: 'I64', shape: [1], data: BigInt64Array.from([-5n]) },
    scalar: { dtype: 'F32', shape: [], data: Float32Array.from([7]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

const bytesOf = (t: SafeTensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('safetensors encoding', () => {
  it('writes the exact reference layout for a tiny file', () => {
    const out = encodeSafetensors(
      { t: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } },
      {},
      { checksum: false },
    );
    const header = '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expect(header.length).toBe(54);
    const expected = raw(`${header}  `, new Uint8Array(Float32Array.from([1, 2]).buffer));
    expect(Array.from(out)).toEqual(Array.from(expected));
    expect(Array.from(out.subarray(0, 8))).toEqual([56, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(out.subarray(out.length - 8))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
  });

  it('round-trips every dtype bit-exactly, metadata included, deterministically', () => {
    const t = sample();
    const meta = { arch: 'x', note: 'ünïcode ✓' };
    const out = encodeSafetensors(t, meta);
    expect((8 + Number(new DataView(out.buffer).getBigUint64(0, true))) % 8).toBe(0);
    const back = decodeSafetensors(out);
    expect(back.metadata).toMatchObject(meta);
    expect(back.metadata['qbnn.crc32']).toMatch(/^[0-9a-f]{8}$/);
    expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(t).sort());
    for (const [k, v] of Object.entries(t)) {
      expect(back.tensors[k].dtype).toBe(v.dtype);
      expect(back.tensors[k].shape).toEqual(v.shape);
      expect(Array.from(bytesOf(back.tensors[k]))).toEqual(Array.from(bytesOf(v)));
    }
    expect(Array.from(encodeSafetensors(back.tensors, back.metadata))).toEqual(Array.from(out));
    // Buffers are naturally aligned: larger elements first, each offset a multiple of its size.
    const header = JSON.parse(new TextDecoder().decode(out.subarray(8, 8 + Number(out[0]) + 256 * out[1])));
    for (const [k, v] of Object.entries(header)) {
      if (k === '__metadata__') continue;
      const e = v as { dtype: string; data_offsets: number[] };
      const size = { F64: 8, I64: 8, F32: 4, I32: 4, I16: 2 }[e.dtype] ?? 1;
      expect(e.data_offsets[0] % size).toBe(0);
    }
  });

  it('crc32 matches the zlib check value', () => {
    expect(crc32(enc.encode('123456789'))).toBe(0xcbf43926);
  });

  it('rejects bad inputs to the encoder', () => {
    expect(() => encodeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(
      /Float32Array of 3 elements/,
    );
    expect(() => encodeSafetensors({ a: { dtype: 'I8', shape: [1], data: new Uint8Array(1) } })).toThrow(
      /Int8Array/,
    );
  });
});

describe('safetensors validation', () => {
  const good = encodeSafetensors(sample(), { k: 'v' });
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  const fmt = (b: Uint8Array) => {
    try {
      decodeSafetensors(b);
    } catch (e) {
      expect((e as { code?: string }).code).toBe('ERR_FORMAT');
      return (e as Error).message;
    }
    return 'ok';
  };

  it('truncated files fail at every length', () => {
    for (const len of [0, 3, 7, 8, 9, 8 + n - 1, 8 + n, good.length - 1]) {
      expect(fmt(good.subarray(0, len))).toMatch(/truncated|too small/);
    }
    for (let len = 8 + n; len < good.length; len += 7)
      expect(fmt(good.subarray(0, len))).toMatch(/truncated/);
  });

  it('oversized files and huge header lengths fail', () => {
    const big = new Uint8Array(good.length + 4);
    big.set(good);
    expect(fmt(big)).toMatch(/4 bytes beyond the last tensor/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
    expect(fmt(huge)).toMatch(/exceeds/);
  });

  it('every single flipped bit in the header or data is detected', () => {
    let detected = 0;
    const survivedMeta: number[] = [];
    const total = good.length;
    for (let i = 0; i < total; i++) {
      for (const bit of [0x01, 0x10, 0x80]) {
        const bad = good.slice();
        bad[i] ^= bit;
        const r = fmt(bad);
        if (r !== 'ok') {
          detected++;
          continue;
        }
        // A flip may only go unnoticed where it leaves every tensor intact (a metadata byte) or
        // renames a tensor (which a strict state-dict load then rejects).
        const back = decodeSafetensors(bad);
        const orig = sample();
        let emptyShape = false;
        const names = Object.keys(back.tensors).sort().join();
        if (names === Object.keys(orig).sort().join()) {
          for (const [k, v] of Object.entries(orig)) {
            expect(Array.from(bytesOf(back.tensors[k]))).toEqual(Array.from(bytesOf(v)));
            // (an empty tensor's other extents can change: [0, 4] -> [0, 5] has no data either)
            if (v.data.length > 0) expect(back.tensors[k].shape).toEqual(v.shape);
            else if (back.tensors[k].shape.join() !== v.shape.join()) emptyShape = true;
          }
          if (!emptyShape) survivedMeta.push(i);
        }
      }
    }
    expect(detected).toBeGreaterThan(total * 3 * 0.9);
    // Only bytes inside the __metadata__ object can change without effect on the tensors.
    const text = new TextDecoder().decode(good.subarray(8, 8 + n));
    const metaEnd = 8 + text.indexOf('}');
    for (const i of survivedMeta) expect(i).toBeLessThan(metaEnd);
  });

  it('structural errors have clear messages', () => {
    const f32 = (k: number) => new Uint8Array(new Float32Array(k).buffer);
    expect(fmt(raw('[1,2]       '))).toMatch(/does not start with "\{"/);
    expect(fmt(raw('{"a":1,     '))).toMatch(/not valid JSON/);
    expect(fmt(raw('{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', f32(1)))).toMatch(
      /unknown dtype "F33"/,
    );
    expect(fmt(raw('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', f32(1)))).toMatch(
      /invalid shape/,
    );
    expect(fmt(raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', f32(1)))).toMatch(/needs 8/);
    expect(fmt(raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', f32(1)))).toMatch(
      /invalid data_offsets/,
    );
    expect(
      fmt(
        raw(
          '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
          f32(2),
        ),
      ),
    ).toMatch(/overlaps/);
    expect(fmt(raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(2)))).toMatch(
      /gap before tensor 'a'/,
    );
    expect(fmt(raw('{"__metadata__":{"a":1}}'))).toMatch(/not a string/);
    const bad = raw('{"a":1}');
    bad[9] = 0xff;
    expect(fmt(bad)).toMatch(/UTF-8/);
    expect(decodeSafetensors(raw('{}')).tensors).toEqual({});
  });
});
