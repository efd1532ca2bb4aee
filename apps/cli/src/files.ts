import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { QbnnError } from '@qbnn/core';

// Outputs are written by @qbnn/nn's writeFileAtomic (whole or not at all, stale temp files of
// interrupted saves removed); this is the synchronous reader of the cli's small JSON inputs.

/**
 * Reads and parses a JSON file of at most `maxBytes`, naming the flag on failure. The open does
 * not block (a FIFO is refused, not waited on) and the size is checked before anything is read.
 */
export function readJsonFile(path: string, flag: string, maxBytes: number): unknown {
  const fail = (why: string): never => {
    throw new QbnnError('ERR_ARG', `${flag} ${path}: ${why}`);
  };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return fail((err as Error).message);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) fail('not a regular file');
    if (st.size > maxBytes) fail(`${st.size} bytes, more than the ${maxBytes} such a file may have`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    for (let r = 1; n < buf.length && r > 0; n += r) r = readSync(fd, buf, n, buf.length - n, n);
    try {
      return JSON.parse(buf.toString('utf8', 0, n));
    } catch (err) {
      return fail((err as Error).message);
    }
  } finally {
    closeSync(fd);
  }
}
