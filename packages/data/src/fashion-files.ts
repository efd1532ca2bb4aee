import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { QbnnError } from '@qbnn/core';
import { parseFashionMnist } from './fashion.js';
import { MAX_IDX_BYTES } from './idx.js';
import { readRegularFileSync } from './idx-files.js';
import type { ImageSet } from './types.js';

/** Where the Debian package `dataset-fashion-mnist` installs the files. */
export const FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';

/** The environment variable naming a data directory. */
export const DATA_DIR_ENV = 'QBNN_DATA_DIR';

const FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
} as const;

/** Options of {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** 'train' (60,000 images) or 'test' (10,000), default 'test'. */
  split?: 'train' | 'test';
  /** A directory holding the four IDX files (see {@link findFashionMnistDir}). */
  dir?: string;
  /** Keep only the first `limit` images of the split. */
  limit?: number;
  /** Environment to read QBNN_DATA_DIR from, default `process.env`. */
  env?: Record<string, string | undefined>;
}

function hasSplit(dir: string, split: 'train' | 'test'): boolean {
  const f = FILES[split];
  return (
    (existsSync(join(dir, `${f.images}.gz`)) || existsSync(join(dir, f.images))) &&
    (existsSync(join(dir, `${f.labels}.gz`)) || existsSync(join(dir, f.labels)))
  );
}

/**
 * The directory the Fashion-MNIST files of `split` are read from, searching in order:
 * 1. `dir` (when given, only there: a wrong path is an error, not a fallback);
 * 2. `$QBNN_DATA_DIR/fashion-mnist`, then `$QBNN_DATA_DIR` itself;
 * 3. `systemDir`, default `/usr/share/datasets/fashion-mnist` (Debian `dataset-fashion-mnist`).
 *
 * A directory qualifies when it holds `<prefix>-images-idx3-ubyte[.gz]` and
 * `<prefix>-labels-idx1-ubyte[.gz]`, prefix `train` or `t10k`, the names the Debian package installs.
 *
 * @throws QbnnError ERR_ARG naming every place searched and the package to install
 */
export function findFashionMnistDir(
  dir?: string,
  split: 'train' | 'test' = 'test',
  env: Record<string, string | undefined> = process.env,
  systemDir: string = FASHION_MNIST_DEBIAN_DIR,
): string {
  const f = FILES[split];
  const want = `${f.images}[.gz] and ${f.labels}[.gz]`;
  if (dir !== undefined) {
    if (hasSplit(dir, split)) return dir;
    throw new QbnnError('ERR_ARG', `loadFashionMnist: dir ${dir} does not hold ${want}`);
  }
  const candidates: string[] = [];
  const envDir = env[DATA_DIR_ENV];
  if (envDir) candidates.push(join(envDir, 'fashion-mnist'), envDir);
  candidates.push(systemDir);
  for (const c of candidates) if (hasSplit(c, split)) return c;
  throw new QbnnError(
    'ERR_ARG',
    `loadFashionMnist: Fashion-MNIST not found (looked for ${want} in ${candidates.join(', ')}). ` +
      `Install it with \`sudo apt-get install dataset-fashion-mnist\` (Debian/Ubuntu), or pass \`dir\`, ` +
      `or set ${DATA_DIR_ENV} to a directory holding the four IDX files.`,
  );
}

function pathOf(dir: string, base: string): string {
  const gz = join(dir, `${base}.gz`);
  return existsSync(gz) ? gz : join(dir, base);
}

/**
 * Loads one split of Fashion-MNIST (Xiao et al. 2017; 60,000 train and 10,000 test 28x28 grey
 * images of 10 clothing classes, 6,000 and 1,000 a class), the out-of-distribution set of the
 * paper for MNIST. Files are found by {@link findFashionMnistDir}; gzipped or plain IDX, decoded
 * by `parseFashionMnist` of '@qbnn/data'.
 *
 * @returns images Float32Array [N, 1, 28, 28] = byte / 255 in [0, 1], labels Int32Array in 0..9
 * @throws QbnnError ERR_ARG when the files are absent; ERR_FORMAT when they are malformed (not
 *   uint8, not [N, 28, 28] and [N], counts that disagree, labels above 9)
 */
export function loadFashionMnist(options: FashionMnistOptions = {}): ImageSet {
  const split = options.split ?? 'test';
  if (split !== 'train' && split !== 'test') {
    throw new QbnnError('ERR_ARG', `loadFashionMnist: split must be 'train' or 'test', got ${String(split)}`);
  }
  const dir = findFashionMnistDir(options.dir, split, options.env ?? process.env);
  const images = pathOf(dir, FILES[split].images);
  const labels = pathOf(dir, FILES[split].labels);
  const read = (path: string) => readRegularFileSync(path, MAX_IDX_BYTES, 'loadFashionMnist');
  return parseFashionMnist(read(images), read(labels), { limit: options.limit, sources: [images, labels] });
}
