/**
 * @qbnn/posteriors: posterior plugins (Gaussian, Radial, MC Dropout, SGHMC and your own),
 * Bayesian layers, priors, KL divergences, the ELBO and its KL schedules, the MC predictive
 * and conversion of deterministic models.
 * @packageDocumentation
 */
import './builtins.js';

export { registerBuiltinPosteriors } from './builtins.js';
export * from './conv-layers.js';
export * from './dnn-to-bnn.js';
export * from './elbo.js';
export * from './gaussian.js';
export * from './init.js';
export * from './kl.js';
export * from './layers.js';
export * from './locscale.js';
export * from './lstm.js';
export * from './math.js';
export * from './mcdropout.js';
export * from './model.js';
export * from './ops.js';
export * from './priors.js';
export * from './radial.js';
export * from './random.js';
export * from './registry.js';
export * from './schedules.js';
export * from './sghmc.js';
export type * from './types.js';
