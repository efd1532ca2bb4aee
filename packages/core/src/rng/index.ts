export { bernoulliFill, bernoulliThreshold } from './bernoulli.js';
export { erfc, normalCdf } from './erfc.js';
export {
  NORMAL_COEFFICIENTS,
  NORMAL_FILL_MIN,
  type NormalFill,
  normalFill,
  normalsFromWords,
  setNormalFill,
} from './normal.js';
export { philox4x32, philoxFill } from './philox.js';
export { QNORMAL_SCALE, QNORMAL_THRESHOLDS, qnormalFill, qnormalFromWord, qnormalPmf } from './qnormal.js';
export { Rng } from './rng.js';
export { normalTensor } from './tensor.js';
export { setUniformFill, UNIFORM_FILL_MIN, type UniformFill, uniformFill } from './uniform.js';
