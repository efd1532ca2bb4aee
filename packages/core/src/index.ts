export * from './backend/index.js';
export { QbnnError, type QbnnErrorCode } from './errors.js';
export {
  convOutSize,
  JS_PROVIDER,
  type JsPackedWeights,
  packWeights,
  qconv2d,
  qgemm,
  qnormal,
  referenceKernels,
  sampleGaussianPacked,
  sampleGaussianWeights,
} from './kernels/reference.js';
export type * from './kernels/types.js';
export { MAX_GEMM_K } from './kernels/types.js';
export * from './quant/index.js';
export * from './registry/index.js';
export * from './rng/index.js';
