import { QbnnError } from '../errors.js';
import { crc32 } from './crc32.js';

// A synchronous DEFLATE decoder (RFC 1951) and gzip reader (RFC 1952) that runs wherever
// JavaScript does: node:zlib is Node-only and the web's DecompressionStream is asynchronous,
// while zip entries and gzipped IDX files are read synchronously from bytes.

/** Default cap on the output of {@link inflateRaw} and {@link gunzip}: 1 GiB. */
export const MAX_INFLATE_BYTES = 2 ** 30;

/** Options of {@link inflateRaw} and {@link gunzip}. */
export interface InflateOptions {
  /** Refuse (ERR_FORMAT) an output longer than this many bytes; default {@link MAX_INFLATE_BYTES}. */
  maxOutputLength?: number;
  /** The expected output length when known (a zip entry's size): sizes the first buffer. */
  sizeHint?: number;
}

// Length symbols 257..285 and distance symbols 0..29: base values and extra bits.
const LEN_BASE = new Uint16Array([
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
  227, 258,
]);
const LEN_EXTRA = new Uint8Array([
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
]);
const DIST_BASE = new Uint16Array([
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
  6145, 8193, 12289, 16385, 24577,
]);
const DIST_EXTRA = new Uint8Array([
  0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
]);
/** The order in which a dynamic block sends the code lengths of the code-length alphabet. */
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/**
 * A Huffman decoding table indexed by the next `bits` input bits (least significant first):
 * entry = symbol << 4 | code length; 0 marks a bit pattern that starts no code.
 */
interface Huffman {
  table: Uint16Array;
  mask: number;
}

function fail(what: string, msg: string): never {
  throw new QbnnError('ERR_FORMAT', `${what}: ${msg}`);
}

/**
 * Builds the canonical Huffman table of `lengths[0..n)`. Refuses an over-subscribed code, and an
 * incomplete one as zlib does: allowed only for a literal/length or distance code whose longest
 * code has 1 bit (a single code).
 */
function huffman(lengths: Uint8Array, n: number, what: string, name: string): Huffman {
  const count = new Uint16Array(16);
  let max = 0;
  for (let s = 0; s < n; s++) {
    count[lengths[s]]++;
    if (lengths[s] > max) max = lengths[s];
  }
  count[0] = 0;
  let left = 1;
  for (let len = 1; len <= 15; len++) {
    left = (left << 1) - count[len];
    if (left < 0) fail(what, `over-subscribed ${name} code`);
  }
  if (max > 0 && left > 0 && (name === 'code-length' || max !== 1)) fail(what, `incomplete ${name} code`);
  const bits = Math.max(max, 1);
  const table = new Uint16Array(1 << bits);
  const next = new Uint16Array(16);
  for (let len = 1, code = 0; len <= 15; len++) {
    code = (code + count[len - 1]) << 1;
    next[len] = code;
  }
  for (let s = 0; s < n; s++) {
    const len = lengths[s];
    if (len === 0) continue;
    const code = next[len]++;
    let rev = 0;
    for (let b = 0; b < len; b++) rev |= ((code >>> b) & 1) << (len - 1 - b);
    const entry = (s << 4) | len;
    for (let i = rev; i < table.length; i += 1 << len) table[i] = entry;
  }
  return { table, mask: (1 << bits) - 1 };
}

let fixed: { lit: Huffman; dist: Huffman } | undefined;

function fixedTables(): { lit: Huffman; dist: Huffman } {
  if (!fixed) {
    const l = new Uint8Array(288);
    l.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
    fixed = { lit: huffman(l, 288, '', 'fixed'), dist: huffman(new Uint8Array(32).fill(5), 32, '', 'fixed') };
  }
  return fixed;
}

/** The growing output of a decode, never longer than `max`. */
class Output {
  buf: Uint8Array;
  len = 0;
  constructor(
    capacity: number,
    readonly max: number,
    private readonly what: string,
  ) {
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for `n` more bytes. */
  grow(n: number): Uint8Array {
    const need = this.len + n;
    if (need > this.max) fail(this.what, `the stream inflates to more than ${this.max} bytes`);
    const cap = Math.min(this.max, Math.max(need, this.buf.length * 2, 1024));
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
    return b;
  }

  result(): Uint8Array {
    return this.len === this.buf.length ? this.buf : this.buf.slice(0, this.len);
  }
}

/**
 * Decodes one DEFLATE stream of `src` starting at byte `start` into `out`; `src` carries at
 * least 8 bytes of padding after `end`, so the 3-byte bit window never reads outside it.
 * Returns the byte offset just past the stream.
 */
function inflateStream(src: Uint8Array, start: number, end: number, out: Output, what: string): number {
  const totalBits = end * 8;
  let pos = start * 8;
  const peek = (p: number): number =>
    (src[p >>> 3] | (src[(p >>> 3) + 1] << 8) | (src[(p >>> 3) + 2] << 16)) >>> (p & 7);
  let buf = out.buf;
  let o = out.len;
  let final = 0;
  const lengths = new Uint8Array(320);
  while (!final) {
    if (pos + 3 > totalBits) fail(what, 'truncated deflate stream');
    const head = peek(pos);
    pos += 3;
    final = head & 1;
    const type = (head >>> 1) & 3;
    if (type === 0) {
      let at = (pos + 7) >>> 3;
      if (at + 4 > end) fail(what, 'truncated deflate stream');
      const len = src[at] | (src[at + 1] << 8);
      if ((src[at + 2] | (src[at + 3] << 8)) !== (len ^ 0xffff)) fail(what, 'invalid stored block lengths');
      at += 4;
      if (at + len > end) fail(what, 'truncated deflate stream');
      if (o + len > buf.length) {
        out.len = o;
        buf = out.grow(len);
      }
      buf.set(src.subarray(at, at + len), o);
      o += len;
      pos = (at + len) * 8;
      continue;
    }
    let lit: Huffman;
    let dist: Huffman;
    if (type === 1) ({ lit, dist } = fixedTables());
    else if (type === 2) {
      if (pos + 14 > totalBits) fail(what, 'truncated deflate stream');
      const h = peek(pos);
      pos += 14;
      const nlit = (h & 31) + 257;
      const ndist = ((h >>> 5) & 31) + 1;
      const ncl = ((h >>> 10) & 15) + 4;
      if (nlit > 286 || ndist > 30) fail(what, 'too many length or distance symbols');
      if (pos + 3 * ncl > totalBits) fail(what, 'truncated deflate stream');
      const cl = new Uint8Array(19);
      for (let i = 0; i < ncl; i++, pos += 3) cl[CL_ORDER[i]] = peek(pos) & 7;
      const clCode = huffman(cl, 19, what, 'code-length');
      lengths.fill(0);
      for (let i = 0; i < nlit + ndist; ) {
        const e = clCode.table[peek(pos) & clCode.mask];
        if (e === 0) fail(what, 'invalid code-length code');
        pos += e & 15;
        const sym = e >>> 4;
        if (sym < 16) lengths[i++] = sym;
        else {
          let rep: number;
          let val = 0;
          if (sym === 16) {
            if (i === 0) fail(what, 'repeat of a code length with none before it');
            val = lengths[i - 1];
            rep = 3 + (peek(pos) & 3);
            pos += 2;
          } else if (sym === 17) {
            rep = 3 + (peek(pos) & 7);
            pos += 3;
          } else {
            rep = 11 + (peek(pos) & 127);
            pos += 7;
          }
          if (i + rep > nlit + ndist) fail(what, 'code lengths repeat past their end');
          lengths.fill(val, i, i + rep);
          i += rep;
        }
        if (pos > totalBits) fail(what, 'truncated deflate stream');
      }
      if (lengths[256] === 0) fail(what, 'no end-of-block code');
      lit = huffman(lengths, nlit, what, 'literal/length');
      dist = huffman(lengths.subarray(nlit), ndist, what, 'distance');
    } else return fail(what, 'invalid block type 3');

    const lt = lit.table;
    const lm = lit.mask;
    const dt = dist.table;
    const dm = dist.mask;
    for (;;) {
      const e = lt[peek(pos) & lm];
      if (e === 0) fail(what, 'invalid literal/length code');
      pos += e & 15;
      const sym = e >>> 4;
      if (sym < 256) {
        if (o >= buf.length) {
          out.len = o;
          buf = out.grow(1);
        }
        buf[o++] = sym;
      } else if (sym === 256) {
        break;
      } else {
        const li = sym - 257;
        if (li >= 29) fail(what, 'invalid literal/length symbol');
        const lx = LEN_EXTRA[li];
        const len = LEN_BASE[li] + (peek(pos) & ((1 << lx) - 1));
        pos += lx;
        const d = dt[peek(pos) & dm];
        if (d === 0) fail(what, 'invalid distance code');
        pos += d & 15;
        const di = d >>> 4;
        if (di >= 30) fail(what, 'invalid distance symbol');
        const dx = DIST_EXTRA[di];
        const back = DIST_BASE[di] + (peek(pos) & ((1 << dx) - 1));
        pos += dx;
        if (back > o) fail(what, 'distance too far back');
        if (o + len > buf.length) {
          out.len = o;
          buf = out.grow(len);
        }
        for (let k = o - back, stop = o + len; o < stop; ) buf[o++] = buf[k++];
      }
      if (pos > totalBits) fail(what, 'truncated deflate stream');
    }
  }
  if (pos > totalBits) fail(what, 'truncated deflate stream');
  out.len = o;
  return (pos + 7) >>> 3;
}

function checkBytes(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new QbnnError('ERR_ARG', `${what}: the bytes must be a Uint8Array, got ${String(bytes)}`);
  }
}

function checkMax(max: number, what: string): number {
  if (!Number.isSafeInteger(max) || max < 0) {
    throw new QbnnError('ERR_ARG', `${what}: maxOutputLength must be a non-negative integer, got ${max}`);
  }
  return max;
}

/**
 * `bytes` copied with 8 zero bytes after them: a symbol starts at most at the end of the input
 * and reads at most 48 bits plus the 3-byte window past it, so no read leaves the array.
 */
function padded(bytes: Uint8Array): Uint8Array {
  const p = new Uint8Array(bytes.length + 8);
  p.set(bytes);
  return p;
}

/** Deflate's largest expansion is 1032:1 (258-byte matches of 2 bits): caps a size hint read from the input. */
function firstCapacity(inputLength: number, hint: number, max: number): number {
  return Math.max(0, Math.min(max, hint, inputLength * 1032 + 1024));
}

/**
 * Decompresses a raw DEFLATE stream (RFC 1951, what zip entries of method 8 hold), as
 * `zlib.inflateRawSync`, in any JavaScript engine. Bytes after the end of the stream are ignored.
 *
 * @throws QbnnError ERR_FORMAT on a corrupt or truncated stream or an output longer than
 *   `maxOutputLength`; ERR_ARG when `bytes` is not a Uint8Array
 */
export function inflateRaw(bytes: Uint8Array, options: InflateOptions = {}): Uint8Array {
  const what = 'inflateRaw';
  checkBytes(bytes, what);
  const max = checkMax(options.maxOutputLength ?? MAX_INFLATE_BYTES, what);
  const out = new Output(firstCapacity(bytes.length, options.sizeHint ?? bytes.length * 4, max), max, what);
  inflateStream(padded(bytes), 0, bytes.length, out, what);
  return out.result();
}

/** True when `bytes` starts with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip data (RFC 1952), as `zlib.gunzipSync`, in any JavaScript engine: every
 * member of a multi-member file in turn, each checked against its CRC-32 and length trailer.
 *
 * @throws QbnnError ERR_FORMAT on a bad header, a corrupt or truncated stream, a trailer
 *   mismatch, trailing bytes that are neither a gzip member nor zero padding, or an output longer than
 *   `maxOutputLength`; ERR_ARG when `bytes` is not a Uint8Array
 */
export function gunzip(bytes: Uint8Array, options: InflateOptions = {}): Uint8Array {
  const what = 'gunzip';
  checkBytes(bytes, what);
  const max = checkMax(options.maxOutputLength ?? MAX_INFLATE_BYTES, what);
  const n = bytes.length;
  const isize =
    n >= 4 ? (bytes[n - 4] | (bytes[n - 3] << 8) | (bytes[n - 2] << 16) | (bytes[n - 1] << 24)) >>> 0 : 0;
  const out = new Output(firstCapacity(n, options.sizeHint ?? isize, max), max, what);
  const src = padded(bytes);
  let at = 0;
  do {
    if (!isGzip(bytes.subarray(at)))
      fail(what, at === 0 ? 'not gzip data (no 1f 8b magic)' : 'trailing bytes after the gzip data');
    if (at + 10 > n) fail(what, 'truncated gzip header');
    if (bytes[at + 2] !== 8) fail(what, `unknown compression method ${bytes[at + 2]}`);
    const flags = bytes[at + 3];
    if (flags & 0xe0) fail(what, 'reserved gzip header flags are set');
    let p = at + 10;
    if (flags & 4) {
      if (p + 2 > n) fail(what, 'truncated gzip header');
      p += 2 + (bytes[p] | (bytes[p + 1] << 8));
    }
    for (const bit of [8, 16]) {
      if (!(flags & bit)) continue;
      while (p < n && bytes[p] !== 0) p++;
      p++;
    }
    if (flags & 2) p += 2;
    if (p > n) fail(what, 'truncated gzip header');
    const from = out.len;
    at = inflateStream(src, p, n, out, what);
    if (at + 8 > n) fail(what, 'truncated gzip trailer');
    const crc = (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
    const size = (bytes[at + 4] | (bytes[at + 5] << 8) | (bytes[at + 6] << 16) | (bytes[at + 7] << 24)) >>> 0;
    if (crc32(out.buf.subarray(from, out.len)) !== crc) fail(what, 'CRC-32 mismatch (corrupt data)');
    if (size !== (out.len - from) % 2 ** 32) fail(what, 'length trailer mismatch (corrupt data)');
    at += 8;
    // A zero byte after a member is padding (tar pads so): the data end there, as zlib's do in Node.
  } while (at < n && bytes[at] !== 0);
  return out.result();
}
