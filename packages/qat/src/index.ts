/**
 * @qbnn/qat: observers, fake quantisation with straight-through gradients, QConfig, the QAT and
 * PTQ flows for every posterior, BatchNorm folding, and the integer inference engine.
 * @packageDocumentation
 */
export * from './engine/float-ops.js';
export { getKernelProvider } from './engine/provider.js';
export * from './engine/quantized-model.js';
export type * from './engine/types.js';
export { globalAvgPoolU8, poolF64, poolU8 } from './engine/u8-ops.js';
export { ENGINE_MODES, MAX_FORWARD_ELEMENTS } from './engine/validate-input.js';
export * from './fake-quant.js';
export * from './flows.js';
export * from './observers.js';
export { fakeQuantValue, paramsFromRange, quantizeValue } from './params.js';
export * from './qconfig.js';
export {
  assertQuantLayer,
  FakeQuantAfter,
  isWeightedLayer,
  QuantLayer,
  type QuantLayerOptions,
  type WeightedLayer,
} from './quant-layer.js';
export * from './save.js';
export * from './spec.js';
