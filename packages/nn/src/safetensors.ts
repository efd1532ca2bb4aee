import { crc32, QbnnError } from '@qbnn/core';

/** CRC-32 of bytes (zlib's): the one of `@qbnn/core`, re-exported beside the checkpoint format that uses it. */
export { crc32 };

/** Element types of the safetensors format that this reader and writer support. */
export type SafeDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

/** Typed arrays that back each dtype (F16 and BF16 are raw 16-bit patterns). */
export type SafeData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** One tensor: dtype, shape (row-major) and its elements. */
export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: SafeData;
}

/** A decoded file: tensors by name and the `__metadata__` string map. */
export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

type Ctor = { new (b: ArrayBuffer): SafeData; BYTES_PER_ELEMENT: number; name: string };

const DTYPES: Record<SafeDtype, Ctor> = {
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
};

/** Bytes per element of a dtype. */
export function dtypeSize(d: SafeDtype): number {
  return DTYPES[d].BYTES_PER_ELEMENT;
}

/** Largest header accepted (the reference implementation's limit: 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(msg: string): never {
  throw new QbnnError('ERR_FORMAT', `safetensors: ${msg}`);
}

function checkLe(): void {
  if (!LITTLE_ENDIAN)
    throw new QbnnError('ERR_UNSUPPORTED', 'safetensors: big-endian hosts are not supported');
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Metadata key holding the CRC-32 of the data section (hex), written by {@link encodeSafetensors}. */
export const CRC_KEY = 'qbnn.crc32';

/** Options of {@link encodeSafetensors}. */
export interface EncodeOptions {
  /** Add `qbnn.crc32` to the metadata so corrupted payload bytes are detected (default true). */
  checksum?: boolean;
}

/**
 * Serialises tensors into the safetensors format: an 8-byte little-endian header length N,
 * N bytes of JSON header (`{"__metadata__": {...}, name: {dtype, shape, data_offsets}}`, padded
 * with spaces so the data starts 8-byte aligned, as the reference implementation does), then
 * the raw little-endian buffers. Tensors are laid out by decreasing element size then name, so
 * every buffer is naturally aligned. Deterministic: the same input gives the same bytes.
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
  opts: EncodeOptions = {},
): Uint8Array {
  checkLe();
  const names = Object.keys(tensors).sort((a, b) => {
    const d = dtypeSize(tensors[b].dtype) - dtypeSize(tensors[a].dtype);
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const name of names) {
    if (name === '__metadata__') fail('a tensor cannot be named __metadata__');
    const t = tensors[name];
    const ctor = DTYPES[t.dtype];
    if (!ctor) fail(`tensor '${name}' has unsupported dtype ${String(t.dtype)}`);
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) fail(`tensor '${name}' has an invalid shape [${t.shape}]`);
    }
    if (!(t.data instanceof ctor) || t.data.length !== numel(t.shape)) {
      fail(
        `tensor '${name}': data must be a ${ctor.name} of ${numel(t.shape)} elements (${t.dtype} [${t.shape}])`,
      );
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') fail(`metadata '${k}' must be a string`);
    meta[k] = v;
  }
  if (opts.checksum ?? true) {
    let c = 0;
    for (const p of parts) c = crc32(p, c);
    meta[CRC_KEY] = c.toString(16).padStart(8, '0');
  }
  const json = JSON.stringify(Object.keys(meta).length > 0 ? { __metadata__: meta, ...header } : header);
  let hbytes = new TextEncoder().encode(json);
  const pad = (8 - (hbytes.length % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(hbytes.length + pad).fill(0x20);
    padded.set(hbytes);
    hbytes = padded;
  }
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let at = 8 + hbytes.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The header length N of a safetensors file from its first 8 bytes, checked against the file's
 * real size and {@link MAX_HEADER_BYTES} before the header is read (ERR_FORMAT otherwise).
 * File readers call it on the first bytes alone, so an absurd N never sizes a read.
 */
export function headerLength(head: Uint8Array, fileSize: number): number {
  if (head.length < 8 || fileSize < 8) {
    fail(`truncated: ${fileSize} bytes, the header length alone needs 8`);
  }
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (n < 2) fail(`header length ${n} is too small`);
  if (8 + n > fileSize) fail(`truncated: header length ${n} but only ${fileSize - 8} bytes follow`);
  return n;
}

interface Entry {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses and validates a safetensors buffer: header length within the buffer and under
 * {@link MAX_HEADER_BYTES}, UTF-8 JSON object, known dtypes, non-negative integer shapes,
 * offsets whose length matches dtype x shape, buffers contiguous from 0 without gaps or
 * overlap and exactly covering the data section, and the `qbnn.crc32` checksum when present.
 * Any violation is a QbnnError `ERR_FORMAT` naming the problem. The tensors are copies.
 */
export function decodeSafetensors(buf: Uint8Array): SafetensorsFile {
  checkLe();
  if (!(buf instanceof Uint8Array)) {
    throw new QbnnError('ERR_ARG', `safetensors: the input must be a Uint8Array, got ${String(buf)}`);
  }
  const n = headerLength(buf, buf.length);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail('header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header is not a JSON object');
  const dataLen = buf.length - 8 - n;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== 'object' || raw === null) fail(`tensor '${name}' entry is not an object`);
    const {
      dtype,
      shape,
      data_offsets: off,
    } = raw as { dtype: unknown; shape: unknown; data_offsets: unknown };
    if (typeof dtype !== 'string' || !(dtype in DTYPES))
      fail(`tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      off[0] > off[1]
    ) {
      fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const size = numel(shape) * dtypeSize(dtype as SafeDtype);
    if (off[1] - off[0] !== size) {
      fail(
        `tensor '${name}': data_offsets span ${off[1] - off[0]} bytes but ${dtype} [${shape}] needs ${size}`,
      );
    }
    entries.push({ name, dtype: dtype as SafeDtype, shape: shape as number[], begin: off[0], end: off[1] });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) {
      fail(
        e.begin < pos
          ? `tensor '${e.name}' overlaps the previous tensor (starts at ${e.begin}, previous ends at ${pos})`
          : `gap before tensor '${e.name}' (starts at ${e.begin}, previous ends at ${pos})`,
      );
    }
    pos = e.end;
  }
  if (pos !== dataLen) {
    fail(
      pos > dataLen
        ? `truncated: tensors need ${pos} data bytes, the file has ${dataLen}`
        : `the file has ${dataLen - pos} bytes beyond the last tensor (oversized)`,
    );
  }
  const data = buf.subarray(8 + n);
  const want = metadata[CRC_KEY];
  if (want !== undefined) {
    const got = crc32(data).toString(16).padStart(8, '0');
    if (got !== want.toLowerCase())
      fail(`checksum mismatch (stored ${want}, computed ${got}): the data is corrupted`);
  }
  const tensors: Record<string, SafeTensor> = {};
  for (const e of entries) {
    const copy = data.slice(e.begin, e.end).buffer;
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: new DTYPES[e.dtype](copy) };
  }
  return { tensors, metadata };
}
