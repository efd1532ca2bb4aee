import { randomBytes } from 'node:crypto';
import { closeSync, openSync, realpathSync, type Stats, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { UsageError } from './args.js';

/**
 * The checks every command runs on its file flags before any work: inputs are existing regular
 * files (found by `stat`, never opened here, so a FIFO cannot block and a device cannot stream
 * forever), outputs can be created, and no output is an input or another output.
 */

/** A file flag and the path it names (`flag` as the user wrote it, e.g. '--checkpoint'). */
export interface FileFlag {
  flag: string;
  path: string;
}

/** What a command reads and writes. */
export interface FileFlags {
  inputs?: FileFlag[];
  outputs?: FileFlag[];
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

function whatIs(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return st.isFile() ? 'a regular file' : 'not a regular file';
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    // ENOTDIR: a file stands where a folder of the path should be; the path does not exist
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return null;
    throw err;
  }
}

function fail(command: string, f: FileFlag, why: string): never {
  throw new UsageError(`qbnn ${command}: ${f.flag} ${f.path === '' ? "''" : f.path}: ${why}`);
}

/** An input file flag must name an existing regular file (stat follows symbolic links). */
export function checkInputFile(command: string, f: FileFlag): void {
  if (f.path === '') fail(command, f, 'must name a file');
  let st: Stats | null;
  try {
    st = statOrNull(f.path);
  } catch (err) {
    fail(command, f, `cannot read it (${errorCode(err)})`);
  }
  if (!st) fail(command, f, 'no such file');
  if (!st.isFile()) fail(command, f, `is ${whatIs(st)}, not a regular file`);
}

/** The nearest existing folder at or above `dir` (the missing ones are created when writing). */
function existingAncestor(command: string, f: FileFlag, dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    let st: Stats | null;
    try {
      st = statOrNull(d);
    } catch (err) {
      fail(command, f, `cannot use the folder ${d} (${errorCode(err)})`);
    }
    if (st) {
      if (!st.isDirectory()) fail(command, f, `${d} is ${whatIs(st)}, so nothing can be created under it`);
      return d;
    }
    if (dirname(d) === d) fail(command, f, 'no existing folder above it');
  }
}

/**
 * The name of a write probe: the temp-file pattern of nn's atomic writer (`.NAME.PID.HEX12.tmp`),
 * so a probe left by a process killed between create and unlink is removed by the next save's
 * stale-temp cleanup like any interrupted save.
 */
export function writeProbeName(pid: number): string {
  return `.qbnn-write-check.${pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/**
 * Whether a file can be created in `dir`: a probe file is created exclusively and removed (access()
 * says yes to root everywhere, even in /proc, so only trying tells).
 */
function probeWritable(command: string, f: FileFlag, dir: string): void {
  const probe = join(dir, writeProbeName(process.pid));
  let fd: number;
  try {
    fd = openSync(probe, 'wx');
  } catch (err) {
    fail(command, f, `cannot create files in ${dir} (${errorCode(err)})`);
  }
  closeSync(fd);
  unlinkSync(probe);
}

/**
 * An output file flag must name a path where a file can be written whole (temp file + rename in
 * its folder): not '', not a folder, not an existing non-regular file (renaming over /dev/null
 * would replace the device), under folders that exist or can be created, in a folder that takes
 * new files. Returns the absolute path.
 */
export function checkOutputFile(command: string, f: FileFlag): string {
  if (f.path === '') fail(command, f, 'must name a file');
  const abs = resolve(f.path);
  if (f.path.endsWith('/') || f.path.endsWith(sep)) fail(command, f, 'names a folder; give a file name');
  let st: Stats | null;
  try {
    st = statOrNull(abs);
  } catch (err) {
    fail(command, f, `cannot use it (${errorCode(err)})`);
  }
  if (st && !st.isFile()) fail(command, f, `is ${whatIs(st)}; give the path of a file to write`);
  probeWritable(command, f, existingAncestor(command, f, dirname(abs)));
  return abs;
}

/**
 * What a path points at: the device and inode of an existing file (so symbolic links, hard links,
 * `./` and `..` variants compare equal), else its absolute path with the existing folders above it
 * resolved.
 */
function identity(path: string): string {
  const abs = resolve(path);
  const st = statOrNull(abs);
  if (st) return `inode ${st.dev}:${st.ino}`;
  const rest: string[] = [];
  let d = abs;
  while (statOrNull(d) === null && dirname(d) !== d) {
    rest.unshift(basename(d));
    d = dirname(d);
  }
  return `path ${join(realpathSync(d), ...rest)}`;
}

/** No output may be an input (it would be overwritten) or another output. */
export function checkDistinct(command: string, inputs: FileFlag[], outputs: FileFlag[]): void {
  const seen = new Map<string, FileFlag & { input: boolean }>();
  for (const f of inputs) seen.set(identity(f.path), { ...f, input: true });
  for (const f of outputs) {
    const id = identity(f.path);
    const other = seen.get(id);
    if (other) {
      fail(
        command,
        f,
        other.input
          ? `is the same file as the input ${other.flag} ${other.path}; writing it would destroy the input: choose another ${f.flag}`
          : `is the same file as ${other.flag} ${other.path}; one would overwrite the other: choose another ${f.flag}`,
      );
    }
    seen.set(id, { ...f, input: false });
  }
}

/**
 * All checks of a command's file flags, run before any work; throws a UsageError naming the flag.
 * Returns the absolute paths of the outputs, in order.
 */
export function checkFileFlags(command: string, files: FileFlags): string[] {
  const inputs = files.inputs ?? [];
  const outputs = files.outputs ?? [];
  for (const f of inputs) checkInputFile(command, f);
  const abs = outputs.map((f) => checkOutputFile(command, f));
  checkDistinct(command, inputs, outputs);
  return abs;
}

/** The files a command writes into an output folder flag (`--out-dir`), as output file flags. */
export function filesIn(command: string, flag: string, dir: string, names: string[]): FileFlag[] {
  if (dir === '') fail(command, { flag, path: dir }, 'must name a folder');
  return names.map((n) => ({ flag, path: join(dir, n) }));
}
