import { closeSync, constants, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { QbnnError } from '@qbnn/core';
import { decodeIdx, encodeIdx, type IdxArray, type IdxDtype, MAX_IDX_BYTES } from './idx.js';

/**
 * Reads a regular file whole, synchronously: the open does not block (a FIFO with no writer is
 * refused, not waited on), anything but a regular file (FIFO, device, directory) is refused before
 * a byte is read, the size is checked against `maxBytes` first, and no more than the size seen
 * at open is read.
 */
export function readRegularFileSync(path: string, maxBytes: number, what: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new QbnnError('ERR_ARG', `${what}: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new QbnnError('ERR_ARG', `${what}: ${path} is not a regular file`);
    if (st.size > maxBytes) {
      throw new QbnnError(
        'ERR_FORMAT',
        `${what}: ${path} has ${st.size} bytes, more than the ${maxBytes} allowed`,
      );
    }
    const out = new Uint8Array(st.size);
    for (let n = 0; n < out.length; ) {
      const r = readSync(fd, out, n, out.length - n, n);
      if (r === 0) throw new QbnnError('ERR_FORMAT', `${what}: ${path} shrank while it was read`);
      n += r;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an IDX file, gunzipping it first when it starts with the gzip magic (whatever its name).
 * Only a regular file is read (a FIFO, a device or a directory is an ERR_ARG before any read),
 * and neither the file nor its gunzipped content may exceed `maxBytes` (default
 * {@link MAX_IDX_BYTES}): a gzip bomb stops at that size.
 *
 * @throws QbnnError ERR_ARG when the file cannot be read or is not a regular file; ERR_FORMAT
 *   when it is too large, the gzip stream is corrupt or truncated, or the IDX content is
 *   malformed (see {@link decodeIdx})
 */
export function readIdx(path: string, opts: { maxBytes?: number } = {}): IdxArray {
  const max = opts.maxBytes ?? MAX_IDX_BYTES;
  return decodeIdx(readRegularFileSync(path, max, 'readIdx'), path, { maxBytes: max });
}

/** Writes an IDX file, gzipped when `path` ends in `.gz`. */
export function writeIdx(
  path: string,
  data: ArrayLike<number>,
  shape: readonly number[],
  dtype: IdxDtype = 'uint8',
): void {
  const bytes = encodeIdx(data, shape, dtype);
  writeFileSync(path, path.endsWith('.gz') ? gzipSync(bytes) : bytes);
}
