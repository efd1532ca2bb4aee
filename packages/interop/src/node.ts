/**
 * @qbnn/interop/node: what writes files (Node only): `saveImported` and `exportTorch`. Reading PyTorch and
 * safetensors bytes, mapping names, `serializeImported` and `serializeTorch` are in the main entry
 * '@qbnn/interop' and run in browsers.
 * @packageDocumentation
 */
export { exportTorch, saveImported } from './files.js';
