import { QbnnError } from '@qbnn/core';
import { FASHION_MNIST_CLASSES } from './classes.js';
import { decodeIdx, MAX_IDX_BYTES } from './idx.js';
import type { ImageSet } from './types.js';
import { checkInt } from './util.js';

/** Options of {@link parseFashionMnist}. */
export interface ParseImageSetOptions {
  /** Keep only the first `limit` images. */
  limit?: number;
  /** Names of the two inputs in error messages, default 'images' and 'labels' (file paths). */
  sources?: [string, string];
  /** Largest input, gzipped or after gunzip, default {@link MAX_IDX_BYTES}. */
  maxBytes?: number;
}

/**
 * Fashion-MNIST from the bytes of its two IDX files (gzipped or plain, e.g. fetched in a
 * browser): uint8 images [N, 28, 28] and uint8 labels [N] in 0..9. `loadFashionMnist` of
 * '@qbnn/data/node' reads the files and calls this.
 *
 * @returns images Float32Array [N, 1, 28, 28] = byte / 255 in [0, 1], labels Int32Array in 0..9
 * @throws QbnnError ERR_FORMAT when they are malformed (not uint8, not [N, 28, 28] and [N],
 *   counts that disagree, labels above 9); ERR_ARG on a bad limit
 */
export function parseFashionMnist(
  imageBytes: Uint8Array,
  labelBytes: Uint8Array,
  options: ParseImageSetOptions = {},
): ImageSet {
  const [imagesName, labelsName] = options.sources ?? ['images', 'labels'];
  const maxBytes = options.maxBytes ?? MAX_IDX_BYTES;
  const im = { idx: decodeIdx(imageBytes, imagesName, { maxBytes }), path: imagesName };
  const lb = { idx: decodeIdx(labelBytes, labelsName, { maxBytes }), path: labelsName };
  const ish = im.idx.shape;
  if (im.idx.dtype !== 'uint8' || ish.length !== 3 || ish[1] !== 28 || ish[2] !== 28) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${im.path}: expected uint8 images of shape [N, 28, 28], got ${im.idx.dtype} [${ish.join(', ')}]`,
    );
  }
  if (lb.idx.dtype !== 'uint8' || lb.idx.shape.length !== 1) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${lb.path}: expected uint8 labels of shape [N], got ${lb.idx.dtype} [${lb.idx.shape.join(', ')}]`,
    );
  }
  if (lb.idx.shape[0] !== ish[0]) {
    throw new QbnnError(
      'ERR_FORMAT',
      `${im.path} holds ${ish[0]} images but ${lb.path} holds ${lb.idx.shape[0]} labels`,
    );
  }
  const n =
    options.limit === undefined
      ? ish[0]
      : Math.min(ish[0], checkInt('parseFashionMnist: limit', options.limit, 0));
  const bytes = im.idx.data as Uint8Array;
  const images = new Float32Array(n * 784);
  for (let i = 0; i < images.length; i++) images[i] = bytes[i] / 255;
  const labels = new Int32Array(n);
  const lbytes = lb.idx.data as Uint8Array;
  for (let i = 0; i < n; i++) {
    if (lbytes[i] > 9)
      throw new QbnnError('ERR_FORMAT', `${lb.path}: label ${i} is ${lbytes[i]}, expected 0..9`);
    labels[i] = lbytes[i];
  }
  return { images, labels, shape: [n, 1, 28, 28], classNames: FASHION_MNIST_CLASSES };
}
