// Deflated zip entries (Python's zipfile.ZIP_DEFLATED) read with the portable inflate of
// @qbnn/core, so an archive loads from bytes in a browser as in Node: each entry must equal the
// bytes Python wrote, and a corrupted entry must be a typed error naming it.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ZipArchive } from '../src/zip.js';
import { python } from './python.js';

const dir = mkdtempSync(join(tmpdir(), 'qbnn-zip-deflate-'));

describe.runIf(existsSync('/usr/bin/python3'))('ZipArchive reads deflated entries', () => {
  // Entries of every compressibility, at levels 1 and 9, and one stored entry.
  const hex = python(
    `import random, zipfile
rng = random.Random(16)
entries = {
  'text': ('the quick brown fox jumps over the lazy dog ' * 2000).encode(),
  'noise': bytes(rng.getrandbits(8) for _ in range(50000)),
  'runs': bytes(b for _ in range(3000) for b in [rng.randrange(4)] * rng.randrange(1, 30)),
  'empty': b'',
}
for level in (1, 9):
  with zipfile.ZipFile('${dir}/l%d.zip' % level, 'w', zipfile.ZIP_DEFLATED, compresslevel=level) as z:
    for name, data in entries.items():
      z.writestr(name, data)
    z.writestr('stored', entries['text'][:999], compress_type=zipfile.ZIP_STORED)
for name, data in entries.items():
  print(name, data.hex())
`,
    { torch: false },
  );
  const expected = new Map(
    hex
      .trim()
      .split('\n')
      .map((line) => {
        const [name, h = ''] = line.split(' ');
        return [name, new Uint8Array(Buffer.from(h, 'hex'))] as const;
      }),
  );

  it('every entry equals the bytes Python wrote, at levels 1 and 9', () => {
    for (const level of [1, 9]) {
      const zip = new ZipArchive(new Uint8Array(readFileSync(join(dir, `l${level}.zip`))));
      for (const [name, data] of expected) {
        expect(zip.entries.get(name)?.method).toBe(8);
        expect(Buffer.from(zip.read(name)).equals(Buffer.from(data))).toBe(true);
      }
      expect(zip.entries.get('stored')?.method).toBe(0);
      expect(
        Buffer.from(zip.read('stored')).equals(
          Buffer.from((expected.get('text') as Uint8Array).subarray(0, 999)),
        ),
      ).toBe(true);
    }
  });

  it('a corrupted deflated entry is ERR_FORMAT naming the entry', () => {
    const bytes = new Uint8Array(readFileSync(join(dir, 'l9.zip')));
    const zip = new ZipArchive(bytes);
    const e = zip.entries.get('runs');
    if (!e) throw new Error('no entry');
    const at = e.localHeaderOffset + 30 + 4 + 20; // inside the compressed data of 'runs'
    const bad = bytes.slice();
    bad[at] ^= 0x5a;
    expect(() => new ZipArchive(bad).read('runs')).toThrow(
      expect.objectContaining({ code: 'ERR_FORMAT', message: expect.stringMatching(/entry 'runs'/) }),
    );
  });
});
