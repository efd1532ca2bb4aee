export {
  type AffineOptions,
  dequantize,
  fakeQuantize,
  type QuantizedArray,
  quantize,
} from './affine.js';
export {
  accumulatorScales,
  type GaussianSampleScales,
  gaussianSampleMultipliers,
  requantMultipliers,
} from './multipliers.js';
export { PackedIntReader, packedByteLength, packInts, unpackInts } from './packing.js';
export {
  channelMinMax,
  checkQuantParams,
  computePerChannelQuantParams,
  computeQuantParams,
  MAX_BITS,
  MIN_BITS,
  MIN_SCALE,
  minMax,
  type PerChannelQuantParams,
  type QuantParams,
  type QuantParamsLike,
  type QuantSpec,
  qRange,
} from './params.js';
export { roundHalfEven } from './round.js';
