/**
 * @qbnn/qat/testing: the float64 reference of the integer engine, a test oracle. It walks the
 * same IR with its own op table: fake quantisation in float64 where the engine quantises, each
 * integer form's own `reference` sample, brute-force linear algebra, the same random draws. It
 * shares no arithmetic with the integer path; predictions agree with `forward` within one
 * quantisation step per layer.
 * @packageDocumentation
 */

export { compareWithReference, type ReferenceComparison } from './reference/compare.js';
export { fq64 } from './reference/fake-quant.js';
export { conv2dF64, convTranspose2dF64, linearF64, poolF64 } from './reference/float-ops.js';
export { type FloatState, simulate, simulateTrace } from './reference/simulate.js';
