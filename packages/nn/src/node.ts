/**
 * @qbnn/nn/node: what touches the file system (Node only). Checkpoint files (save / load of
 * models, safetensors files) and the atomic, checked file helpers under them. Everything else,
 * including the byte-level checkpoint forms `serializeModel` / `deserializeModel` and
 * `encodeSafetensors` / `decodeSafetensors`, is in the main entry '@qbnn/nn' and runs in browsers.
 * @packageDocumentation
 */
export { load, loadSafetensors, readSafetensorsFile, save, saveSafetensors } from './checkpoint-files.js';
export {
  type ReadFileOptions,
  readRegularFile,
  removeStaleTempFiles,
  STALE_TEMP_MS,
  type WriteFileOptions,
  writeFileAtomic,
} from './files.js';
