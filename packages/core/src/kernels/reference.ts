import { qconv2d } from './conv.js';
import { qnormal, sampleGaussianPacked } from './gaussian.js';
import { qgemm } from './gemm.js';
import { JS_PROVIDER, packWeights } from './pack.js';
import { qconv2dPool, qpool2d } from './pool.js';
import type { KernelProvider } from './types.js';

export { convOutSize, qconv2d } from './conv.js';
export { qnormal, sampleGaussianPacked, sampleGaussianWeights } from './gaussian.js';
export { qgemm } from './gemm.js';
export { JS_PROVIDER, type JsPackedWeights, packWeights } from './pack.js';
export { poolPlanes, qconv2dPool, qpool2d } from './pool.js';

/**
 * The pure-TypeScript reference provider: the oracle every native kernel must match byte for
 * byte, and the fallback when no addon is available. Registered as 'js' with priority 0.
 */
export const referenceKernels: KernelProvider = Object.freeze({
  name: JS_PROVIDER,
  priority: 0,
  isAvailable: () => true,
  packWeights,
  qgemm,
  qconv2d,
  qnormal,
  sampleGaussianPacked,
  qpool2d,
  qconv2dPool,
});
