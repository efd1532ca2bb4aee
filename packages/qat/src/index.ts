/**
 * @qbnn/qat: observers, fake quantisation with straight-through gradients, QConfig, the QAT and
 * PTQ flows for every posterior, BatchNorm folding, and the integer inference engine with its
 * registry of integer forms. The float64 reference of the engine (a test oracle) is the
 * `@qbnn/qat/testing` entry point.
 * @packageDocumentation
 */
import './forms/builtins.js';

export type {
  EngineMode,
  QLayerSpec,
  QOp,
  QPool,
  QResidual,
  QuantizedOutput,
} from './engine/ir.js';
export {
  type EngineInput,
  type LayerDescription,
  type ModelDescription,
  type QuantizedForwardOptions,
  QuantizedModel,
} from './engine/quantized-model.js';
export { ENGINE_MODES, MAX_FORWARD_ELEMENTS } from './engine/validate-input.js';
export type { OpTable, Walked } from './engine/walker.js';
export { walk } from './engine/walker.js';
export { FakeQuantize, type FakeQuantizeOptions, fakeQuantize, fakeQuantizeLearnable } from './fake-quant.js';
export * from './flows/index.js';
export { registerBuiltinIntegerForms } from './forms/builtins.js';
export { checkFloats, checkInts, checkParams } from './forms/checks.js';
export type { EnsembleWeights } from './forms/ensemble.js';
export type { FixedWeights } from './forms/fixed.js';
export type { GaussianWeights } from './forms/gaussian.js';
export { type QParamsJson, qparamsFromJson, qparamsToJson } from './forms/json.js';
export type { McDropoutWeights } from './forms/mcdropout.js';
export {
  getIntegerForm,
  integerFormFor,
  listIntegerForms,
  registerIntegerForm,
  unregisterIntegerForm,
} from './forms/registry.js';
export { layerStreams, scalarNormal } from './forms/streams.js';
export type * from './forms/types.js';
export * from './observers.js';
export { fakeQuantValue, paramsFromRange, quantizeValue } from './params.js';
export * from './qconfig.js';
export {
  assertQuantLayer,
  FakeQuantAfter,
  isBayesLayer,
  isWeightedLayer,
  QuantLayer,
  type QuantLayerOptions,
  type WeightedLayer,
} from './quant-layer.js';
export { type QuantizeOptions, quantize } from './quantize.js';
export * from './save.js';
export * from './spec.js';
