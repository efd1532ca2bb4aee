export { QbnnError, type QbnnErrorCode } from './errors.js';
export { philox4x32, philoxFill } from './rng/philox.js';
export { Rng } from './rng/rng.js';
