export { type ConvertOptions, convert } from './convert.js';
export { FoldedBias, foldBatchNorm } from './fold-bn.js';
export {
  type CalibrateOptions,
  calibrate,
  type PrepareOptions,
  prepare,
  prepareQat,
  setQuantState,
} from './prepare.js';
