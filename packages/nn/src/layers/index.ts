export { Sigmoid, Tanh } from './activation.js';
export { Dropout, type DropoutOptions, Flatten, Identity, ReLU } from './basic.js';
export {
  isResidualBlock,
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
  conv2d,
  conv2dGeometry,
  convOutSize,
  type Pair,
  pair,
} from './conv.js';
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
