import { gunzip, isGzip, QbnnError } from '@qbnn/core';

export { isGzip };

/**
 * The element types of the IDX format (LeCun's MNIST file format), keyed by the type byte of
 * the magic number: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
 * Multi-byte values are stored big-endian.
 */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** A decoded IDX array: row-major data of `shape` (the dims of the header). */
export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const DTYPES: Record<number, { dtype: IdxDtype; bytes: number }> = {
  8: { dtype: 'uint8', bytes: 1 },
  9: { dtype: 'int8', bytes: 1 },
  11: { dtype: 'int16', bytes: 2 },
  12: { dtype: 'int32', bytes: 4 },
  13: { dtype: 'float32', bytes: 4 },
  14: { dtype: 'float64', bytes: 8 },
};
const TYPE_BYTE: Record<IdxDtype, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

/**
 * Decodes an IDX buffer (plain, not gzipped). Checks the magic number (two zero bytes, a known
 * type byte, a dimension count of 1 to 255), that the header holds every dimension, and that the
 * payload is exactly `prod(dims) * sizeof(dtype)` bytes.
 *
 * @param bytes - the file contents
 * @param source - a name for error messages (the file path)
 * @throws QbnnError ERR_FORMAT on a bad magic number, an unknown type, or a truncated or overlong buffer
 */
export function parseIdx(bytes: Uint8Array, source = 'IDX buffer'): IdxArray {
  if (!(bytes instanceof Uint8Array)) {
    throw new QbnnError('ERR_ARG', `${source}: the IDX bytes must be a Uint8Array, got ${String(bytes)}`);
  }
  if (bytes.length < 4) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${source}: truncated IDX header: ${bytes.length} bytes, need at least 4 (magic number)`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const hint = isGzip(bytes) ? ' (the buffer is gzipped: gunzip it first or use readIdx)' : '';
    throw new QbnnError(
      'ERR_FORMAT',
      `${source}: not an IDX file: magic number must start with two zero bytes, got 0x${hex(bytes[0])}${hex(bytes[1])}${hint}`,
    );
  }
  const t = DTYPES[bytes[2]];
  if (!t) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${source}: unknown IDX type byte 0x${hex(bytes[2])} (expected 08, 09, 0b, 0c, 0d or 0e)`,
    );
  }
  const ndim = bytes[3];
  if (ndim === 0) throw new QbnnError('ERR_FORMAT', `${source}: IDX dimension count is 0, expected 1 to 255`);
  const header = 4 + 4 * ndim;
  if (bytes.length < header) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${source}: truncated IDX header: ${ndim} dims need ${header} header bytes, the file has ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const n = view.getUint32(4 + 4 * d, false);
    shape.push(n);
    count *= n;
  }
  const expected = count * t.bytes;
  const found = bytes.length - header;
  if (found < expected) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${source}: truncated IDX data: shape [${shape.join(', ')}] of ${t.dtype} needs ${expected} bytes after the header, found ${found}`,
    );
  }
  if (found > expected) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${source}: ${found - expected} trailing bytes after IDX data of shape [${shape.join(', ')}] (${t.dtype}, ${expected} bytes expected)`,
    );
  }
  return { dtype: t.dtype, shape, data: decode(t.dtype, bytes, header, count, view) };
}

function decode(dtype: IdxDtype, bytes: Uint8Array, off: number, n: number, v: DataView): IdxArray['data'] {
  switch (dtype) {
    // Uint8Array's own slice copies; a Node Buffer's slice is a view of its (pooled) memory.
    case 'uint8':
      return Uint8Array.prototype.slice.call(bytes, off, off + n);
    case 'int8':
      return new Int8Array(Uint8Array.prototype.slice.call(bytes, off, off + n).buffer);
    case 'int16': {
      const a = new Int16Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getInt16(off + 2 * i, false);
      return a;
    }
    case 'int32': {
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getInt32(off + 4 * i, false);
      return a;
    }
    case 'float32': {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getFloat32(off + 4 * i, false);
      return a;
    }
    case 'float64': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getFloat64(off + 8 * i, false);
      return a;
    }
  }
}

/** Largest IDX content accepted, gzipped or after gunzip (1 GiB; Fashion-MNIST is 47 MB). */
export const MAX_IDX_BYTES = 2 ** 30;

/**
 * Gunzips `raw` when it is gzipped, else returns it; runs in any JavaScript engine (the inflate
 * of `@qbnn/core`). The output stops at `maxBytes` (default {@link MAX_IDX_BYTES}).
 * @throws QbnnError ERR_FORMAT on a corrupt stream or an output larger than `maxBytes`
 */
export function maybeGunzip(raw: Uint8Array, source = 'buffer', maxBytes = MAX_IDX_BYTES): Uint8Array {
  if (!(raw instanceof Uint8Array)) {
    throw new QbnnError('ERR_ARG', `${source}: the bytes must be a Uint8Array, got ${String(raw)}`);
  }
  if (!isGzip(raw)) return raw;
  try {
    return gunzip(raw, { maxOutputLength: maxBytes });
  } catch (e) {
    const msg = (e as Error).message.replace(/^gunzip: /, '');
    if (/inflates to more than/.test(msg)) {
      throw new QbnnError('ERR_FORMAT', `${source}: the gzip stream inflates to more than ${maxBytes} bytes`);
    }
    throw new QbnnError('ERR_FORMAT', `${source}: corrupt or truncated gzip stream: ${msg}`);
  }
}

/**
 * Decodes IDX bytes, gunzipping them first when they start with the gzip magic: what
 * {@link readIdx} of '@qbnn/data/node' does after reading a file, for bytes from anywhere (a
 * `fetch` response, an upload). Neither the bytes nor their gunzipped content may exceed
 * `maxBytes` (default {@link MAX_IDX_BYTES}).
 *
 * @throws QbnnError ERR_FORMAT when the gzip stream or the IDX content is malformed or too large
 */
export function decodeIdx(
  bytes: Uint8Array,
  source = 'IDX buffer',
  opts: { maxBytes?: number } = {},
): IdxArray {
  const max = opts.maxBytes ?? MAX_IDX_BYTES;
  if (bytes instanceof Uint8Array && bytes.length > max) {
    throw new QbnnError('ERR_FORMAT', `${source}: ${bytes.length} bytes, more than the ${max} allowed`);
  }
  return parseIdx(maybeGunzip(bytes, source, max), source);
}

/**
 * Encodes an array as IDX bytes (big-endian header and values).
 *
 * @param data - row-major values, `prod(shape)` of them
 * @param shape - 1 to 255 dims, each below 2^32
 * @param dtype - the element type; values are converted as a typed array of that type would
 */
export function encodeIdx(
  data: ArrayLike<number>,
  shape: readonly number[],
  dtype: IdxDtype = 'uint8',
): Uint8Array {
  if (!(dtype in TYPE_BYTE)) throw new QbnnError('ERR_ARG', `encodeIdx: unknown dtype ${String(dtype)}`);
  if (shape.length < 1 || shape.length > 255) {
    throw new QbnnError('ERR_ARG', `encodeIdx: shape must have 1 to 255 dims, got ${shape.length}`);
  }
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new QbnnError(
        'ERR_ARG',
        `encodeIdx: dims must be integers in [0, 2^32), got [${shape.join(', ')}]`,
      );
    }
    count *= d;
  }
  if (data.length !== count) {
    throw new QbnnError(
      'ERR_SHAPE',
      `encodeIdx: shape [${shape.join(', ')}] holds ${count} values, data has ${data.length}`,
    );
  }
  const bytes = DTYPES[TYPE_BYTE[dtype]].bytes;
  const header = 4 + 4 * shape.length;
  const out = new Uint8Array(header + count * bytes);
  const v = new DataView(out.buffer);
  out[2] = TYPE_BYTE[dtype];
  out[3] = shape.length;
  for (let i = 0; i < shape.length; i++) v.setUint32(4 + 4 * i, shape[i], false);
  for (let i = 0; i < count; i++) {
    const o = header + i * bytes;
    const x = data[i];
    switch (dtype) {
      case 'uint8':
        v.setUint8(o, x);
        break;
      case 'int8':
        v.setInt8(o, x);
        break;
      case 'int16':
        v.setInt16(o, x, false);
        break;
      case 'int32':
        v.setInt32(o, x, false);
        break;
      case 'float32':
        v.setFloat32(o, x, false);
        break;
      case 'float64':
        v.setFloat64(o, x, false);
        break;
    }
  }
  return out;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
