export {
  Builder,
  type BuildOptions,
  defaultFactory,
  type LayerContext,
  type LayerFactory,
} from './factory.js';
export {
  BasicBlock,
  type LeNet5Config,
  lenet5,
  RegressionMLP,
  type RegressionMlpConfig,
  type ResNet18Config,
  regressionMlp,
  resnet18,
} from './models.js';
export {
  type ArchBuilder,
  architectureRegistry,
  architectures,
  buildModel,
  type CheckpointContents,
  registerArchitecture,
} from './registry.js';
