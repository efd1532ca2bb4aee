/**
 * @qbnn/nn: a torch.nn-style module system over tfjs-core, deterministic layers, the model zoo
 * of the quantised-BNN study, a training loop and safetensors checkpoints (as bytes here, in every
 * JavaScript runtime; as files from '@qbnn/nn/node').
 * @packageDocumentation
 */

export { FusedAdamOptimizer } from './adam.js';
export {
  deserializeModel,
  FORMAT_VERSION,
  type LoadedModel,
  type LoadOptions,
  META_ARCH,
  META_CONFIG,
  META_FORMAT,
  type SaveOptions,
  safeToTensor,
  serializeModel,
  type TensorsToSave,
  tensorToSafe,
} from './checkpoint.js';
export { kaimingUniformBound, type SeedLike, toRng, uniformInit } from './init.js';
export { checkClassLabels, checkFiniteTensor, checkInputBatch, checkPositiveInteger } from './inputs.js';
export * from './layers/index.js';
export { crossEntropy, gaussianNll, labelIndices, mse } from './losses.js';
export {
  type ForwardHook,
  type LoadStateOptions,
  Module,
  type ParameterOptions,
  type StateDict,
} from './module.js';
export {
  CRC_KEY,
  crc32,
  decodeSafetensors,
  dtypeSize,
  type EncodeOptions,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  type SafeData,
  type SafeDtype,
  type SafeTensor,
  type SafetensorsFile,
} from './safetensors.js';
export {
  cosineAnnealing,
  crossEntropyLoss,
  type Dataset,
  type EvalOptions,
  type EvalResult,
  evaluate,
  type FitOptions,
  type FitResult,
  fit,
  type IndexedData,
  type LossFn,
  type LrSchedule,
  type ProgressEvent,
  permutation,
  predict,
  type StepContext,
  setLearningRate,
  type TensorData,
} from './train.js';
export * from './zoo/index.js';
