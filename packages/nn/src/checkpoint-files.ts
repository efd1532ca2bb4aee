// Checkpoint files: the path-based save and load of @qbnn/nn (Node only; exported from
// '@qbnn/nn/node'). The byte-level forms (serializeModel, deserializeModel, encode/decode
// safetensors) are in the main entry and work everywhere.

import {
  deserializeModel,
  type LoadedModel,
  type LoadOptions,
  type SaveOptions,
  serializeModel,
  type TensorsToSave,
  toSafeMap,
} from './checkpoint.js';
import { readRegularFile, writeFileAtomic } from './files.js';
import type { Module } from './module.js';
import type { EncodeOptions, SafetensorsFile } from './safetensors.js';
import { decodeSafetensors, encodeSafetensors, headerLength } from './safetensors.js';

/** Encodes tensors (see {@link encodeSafetensors}) and writes them atomically to `path`. */
export async function saveSafetensors(
  path: string,
  tensors: TensorsToSave,
  metadata: Record<string, string> = {},
  opts: EncodeOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(toSafeMap(tensors), metadata, opts));
}

/** Largest safetensors file read: 4 GiB - 1, the largest byte array of this runtime. */
const MAX_FILE_BYTES = 2 ** 32 - 1;

/**
 * Reads a safetensors file's bytes: a regular file only (a FIFO, a device or a directory is an
 * ERR_ARG before any read), its header length checked against the file's size and the header
 * limit from the first 8 bytes, and never more bytes read than the size seen at open.
 */
export async function readSafetensorsFile(path: string, what = 'safetensors file'): Promise<Uint8Array> {
  return readRegularFile(path, {
    what,
    maxBytes: MAX_FILE_BYTES,
    headBytes: 8,
    checkHead: (head, size) => {
      headerLength(head, size);
    },
  });
}

/** Reads and validates a safetensors file (see {@link readSafetensorsFile} and {@link decodeSafetensors}). */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  return decodeSafetensors(await readSafetensorsFile(path));
}

/**
 * Saves a model's parameters and persistent buffers (its state dict) to a safetensors file,
 * atomically (temp file + rename). With `arch` and `config`, {@link load} can rebuild it.
 */
export async function save(model: Module, path: string, opts: SaveOptions = {}): Promise<void> {
  await writeFileAtomic(path, serializeModel(model, opts));
}

/**
 * Loads a checkpoint written by {@link save}. Without `opts.model`, the model is rebuilt from the
 * file's `qbnn.arch` / `qbnn.config` through the architecture registry. The file is read as
 * {@link readSafetensorsFile} reads it (regular files only, header length checked first), fully
 * validated (see {@link decodeSafetensors}), and the state dict checked key by key for shape and
 * dtype before anything is assigned.
 */
export async function load<M extends Module = Module>(
  path: string,
  opts: LoadOptions<M> = {},
): Promise<LoadedModel<M>> {
  return deserializeModel(await readSafetensorsFile(path, 'checkpoint'), opts);
}
