import { QbnnError, Rng } from '@qbnn/core';
import type * as tfTypes from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { ImageSet, RegressionSet } from './types.js';
import { checkInt, gatherRows, permutation } from './util.js';

/**
 * Flat arrays of n samples: `x` holds n * prod(xShape) inputs, `y` holds n * prod(yShape) targets
 * (class ids as Int32Array, regression targets as Float32Array). xShape and yShape are per sample.
 */
export interface ArrayDataset {
  x: Float32Array;
  y: Int32Array | Float32Array;
  n: number;
  xShape: readonly number[];
  yShape: readonly number[];
}

/** Views an {@link ImageSet} (x [C, H, W] a sample, y a label) or {@link RegressionSet} (x [d], y scalar) as an ArrayDataset, without copying. */
export function toArrayDataset(set: ImageSet | RegressionSet | ArrayDataset): ArrayDataset {
  let d: ArrayDataset;
  if ('images' in set) {
    d = { x: set.images, y: set.labels, n: set.shape[0], xShape: set.shape.slice(1), yShape: [] };
  } else if ('nFeatures' in set) {
    d = { x: set.x, y: set.y, n: set.n, xShape: [set.nFeatures], yShape: [] };
  } else d = set;
  const xw = prod(d.xShape);
  const yw = prod(d.yShape);
  checkInt('dataset n', d.n, 0);
  if (d.x.length !== d.n * xw || d.y.length !== d.n * yw) {
    throw new QbnnError(
      'ERR_SHAPE',
      `dataset of ${d.n} samples with x [${d.xShape.join(', ')}] and y [${d.yShape.join(', ')}] a sample needs ${d.n * xw} inputs and ${d.n * yw} targets, got ${d.x.length} and ${d.y.length}`,
    );
  }
  return d;
}

function prod(s: readonly number[]): number {
  let p = 1;
  for (const v of s) p *= v;
  return p;
}

/** Options of {@link BatchLoader}. */
export interface BatchOptions {
  /** Samples a batch, >= 1. */
  batchSize: number;
  /** Visit samples in a random order that changes every epoch, default true. */
  shuffle?: boolean;
  /** Seed of the order, default 0. */
  seed?: number;
  /** Skip the last batch when it is smaller than batchSize, default false. */
  dropLast?: boolean;
}

/** A mini-batch of plain arrays. */
export interface ArrayBatch {
  /** [size, ...xShape] values. */
  x: Float32Array;
  /** [size, ...yShape] targets. */
  y: Int32Array | Float32Array;
  /** Which samples of the dataset, in batch order. */
  indices: Int32Array;
  size: number;
}

/** A mini-batch of tfjs tensors (x float32 [size, ...xShape], y int32 or float32 [size, ...yShape]). */
export interface TensorBatch {
  x: tfTypes.Tensor;
  y: tfTypes.Tensor;
  indices: Int32Array;
  size: number;
}

/**
 * A seeded mini-batch iterator over an {@link ArrayDataset} (or an ImageSet / RegressionSet).
 *
 * The order of epoch e is the permutation drawn from `new Rng(seed).fork(e)`: a pure function of
 * (seed, epoch), so epoch 3 is the same whether or not epochs 0 to 2 were run. Unshuffled batches
 * are `subarray` views of the dataset (no copy: do not modify them unless you mean to modify the
 * dataset); shuffled batches are gathered into fresh arrays.
 *
 * @example
 * const loader = new BatchLoader(train, { batchSize: 128, seed: 1 });
 * for (let e = 0; e < 10; e++) for (const { x, y } of loader.tensorBatches(e)) { ... } // disposed for you
 */
export class BatchLoader {
  readonly data: ArrayDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private readonly xw: number;
  private readonly yw: number;

  constructor(data: ImageSet | RegressionSet | ArrayDataset, options: BatchOptions) {
    this.data = toArrayDataset(data);
    this.batchSize = checkInt('BatchLoader: batchSize', options?.batchSize, 1);
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    new Rng(this.seed); // validates the seed now rather than at the first epoch
    this.dropLast = options.dropLast ?? false;
    this.xw = prod(this.data.xShape);
    this.yw = prod(this.data.yShape);
  }

  /** Batches an epoch yields: floor(n / batchSize) with dropLast, else ceil. */
  get numBatches(): number {
    const { n } = this.data;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The sample order of `epoch` (identity when not shuffling). */
  order(epoch = 0): Int32Array {
    checkInt('epoch', epoch, 0);
    if (this.shuffle) return permutation(this.data.n, new Rng(this.seed).fork(epoch));
    const o = new Int32Array(this.data.n);
    for (let i = 0; i < o.length; i++) o[i] = i;
    return o;
  }

  /** The mini-batches of `epoch` as typed arrays. */
  *batches(epoch = 0): Generator<ArrayBatch, void, undefined> {
    const order = this.order(epoch);
    const { x, y } = this.data;
    for (let b = 0; b < this.numBatches; b++) {
      const start = b * this.batchSize;
      const end = Math.min(start + this.batchSize, order.length);
      const indices = order.subarray(start, end);
      const size = end - start;
      if (this.shuffle) {
        yield { x: gatherRows(x, this.xw, indices), y: gatherRows(y, this.yw, indices), indices, size };
      } else {
        yield {
          x: x.subarray(start * this.xw, end * this.xw),
          y: y.subarray(start * this.yw, end * this.yw),
          indices,
          size,
        };
      }
    }
  }

  /**
   * The mini-batches of `epoch` as tfjs tensors (a backend must be set, e.g. by `initBackend()`
   * of @qbnn/core). With `keep: false` (default) each batch's two tensors are disposed when the
   * next batch is requested and when the loop ends, breaks or throws, so a `for...of` leaks
   * nothing; `tf.clone` what must outlive the step. With `keep: true` the caller owns every
   * batch and must dispose it ({@link disposeBatch}).
   *
   * @param xShape - optional per-sample shape for x of the same size (e.g. [28, 28, 1] for NHWC)
   */
  *tensorBatches(
    epoch = 0,
    options: { keep?: boolean; xShape?: readonly number[] } = {},
  ): Generator<TensorBatch, void, undefined> {
    const xShape = options.xShape ?? this.data.xShape;
    if (prod(xShape) !== this.xw) {
      throw new QbnnError(
        'ERR_SHAPE',
        `tensorBatches: xShape [${xShape.join(', ')}] must hold ${this.xw} values like [${this.data.xShape.join(', ')}]`,
      );
    }
    const yDtype = this.data.y instanceof Int32Array ? 'int32' : 'float32';
    let prev: TensorBatch | undefined;
    try {
      for (const b of this.batches(epoch)) {
        if (prev && !options.keep) disposeBatch(prev);
        prev = {
          x: tf.tensor(b.x, [b.size, ...xShape], 'float32'),
          y: tf.tensor(b.y, [b.size, ...this.data.yShape], yDtype),
          indices: b.indices,
          size: b.size,
        };
        yield prev;
      }
    } finally {
      if (prev && !options.keep) disposeBatch(prev);
    }
  }
}

/** Disposes the tensors of a batch (safe to call twice). */
export function disposeBatch(b: TensorBatch): void {
  b.x.dispose();
  b.y.dispose();
}
