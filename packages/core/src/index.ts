export * from './backend/index.js';
export * from './bytes/index.js';
export { QbnnError, type QbnnErrorCode } from './errors.js';
export type * from './kernels/plan.js';
export { checkPlanRunArgs, MAX_FORWARD_ELEMENTS, MAX_PLAN_COUNT, nonFiniteLogit } from './kernels/plan.js';
export {
  convOutSize,
  JS_PROVIDER,
  type JsPackedWeights,
  packWeights,
  qconv2d,
  qconv2dPool,
  qgemm,
  qnormal,
  qpool2d,
  referenceKernels,
  sampleGaussianPacked,
  sampleGaussianWeights,
} from './kernels/reference.js';
export { expNonPositive, meanSoftmax } from './kernels/softmax.js';
export type * from './kernels/types.js';
export { MAX_GEMM_K } from './kernels/types.js';
export {
  type CheckedGaussianSample,
  type CheckedPool2d,
  type CheckedQConv2d,
  type CheckedQConv2dPool,
  type CheckedQGemm,
  type CheckedQPool2d,
  checkArgsObject,
  checkChannelScales,
  checkGaussianSampleArgs,
  checkGemmBias,
  checkGemmK,
  checkGemmOutput,
  checkPackedInts,
  checkPackWeightsArgs,
  checkPhiloxKey,
  checkPool2dSpec,
  checkQConv2dArgs,
  checkQConv2dPoolArgs,
  checkQGemmArgs,
  checkQNormalArgs,
  checkQPool2dArgs,
  checkSampleInto,
  type GemmOut,
  type GemmOutputSpec,
  gemmOutputBuffer,
  isPackedInts,
  type KernelLimits,
  MAX_KERNEL_ELEMENTS,
  REFERENCE_KERNEL_LIMITS,
} from './kernels/validate.js';
export { checkKnownKeys, keysOf } from './known-keys.js';
export * from './quant/index.js';
export * from './registry/index.js';
export * from './rng/index.js';
