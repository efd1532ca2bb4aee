import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { QbnnError } from '@qbnn/core';

// The two ends of every file qbnn saves and loads: a reader that refuses what is not a regular
// file before reading and never reads past the size it saw, and an atomic writer whose
// interrupted runs are cleaned up by the next save into the same folder.

/** Options of {@link readRegularFile}. */
export interface ReadFileOptions {
  /** Most bytes accepted: a larger file is refused before anything is read. */
  maxBytes?: number;
  /** What the file is, for error messages (default 'file'). */
  what?: string;
  /**
   * Called with the first bytes (at most `headBytes`) before the rest is read, to refuse a file
   * from its header alone (the safetensors header length is checked this way).
   */
  checkHead?: (head: Uint8Array, size: number) => void;
  /** How many leading bytes `checkHead` sees (default 8). */
  headBytes?: number;
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      throw new QbnnError(
        'ERR_FORMAT',
        `${what}: the file shrank while it was read (${position + done} bytes)`,
      );
    }
    done += bytesRead;
  }
}

/** What a file that is not a regular file is, for messages. */
function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return st.isSocket() ? 'a socket' : 'not a regular file';
}

/**
 * Reads a whole regular file. The open does not block (a FIFO with no writer is refused, not
 * waited on); FIFOs, devices (`/dev/zero`), sockets and directories are refused with an ERR_ARG
 * QbnnError before any byte is read; the size seen at open is checked against `maxBytes`; and
 * never more than that size is read, so a file that grows meanwhile cannot grow the buffer.
 */
export async function readRegularFile(path: string, opts: ReadFileOptions = {}): Promise<Uint8Array> {
  const what = `${opts.what ?? 'file'} ${path}`;
  if (typeof path !== 'string' || path === '') {
    throw new QbnnError(
      'ERR_ARG',
      `${opts.what ?? 'file'}: the path must be a non-empty string, got ${String(path)}`,
    );
  }
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new QbnnError('ERR_ARG', `${what}: cannot open (${(e as Error).message})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new QbnnError('ERR_ARG', `${what}: is ${fileKind(st)}, expected a regular file`);
    const size = st.size;
    const max = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
    if (size > max) throw new QbnnError('ERR_FORMAT', `${what}: ${size} bytes, more than the ${max} allowed`);
    const out = new Uint8Array(size);
    const head = Math.min(size, opts.headBytes ?? 8);
    await readExactly(fh, out.subarray(0, head), 0, what);
    opts.checkHead?.(out.subarray(0, head), size);
    await readExactly(fh, out.subarray(head), head, what);
    return out;
  } finally {
    await fh.close();
  }
}

/** Temp files of {@link writeFileAtomic}: `.NAME.PID.HEX.tmp` beside the target. */
const TEMP_RE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** A temp file older than this is stale even if its PID is alive (PIDs are reused). */
export const STALE_TEMP_MS = 60 * 60 * 1000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files that interrupted {@link writeFileAtomic} runs (a `kill -9` mid-save)
 * left in `dir`: only names of our own pattern `.NAME.PID.HEX.tmp`, only regular files, and only
 * when their PID is no live process or they are older than {@link STALE_TEMP_MS}. A save in
 * progress (a live PID, a fresh file) is never touched, and nothing else is. Best effort: a file
 * that cannot be removed is left. Returns the names removed.
 */
export async function removeStaleTempFiles(dir: string, now = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (!st.isFile()) continue;
      const old = now - st.mtimeMs > STALE_TEMP_MS;
      if (!old && Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) continue;
      await unlink(path);
      removed.push(name);
    } catch {
      // raced with its owner or another cleaner: leave it
    }
  }
  return removed;
}

/** Options of {@link writeFileAtomic}. */
export interface WriteFileOptions {
  /** Create the parent directory (and its parents) first (default false). */
  mkdir?: boolean;
}

/**
 * Writes `data` to `path` whole or not at all: a temp file `.NAME.PID.HEX.tmp` in the same
 * directory is written and fsynced, then renamed over `path` (and the directory fsynced), so
 * `path` always holds either its old content or the new one. Temp files of earlier interrupted
 * saves into the same directory are removed first (see {@link removeStaleTempFiles}). The one
 * atomic writer of qbnn: checkpoints, quantised models and the CLI's JSON and reports.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: WriteFileOptions = {},
): Promise<void> {
  if (typeof path !== 'string' || path === '' || basename(path) === '') {
    throw new QbnnError('ERR_ARG', `writeFileAtomic: path must name a file, got ${JSON.stringify(path)}`);
  }
  const dir = dirname(path);
  const cannot = (e: unknown) =>
    new QbnnError('ERR_ARG', `writeFileAtomic: cannot write ${path} (${(e as Error).message})`);
  if (opts.mkdir) await mkdir(dir, { recursive: true }).catch((e) => Promise.reject(cannot(e)));
  // What is there now (through a symbolic link) must be a regular file or nothing: the rename
  // would replace a device such as /dev/null, a FIFO or a socket by a file (a directory fails late)
  const st = await stat(path).catch((e: NodeJS.ErrnoException) =>
    e.code === 'ENOENT' ? null : Promise.reject(cannot(e)),
  );
  if (st !== null && !st.isFile())
    throw new QbnnError(
      'ERR_ARG',
      `writeFileAtomic: ${path} is ${fileKind(st)}, expected a regular file or a new name`,
    );
  await removeStaleTempFiles(dir);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let ok = false;
  try {
    const fh = await open(tmp, 'wx').catch((e) => Promise.reject(cannot(e)));
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    ok = true;
  } finally {
    if (!ok) await unlink(tmp).catch(() => undefined);
  }
  // Make the rename itself durable; not every file system lets a directory be fsynced.
  const d = await open(dir, 'r').catch(() => null);
  if (d) {
    await d.sync().catch(() => undefined);
    await d.close();
  }
}
