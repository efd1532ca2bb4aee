import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { classCounts, encodeIdx, FASHION_MNIST_CLASSES, parseFashionMnist, parseIdx } from '../src/index.js';
import {
  FASHION_MNIST_DEBIAN_DIR,
  findFashionMnistDir,
  loadFashionMnist,
  readIdx,
  writeIdx,
} from '../src/node.js';

const tmp = mkdtempSync(join(tmpdir(), 'qbnn-data-idx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A 2x3 uint8 array written byte by byte: magic 00 00 08 02, dims 2 and 3 big-endian, 6 values.
const HAND = Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 255, 0]);

describe('parseIdx', () => {
  it('decodes a hand-written uint8 file', () => {
    const a = parseIdx(HAND);
    expect(a.dtype).toBe('uint8');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([1, 2, 3, 250, 255, 0]);
  });

  it('decodes big-endian multi-byte types', () => {
    // int16 [2]: 0x0102 = 258 and 0xfffe = -2; int32 [1]: 0x01000000; float32 [1]: 0x3fc00000 = 1.5
    expect(Array.from(parseIdx(Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 1, 2, 0xff, 0xfe])).data)).toEqual(
      [258, -2],
    );
    expect(Array.from(parseIdx(Uint8Array.from([0, 0, 0x0c, 1, 0, 0, 0, 1, 1, 0, 0, 0])).data)).toEqual([
      16777216,
    ]);
    expect(Array.from(parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0])).data)).toEqual(
      [1.5],
    );
    expect(Array.from(parseIdx(Uint8Array.from([0, 0, 0x09, 1, 0, 0, 0, 2, 0x80, 0x7f])).data)).toEqual([
      -128, 127,
    ]);
  });

  it('round-trips every dtype through encodeIdx', () => {
    const cases = [
      ['uint8', [0, 7, 255]],
      ['int8', [-128, 0, 127]],
      ['int16', [-32768, 1, 32767]],
      ['int32', [-2147483648, 5, 2147483647]],
      ['float32', [-1.5, 0.25, 2 ** 40]],
      ['float64', [Math.PI, -1e-300, 2]],
    ] as const;
    for (const [dtype, vals] of cases) {
      const back = parseIdx(encodeIdx(vals, [1, 3], dtype));
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual([1, 3]);
      expect(Array.from(back.data)).toEqual(vals);
    }
    expect(encodeIdx([1, 2, 3, 250, 255, 0], [2, 3])).toEqual(HAND);
  });

  it('gives clear ERR_FORMAT errors on wrong or truncated buffers', () => {
    const fmt = (b: Uint8Array, re: RegExp) => {
      expect(() => parseIdx(b, 'x.idx')).toThrow(re);
      try {
        parseIdx(b);
      } catch (e) {
        expect((e as { code: string }).code).toBe('ERR_FORMAT');
      }
    };
    fmt(HAND.subarray(0, 3), /x\.idx: truncated IDX header: 3 bytes/);
    fmt(
      Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]),
      /not an IDX file: magic number must start with two zero bytes, got 0x0100/,
    );
    fmt(gzipSync(HAND), /gzipped/);
    fmt(Uint8Array.from([0, 0, 0x07, 1, 0, 0, 0, 0]), /unknown IDX type byte 0x07/);
    fmt(Uint8Array.from([0, 0, 8, 0]), /dimension count is 0/);
    fmt(HAND.subarray(0, 10), /2 dims need 12 header bytes, the file has 10/);
    fmt(
      HAND.subarray(0, 17),
      /truncated IDX data: shape \[2, 3\] of uint8 needs 6 bytes after the header, found 5/,
    );
    fmt(Uint8Array.from([...HAND, 9, 9]), /2 trailing bytes/);
  });
});

describe('readIdx / writeIdx', () => {
  it('reads plain and gzipped files alike, whatever their names', () => {
    const data = Array.from({ length: 24 }, (_, i) => i * 10);
    writeIdx(join(tmp, 'a.idx'), data, [2, 3, 4]);
    writeIdx(join(tmp, 'a.idx.gz'), data, [2, 3, 4]);
    writeFileSync(join(tmp, 'gz-without-suffix'), gzipSync(encodeIdx(data, [2, 3, 4])));
    for (const f of ['a.idx', 'a.idx.gz', 'gz-without-suffix']) {
      const a = readIdx(join(tmp, f));
      expect(a.shape).toEqual([2, 3, 4]);
      expect(Array.from(a.data)).toEqual(data);
    }
  });

  it('names the file in errors: missing, truncated gzip, corrupt content', () => {
    expect(() => readIdx(join(tmp, 'nope.idx'))).toThrow(/cannot read .*nope\.idx/);
    const gz = gzipSync(encodeIdx(new Array(1000).fill(3), [10, 100]));
    writeFileSync(join(tmp, 'cut.gz'), gz.subarray(0, gz.length - 20));
    expect(() => readIdx(join(tmp, 'cut.gz'))).toThrow(/cut\.gz: corrupt or truncated gzip stream/);
    writeFileSync(
      join(tmp, 'short.gz'),
      gzipSync(encodeIdx(new Array(1000).fill(3), [10, 100]).subarray(0, 500)),
    );
    expect(() => readIdx(join(tmp, 'short.gz'))).toThrow(/short\.gz: truncated IDX data: shape \[10, 100\]/);
  });
});

/** Writes a tiny Fashion-MNIST-like split: n images whose pixel 0 encodes the index, labels i % 10. */
function writeFakeSplit(dir: string, prefix: 'train' | 't10k', n: number, gz: boolean) {
  const images = new Uint8Array(n * 784);
  for (let i = 0; i < n; i++) {
    images[i * 784] = i;
    images[i * 784 + 783] = 255;
  }
  const labels = Array.from({ length: n }, (_, i) => i % 10);
  const s = gz ? '.gz' : '';
  writeIdx(join(dir, `${prefix}-images-idx3-ubyte${s}`), images, [n, 28, 28]);
  writeIdx(join(dir, `${prefix}-labels-idx1-ubyte${s}`), labels, [n]);
}

describe('loadFashionMnist on small files the test writes', () => {
  const gzDir = join(tmp, 'fm-gz');
  const plainDir = join(tmp, 'fm-plain');
  const envRoot = join(tmp, 'envroot');
  const emptyEnv = { QBNN_DATA_DIR: join(tmp, 'nothing-here') };

  it('reads gzipped and plain IDX from an explicit dir', () => {
    for (const [d, gz] of [
      [gzDir, true],
      [plainDir, false],
    ] as const) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
      writeFakeSplit(d, 't10k', 30, gz);
      const s = loadFashionMnist({ dir: d, split: 'test' });
      expect(s.shape).toEqual([30, 1, 28, 28]);
      expect(s.images[7 * 784]).toBeCloseTo(7 / 255, 7);
      expect(s.images[7 * 784 + 783]).toBe(1);
      expect(s.labels[13]).toBe(3);
      expect(Array.from(classCounts(s.labels, 10))).toEqual(new Array(10).fill(3));
      expect(s.classNames[9]).toBe('Ankle boot');
      expect(loadFashionMnist({ dir: d, split: 'test', limit: 4 }).shape).toEqual([4, 1, 28, 28]);
    }
  });

  it('searches $QBNN_DATA_DIR/fashion-mnist, then $QBNN_DATA_DIR', () => {
    mkdirSync(join(envRoot, 'fashion-mnist'), { recursive: true });
    writeFakeSplit(join(envRoot, 'fashion-mnist'), 'train', 20, true);
    expect(findFashionMnistDir(undefined, 'train', { QBNN_DATA_DIR: envRoot })).toBe(
      join(envRoot, 'fashion-mnist'),
    );
    expect(findFashionMnistDir(undefined, 'test', { QBNN_DATA_DIR: plainDir })).toBe(plainDir);
    const s = loadFashionMnist({ split: 'train', env: { QBNN_DATA_DIR: envRoot } });
    expect(s.shape[0]).toBe(20);
  });

  it('says what to install when the files are nowhere', () => {
    expect(() => findFashionMnistDir(join(tmp, 'missing'))).toThrow(
      /dir .*missing does not hold t10k-images-idx3-ubyte/,
    );
    // the Debian directory is the last fallback; point it at an empty place to see the message
    const noSystem = join(tmp, 'no-debian');
    expect(() => findFashionMnistDir(undefined, 'test', emptyEnv, noSystem)).toThrow(
      /not found \(looked for t10k-images-idx3-ubyte\[\.gz\] .* in .*nothing-here\/fashion-mnist, .*nothing-here, .*no-debian\)\. Install it with `sudo apt-get install dataset-fashion-mnist`/,
    );
    if (!existsSync(FASHION_MNIST_DEBIAN_DIR)) {
      expect(() => loadFashionMnist({ env: emptyEnv })).toThrow(/apt-get install dataset-fashion-mnist/);
    }
    try {
      findFashionMnistDir(join(tmp, 'missing'));
    } catch (e) {
      expect((e as { code: string }).code).toBe('ERR_ARG');
    }
  });

  it('rejects files of the wrong kind or that disagree', () => {
    const d = join(tmp, 'fm-bad');
    mkdirSync(d, { recursive: true });
    writeFakeSplit(d, 't10k', 10, false);
    writeIdx(join(d, 't10k-labels-idx1-ubyte'), new Array(9).fill(1), [9]);
    expect(() => loadFashionMnist({ dir: d })).toThrow(/holds 10 images but .* holds 9 labels/);
    writeIdx(join(d, 't10k-labels-idx1-ubyte'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 12], [10]);
    expect(() => loadFashionMnist({ dir: d })).toThrow(/label 9 is 12, expected 0\.\.9/);
    writeIdx(join(d, 't10k-images-idx3-ubyte'), new Array(10 * 16).fill(0), [10, 4, 4]);
    expect(() => loadFashionMnist({ dir: d })).toThrow(
      /expected uint8 images of shape \[N, 28, 28\], got uint8 \[10, 4, 4\]/,
    );
    const bytes = encodeIdx(new Uint8Array(10 * 784), [10, 28, 28]);
    writeFileSync(join(d, 't10k-images-idx3-ubyte'), bytes.subarray(0, bytes.length - 100));
    expect(() => loadFashionMnist({ dir: d })).toThrow(/t10k-images-idx3-ubyte: truncated IDX data/);
  });
});

describe('parseFashionMnist from bytes (what a browser fetches)', () => {
  it('decodes gzipped and plain bytes alike, pixel = byte / 255, errors name the sources', () => {
    const n = 12;
    const images = new Uint8Array(n * 784);
    for (let i = 0; i < images.length; i++) images[i] = (i * 7 + 3) % 256;
    const labels = Array.from({ length: n }, (_, i) => (i * 3) % 10);
    const im = encodeIdx(images, [n, 28, 28]);
    const lb = encodeIdx(labels, [n]);
    for (const [a, b] of [
      [im, lb],
      [new Uint8Array(gzipSync(im)), new Uint8Array(gzipSync(lb))],
    ]) {
      const s = parseFashionMnist(a, b);
      expect(s.shape).toEqual([n, 1, 28, 28]);
      for (let i = 0; i < images.length; i++) expect(s.images[i]).toBe(Math.fround(images[i] / 255));
      expect(Array.from(s.labels)).toEqual(labels);
      expect(s.classNames).toBe(FASHION_MNIST_CLASSES);
      expect(parseFashionMnist(a, b, { limit: 5 }).shape).toEqual([5, 1, 28, 28]);
    }
    const gz = new Uint8Array(gzipSync(im));
    expect(() => parseFashionMnist(gz.subarray(0, gz.length - 9), lb, { sources: ['im.gz', 'lb'] })).toThrow(
      /im\.gz: corrupt or truncated gzip stream/,
    );
    expect(() => parseFashionMnist(im, encodeIdx(labels.slice(1), [n - 1]))).toThrow(
      /images holds 12 images but labels holds 11 labels/,
    );
    expect(() => parseFashionMnist(gz, lb, { maxBytes: 1000 })).toThrow(
      /images: .*more than the 1000|inflates to more than 1000/,
    );
  });
});
