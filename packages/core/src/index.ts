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
export {
  type CheckedGaussianSample,
  type CheckedQConv2d,
  type CheckedQGemm,
  checkArgsObject,
  checkChannelScales,
  checkGaussianSampleArgs,
  checkGemmBias,
  checkGemmK,
  checkGemmOutput,
  checkPackWeightsArgs,
  checkPhiloxKey,
  checkQConv2dArgs,
  checkQGemmArgs,
  checkQNormalArgs,
  type GemmOut,
  type GemmOutputSpec,
  gemmOutputBuffer,
  type KernelLimits,
  REFERENCE_KERNEL_LIMITS,
} from './kernels/validate.js';
export * from './quant/index.js';
export * from './registry/index.js';
export * from './rng/index.js';
