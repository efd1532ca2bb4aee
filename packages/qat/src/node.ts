/**
 * @qbnn/qat/node: quantised models as files (Node only). The main entry '@qbnn/qat' holds
 * everything else, including `serializeQuantized` / `deserializeQuantized` on bytes, and runs in
 * browsers.
 * @packageDocumentation
 */
export { loadQuantized, saveQuantized } from './files.js';
