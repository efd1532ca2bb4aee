export { Sigmoid, Tanh } from './activation.js';
export { Dropout, type DropoutOptions, Flatten, Identity, ReLU } from './basic.js';
export { BatchNorm1d } from './batchnorm1d.js';
export {
  isResidualBlock,
  type ReluMaxPoolFusable,
  Residual,
  type ResidualBlock,
  type ResidualOptions,
  Sequential,
} from './container.js';
export {
  Conv2d,
  type Conv2dGeometry,
  type Conv2dOptions,
  type Conv2dParams,
  canConv2dReluMaxPool,
  conv2d,
  conv2dGeometry,
  conv2dReluMaxPool,
  convOutSize,
  type Pair,
  pair,
} from './conv.js';
export {
  type ConvGeometry,
  type ConvGeometryFn,
  type ConvKernelArg,
  type ConvKind,
  type ConvLayerClass,
  type ConvLayerOptions,
  type ConvLayerShape,
  ConvNd,
  type ConvParamsArg,
  convLayerOf,
  convRepr,
} from './conv-nd.js';
export {
  ConvTranspose1d,
  type ConvTranspose1dParams,
  ConvTranspose2d,
  type ConvTranspose2dGeometry,
  type ConvTranspose2dParams,
  ConvTranspose3d,
  type ConvTranspose3dGeometry,
  type ConvTranspose3dParams,
  type ConvTransposeOptions,
  convTranspose1d,
  convTranspose1dGeometry,
  convTranspose1dKind,
  convTranspose2d,
  convTranspose2dGeometry,
  convTranspose2dKind,
  convTranspose3d,
  convTranspose3dGeometry,
  convTranspose3dKind,
} from './conv-transpose.js';
export {
  Conv1d,
  type Conv1dGeometry,
  type Conv1dOptions,
  type Conv1dParams,
  conv1d,
  conv1dGeometry,
  conv1dKind,
} from './conv1d.js';
export {
  Conv3d,
  type Conv3dGeometry,
  type Conv3dOptions,
  type Conv3dParams,
  conv3d,
  conv3dGeometry,
  conv3dKind,
  type Triple,
  triple,
} from './conv3d.js';
export { Linear, type LinearOptions, linear } from './linear.js';
export {
  fromTimeMajor,
  LSTM,
  type LstmLayout,
  type LstmOptions,
  type LstmOutput,
  lstmRecurrence,
  toTimeMajor,
} from './lstm.js';
export { BatchNorm2d, type BatchNorm2dOptions } from './norm.js';
export { AvgPool2d, GlobalAvgPool2d, MaxPool2d, type Pool2dOptions } from './pool.js';
