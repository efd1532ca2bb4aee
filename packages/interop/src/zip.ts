import { inflateRaw, QbnnError } from '@qbnn/core';
import { crc32 } from '@qbnn/nn';

/** One file of a zip archive: its name and where its bytes are. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  crc: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const CENTRAL_MIN = 46;

function fail(msg: string): never {
  throw new QbnnError('ERR_FORMAT', `zip: ${msg}`);
}

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`);
  return Number(v);
}

/**
 * A read-only view of a zip archive held in memory (what `torch.save` writes). Every offset
 * and size read from the archive is checked against the buffer before it is used; encrypted
 * entries and compression methods other than stored and deflate are refused.
 */
export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.entries = this.readCentralDirectory();
  }

  /** Whether `bytes` start like a zip archive (a local file header). */
  static looksLikeZip(bytes: Uint8Array): boolean {
    return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4;
  }

  private findEocd(): number {
    const n = this.bytes.length;
    if (n < 22) fail(`${n} bytes is too short for an archive`);
    const stop = Math.max(0, n - 22 - 0xffff);
    for (let at = n - 22; at >= stop; at--) {
      if (this.view.getUint32(at, true) === EOCD_SIG && at + 22 + this.view.getUint16(at + 20, true) === n) {
        return at;
      }
    }
    return fail('no end-of-central-directory record');
  }

  private readCentralDirectory(): Map<string, ZipEntry> {
    const v = this.view;
    const n = this.bytes.length;
    const eocd = this.findEocd();
    let count = v.getUint16(eocd + 10, true);
    let cdSize = v.getUint32(eocd + 12, true);
    let cdOffset = v.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || v.getUint32(loc, true) !== ZIP64_LOCATOR_SIG) fail('zip64 locator missing');
      const z = u64(v, loc + 8, 'zip64 record offset');
      if (z + 56 > loc || v.getUint32(z, true) !== ZIP64_EOCD_SIG) fail('zip64 end record missing');
      count = u64(v, z + 32, 'entry count');
      cdSize = u64(v, z + 40, 'central directory size');
      cdOffset = u64(v, z + 48, 'central directory offset');
    }
    if (cdOffset + cdSize > n)
      fail(`central directory [${cdOffset}, +${cdSize}) lies outside the ${n}-byte file`);
    if (count * CENTRAL_MIN > cdSize)
      fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
    const entries = new Map<string, ZipEntry>();
    const end = cdOffset + cdSize;
    let at = cdOffset;
    const dec = new TextDecoder('utf-8', { fatal: true });
    for (let i = 0; i < count; i++) {
      if (at + CENTRAL_MIN > end || v.getUint32(at, true) !== CENTRAL_SIG)
        fail(`central entry ${i} is malformed`);
      const flags = v.getUint16(at + 8, true);
      if (flags & 1) fail('encrypted entries are not supported');
      const method = v.getUint16(at + 10, true);
      const crc = v.getUint32(at + 16, true);
      let compressedSize = v.getUint32(at + 20, true);
      let size = v.getUint32(at + 24, true);
      const nameLen = v.getUint16(at + 28, true);
      const extraLen = v.getUint16(at + 30, true);
      const commentLen = v.getUint16(at + 32, true);
      let localHeaderOffset = v.getUint32(at + 42, true);
      const next = at + CENTRAL_MIN + nameLen + extraLen + commentLen;
      if (next > end) fail(`central entry ${i} runs past the directory`);
      let name = '';
      try {
        name = dec.decode(this.bytes.subarray(at + CENTRAL_MIN, at + CENTRAL_MIN + nameLen));
      } catch {
        fail(`central entry ${i}: its name is not valid UTF-8`);
      }
      // Zip64 extended information: the 8-byte values replace the fields set to 0xffffffff, in order.
      let e = at + CENTRAL_MIN + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = v.getUint16(e, true);
        const len = v.getUint16(e + 2, true);
        if (e + 4 + len > extraEnd) fail(`entry '${name}': extra field overruns`);
        if (id === 1) {
          let p = e + 4;
          const take = (what: string): number => {
            if (p + 8 > e + 4 + len) fail(`entry '${name}': zip64 field too short`);
            const r = u64(v, p, what);
            p += 8;
            return r;
          };
          if (size === 0xffffffff) size = take('size');
          if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('header offset');
        }
        e += 4 + len;
      }
      if (method !== 0 && method !== 8)
        fail(`entry '${name}': compression method ${method} is not supported`);
      if (method === 0 && size !== compressedSize) fail(`entry '${name}': stored sizes disagree`);
      if (entries.has(name)) fail(`duplicate entry '${name}'`);
      entries.set(name, { name, method, compressedSize, size, crc, localHeaderOffset });
      at = next;
    }
    return entries;
  }

  /** The bytes of entry `name` (a view for stored entries), checked against its CRC-32. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) fail(`no entry '${name}'`);
    const v = this.view;
    const h = entry.localHeaderOffset;
    if (h + 30 > this.bytes.length || v.getUint32(h, true) !== LOCAL_SIG) {
      fail(`entry '${name}': local header missing`);
    }
    const start = h + 30 + v.getUint16(h + 26, true) + v.getUint16(h + 28, true);
    const stop = start + entry.compressedSize;
    if (stop > this.bytes.length) fail(`entry '${name}' [${start}, ${stop}) lies outside the file`);
    const raw = this.bytes.subarray(start, stop);
    let data: Uint8Array;
    if (entry.method === 0) data = raw;
    else {
      try {
        data = inflateRaw(raw, { maxOutputLength: entry.size, sizeHint: entry.size });
      } catch (err) {
        return fail(`entry '${name}': cannot inflate: ${(err as Error).message}`);
      }
      if (data.length !== entry.size)
        fail(`entry '${name}': inflated to ${data.length} bytes, expected ${entry.size}`);
    }
    if (crc32(data) !== entry.crc) fail(`entry '${name}': CRC-32 mismatch (corrupted file)`);
    return data;
  }
}
