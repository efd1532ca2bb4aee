// Files qbnn reads and writes (issue 17 D12, D13, D14): non-regular files are refused before any
// read, header lengths are checked before the header is read, sizes taken from a checkpoint's
// metadata are checked against its tensors, and interrupted saves leave no litter for long.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CheckpointContents,
  Linear,
  lenet5,
  registerArchitecture,
  regressionMlp,
  Sequential,
} from '../src/index.js';
import {
  load,
  loadSafetensors,
  removeStaleTempFiles,
  STALE_TEMP_MS,
  save,
  writeFileAtomic,
} from '../src/node.js';
import { ready } from './setup.js';

const dir = mkdtempSync(join(tmpdir(), 'qbnn-nn-files-'));
beforeAll(ready);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function expectQbnn(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await expect(p).rejects.toThrow(
    expect.objectContaining({ name: 'QbnnError', code, message: expect.stringMatching(message) }),
  );
}

/** A PID that was a process and is no longer one. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid as number;
}

describe('reading refuses what is not a regular file, before reading (D13)', () => {
  it('a FIFO with no writer, /dev/zero and a directory are ERR_ARG, at once', async () => {
    const fifo = join(dir, 'fifo.safetensors');
    execFileSync('mkfifo', [fifo]);
    await expectQbnn(loadSafetensors(fifo), 'ERR_ARG', /is a FIFO, expected a regular file/);
    await expectQbnn(load(fifo), 'ERR_ARG', /^checkpoint .*fifo.safetensors: is a FIFO/);
    await expectQbnn(loadSafetensors('/dev/zero'), 'ERR_ARG', /\/dev\/zero: is a device/);
    await expectQbnn(load(dir), 'ERR_ARG', /is a directory/);
    await expectQbnn(load(join(dir, 'missing')), 'ERR_ARG', /cannot open/);
  });

  it('a header length beyond the limit or the file is refused from the first 8 bytes', async () => {
    // A sparse 3 GiB file: reading it whole would take 3 GiB (and Node's readFile refuses > 2 GiB
    // with an untyped error); its first 8 bytes alone condemn it.
    const big = join(dir, 'big.safetensors');
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(2n ** 40n);
    writeFileSync(big, head);
    truncateSync(big, 3 * 2 ** 30);
    const rss = process.memoryUsage().rss;
    await expectQbnn(
      loadSafetensors(big),
      'ERR_FORMAT',
      /header length 1099511627776 exceeds the 100000000-byte limit/,
    );
    head.writeBigUInt64LE(50_000_000n);
    writeFileSync(big, head);
    truncateSync(big, 1000);
    await expectQbnn(load(big), 'ERR_FORMAT', /truncated: header length 50000000 but only 992 bytes follow/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 2 ** 20);
    // Larger than any byte array: refused by its size.
    truncateSync(big, 2 ** 32 + 8);
    await expectQbnn(
      loadSafetensors(big),
      'ERR_FORMAT',
      /4294967304 bytes, more than the 4294967295 allowed/,
    );
    rmSync(big);
  });
});

describe('sizes in a checkpoint are checked against its tensors before allocating (D12)', () => {
  it('an architecture builder receives the file contents and can refuse a config that claims more', async () => {
    let seen: CheckpointContents | undefined;
    registerArchitecture(
      'test-width',
      (c, contents) => {
        seen = contents;
        const width = c.width as number;
        const w = contents?.tensors['0.weight'];
        if (w && w.shape[0] !== width) throw new Error(`width ${width} but the file holds ${w.shape[0]}`);
        return new Sequential(new Linear(3, width));
      },
      true,
    );
    const path = join(dir, 'width.safetensors');
    const m = new Sequential(new Linear(3, 4, { seed: 1 }));
    await save(m, path, { arch: 'test-width', config: { width: 4 } });
    const { model } = await load(path);
    expect(seen?.tensors['0.weight']).toEqual({ dtype: 'F32', shape: [4, 3] });
    model.dispose();
    await save(m, path, { arch: 'test-width', config: { width: 1e9 } });
    await expect(load(path)).rejects.toThrow(/width 1000000000 but the file holds 4/);
    m.dispose();
  });
});

describe('zoo configs in a checkpoint are checked against its tensors before building', () => {
  // A small real checkpoint whose metadata claims a model far larger than its tensors: the zoo
  // builders must refuse it by counting, not try to allocate it (or loop 1e9 times).
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['lenet5', { numClasses: 1e9 }, /lenet5 config implies more than \d+ parameters/],
    ['resnet18', { widths: [1e6, 1e6, 1e6, 1e6] }, /resnet18 config implies more than \d+ parameters/],
    ['mlp-regression', { inFeatures: 1, hidden: 1, depth: 1e9 }, /implies more than \d+ weight layers/],
  ];
  it.each(cases)('%s with %j is refused with ERR_FORMAT', async (arch, config, message) => {
    const path = join(dir, `claims-${arch}.safetensors`);
    const m = new Sequential(new Linear(3, 4, { seed: 1 }));
    await save(m, path, { arch, config });
    m.dispose();
    const t0 = performance.now();
    await expectQbnn(load(path), 'ERR_FORMAT', message);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('real zoo checkpoints still load (the check counts no more than the builders hold)', async () => {
    for (const [arch, model, config] of [
      ['lenet5', lenet5({ numClasses: 3, imageSize: 4 }, { seed: 4 }), { numClasses: 3, imageSize: 4 }],
      [
        'mlp-regression',
        regressionMlp({ inFeatures: 2, hidden: 5, depth: 2 }),
        { inFeatures: 2, hidden: 5, depth: 2 },
      ],
    ] as const) {
      const path = join(dir, `real-${arch}.safetensors`);
      await save(model, path, { arch, config: { ...config } });
      const { model: back } = await load(path);
      const a = model.stateDict();
      const b = back.stateDict();
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
      for (const k of Object.keys(a)) expect(b[k].dataSync()).toEqual(a[k].dataSync());
      model.dispose();
      back.dispose();
    }
  });
});

describe('atomic writes and the temp files of interrupted saves (D14)', () => {
  it('removes stale temp files of our pattern only, and keeps saves in progress', async () => {
    const d = join(dir, 'stale');
    mkdirSync(d);
    const dead = deadPid();
    const names = {
      deadPid: `.model.safetensors.${dead}.0123456789ab.tmp`,
      liveFresh: `.model.safetensors.${process.pid}.00000000aaaa.tmp`,
      liveOld: `.other.json.${process.pid}.bbbbbbbbbbbb.tmp`,
      notOurs: [
        '.model.safetensors.tmp',
        `model.safetensors.${dead}.tmp`,
        `.x.${dead}.0123456789AB.tmp`,
        'notes.txt',
      ],
      dirNamedLikeOurs: `.d.${dead}.cccccccccccc.tmp`,
    };
    for (const n of [names.deadPid, names.liveFresh, names.liveOld, ...names.notOurs])
      writeFileSync(join(d, n), 'x');
    mkdirSync(join(d, names.dirNamedLikeOurs));
    const old = (Date.now() - STALE_TEMP_MS - 60_000) / 1000;
    utimesSync(join(d, names.liveOld), old, old);
    await writeFileAtomic(join(d, 'model.safetensors'), new Uint8Array([1, 2, 3]));
    expect(readdirSync(d).sort()).toEqual(
      ['model.safetensors', names.liveFresh, names.dirNamedLikeOurs, ...names.notOurs].sort(),
    );
    expect([...readFileSync(join(d, 'model.safetensors'))]).toEqual([1, 2, 3]);
    expect(await removeStaleTempFiles(join(d, 'missing'))).toEqual([]);
  });

  it('writes strings too, creates the folder on request, and refuses a path that names no file', async () => {
    const p = join(dir, 'made', 'deep', 'r.json');
    await writeFileAtomic(p, '{"a":1}', { mkdir: true });
    expect(readFileSync(p, 'utf8')).toBe('{"a":1}');
    await expectQbnn(writeFileAtomic('', 'x'), 'ERR_ARG', /path must name a file/);
  });

  it('refuses to replace what is not a regular file, and names the path when it cannot write', async () => {
    // The rename replaced whatever was at the path: as root, saveQuantized(qm, '/dev/null') turned
    // the device into a regular file. A FIFO stands in for the device here (nothing outside the
    // test folder is touched even without the check). Missing folders, a path under a file and a
    // directory were Node's untyped ENOENT / ENOTDIR / EISDIR.
    const d = mkdtempSync(join(dir, 'special-'));
    const fifo = join(d, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await expectQbnn(
      writeFileAtomic(fifo, 'x'),
      'ERR_ARG',
      /fifo is a FIFO, expected a regular file or a new name/,
    );
    expect(statSync(fifo).isFIFO()).toBe(true);
    symlinkSync(fifo, join(d, 'link'));
    await expectQbnn(writeFileAtomic(join(d, 'link'), 'x'), 'ERR_ARG', /link is a FIFO/);
    expect(lstatSync(join(d, 'link')).isSymbolicLink()).toBe(true);
    mkdirSync(join(d, 'sub'));
    await expectQbnn(writeFileAtomic(join(d, 'sub'), 'x'), 'ERR_ARG', /sub is a directory/);
    await expectQbnn(
      writeFileAtomic(join(d, 'missing', 'a.json'), 'x'),
      'ERR_ARG',
      /cannot write .*missing\/a\.json \(ENOENT/,
    );
    writeFileSync(join(d, 'file'), 'x');
    await expectQbnn(
      writeFileAtomic(join(d, 'file', 'a.json'), 'x'),
      'ERR_ARG',
      /cannot write .*file\/a\.json \(ENOTDIR/,
    );
    // a regular file (also through a link) is replaced as before; no temp file is left
    symlinkSync(join(d, 'file'), join(d, 'flink'));
    await writeFileAtomic(join(d, 'flink'), 'new');
    expect(readFileSync(join(d, 'flink'), 'utf8')).toBe('new');
    expect(readdirSync(d).sort()).toEqual(['fifo', 'file', 'flink', 'link', 'sub']);
  });

  const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'node.js');
  it.skipIf(!existsSync(dist))(
    'kill -9 mid-save: the target stays whole and the next save removes the temp file',
    async () => {
      const d = join(dir, 'killed');
      mkdirSync(d);
      const target = join(d, 'big.bin');
      const size = 64 * 2 ** 20;
      // A child saving 64 MiB files of one repeated byte (1, 2, 3, ...) in a loop.
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { writeFileAtomic } from ${JSON.stringify(dist)};
         for (let i = 1; ; i++) await writeFileAtomic(${JSON.stringify(target)}, new Uint8Array(${size}).fill(i & 255));`,
        ],
        { stdio: 'ignore' },
      );
      // Wait until a save is in progress after at least one completed, then kill -9.
      const temp = () => readdirSync(d).filter((n) => n.endsWith('.tmp'));
      const deadline = Date.now() + 30_000;
      while (!(existsSync(target) && temp().length > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(temp().length).toBeGreaterThan(0);
      // The target is one whole file of the loop, never a part of one.
      const bytes = readFileSync(target);
      expect(bytes.length).toBe(size);
      expect(bytes.every((b) => b === bytes[0])).toBe(true);
      await writeFileAtomic(join(d, 'next.bin'), new Uint8Array([7]));
      expect(temp()).toEqual([]);
      expect(statSync(target).size).toBe(size);
    },
  );
});
