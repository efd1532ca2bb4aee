/**
 * A third-party posterior plugin for @qbnn/posteriors, written only against the package's public
 * API: a Gaussian whose covariance is diagonal plus rank one,
 *
 *   w = mu + sigma * eps + v * z,   eps ~ N(0, I_n), z ~ N(0, 1),   Sigma = diag(sigma^2) + v v^T,
 *
 * over each of a layer's tensors (weight, bias). The rank-one factor v lets the weights of a
 * layer move together, which a mean-field posterior cannot express.
 *
 * Importing this module registers it as `lowrank`, and its integer form for @qbnn/qat (so its
 * layers convert, sample for real in the integer engine, save and load):
 *
 * ```ts
 * import '@qbnn/example-lowrank-posterior';
 * const layer = new BayesLinear(784, 10, { posterior: 'lowrank', posteriorOptions: { vInit: 1e-3 } });
 * ```
 * @packageDocumentation
 */
import { registerPosterior } from '@qbnn/posteriors';
import { registerLowRankIntegerForm } from './integer-form.js';
import { LowRankGaussianPosterior } from './posterior.js';

export { type LowRankWeights, lowRankForm, registerLowRankIntegerForm } from './integer-form.js';
export { LowRankGaussianPosterior, type LowRankOptions } from './posterior.js';

/** Registers the plugin as `lowrank` with its integer form (done on import; safe to call again). */
export function registerLowRank(): void {
  registerPosterior('lowrank', (spec, options) => new LowRankGaussianPosterior(spec, options), {
    replace: true,
  });
  registerLowRankIntegerForm();
}

registerLowRank();

/**
 * What `qbnn --plugin <this module>` calls after importing it (with the qbnn modules, unused here:
 * inside this workspace the imports above are the same modules): registers again, so a second
 * load in one process still registers.
 */
export default function register(): void {
  registerLowRank();
}
