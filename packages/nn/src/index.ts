/**
 * @qbnn/nn: a torch.nn-style module system over tfjs-core, deterministic layers, the model zoo
 * of the quantised-BNN study, a training loop and safetensors checkpoints.
 * @packageDocumentation
 */
export { kaimingUniformBound, type SeedLike, toRng, uniformInit } from './init.js';
export * from './layers/index.js';
export {
  type ForwardHook,
  type LoadStateOptions,
  Module,
  type ParameterOptions,
  type StateDict,
} from './module.js';
