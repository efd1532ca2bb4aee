export * from './fake-quant.js';
export * from './observers.js';
export { fakeQuantValue, paramsFromRange, quantizeValue } from './params.js';
export * from './qconfig.js';
export * from './spec.js';
