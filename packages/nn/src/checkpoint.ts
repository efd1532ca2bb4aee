import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Module, StateDict } from './module.js';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from './safetensors.js';
import { buildModel, type CheckpointContents } from './zoo/registry.js';

/** Metadata keys qbnn writes into model checkpoints. */
export const META_FORMAT = 'qbnn.format';
export const META_ARCH = 'qbnn.arch';
export const META_CONFIG = 'qbnn.config';
/** Value of `qbnn.format` for model checkpoints written by this version. */
export const FORMAT_VERSION = 'qbnn-nn/1';

/** Converts a tfjs tensor into a safetensors entry (float32 to F32, int32 to I32, bool to BOOL). */
export function tensorToSafe(t: tf.Tensor): SafeTensor {
  const v = t.dataSync();
  switch (t.dtype) {
    case 'float32':
      return { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(v as Float32Array) };
    case 'int32':
      return { dtype: 'I32', shape: [...t.shape], data: Int32Array.from(v as Int32Array) };
    case 'bool':
      return { dtype: 'BOOL', shape: [...t.shape], data: Uint8Array.from(v as Uint8Array) };
    default:
      throw new QbnnError('ERR_UNSUPPORTED', `cannot store a ${t.dtype} tensor in safetensors`);
  }
}

/**
 * Converts a safetensors entry into a tfjs tensor: F32 to float32, BOOL to bool, the integer
 * types that fit (I32, I16, U16, I8, U8) to int32. Other dtypes are ERR_UNSUPPORTED (use the
 * typed arrays of {@link decodeSafetensors} directly).
 */
export function safeToTensor(name: string, t: SafeTensor): tf.Tensor {
  switch (t.dtype) {
    case 'F32':
      return tf.tensor(t.data as Float32Array, t.shape, 'float32');
    case 'BOOL':
      return tf.tensor(t.data as Uint8Array, t.shape, 'bool');
    case 'I32':
    case 'I16':
    case 'U16':
    case 'I8':
    case 'U8':
      return tf.tensor(Int32Array.from(t.data as Int32Array), t.shape, 'int32');
    default:
      throw new QbnnError('ERR_UNSUPPORTED', `tensor '${name}': ${t.dtype} has no tfjs dtype`);
  }
}

/** Tensors accepted by `saveSafetensors` (@qbnn/nn/node): safetensors entries or tfjs tensors. */
export type TensorsToSave = Record<string, SafeTensor | tf.Tensor>;

/** Tensors as safetensors entries (tfjs tensors read back). */
export function toSafeMap(tensors: TensorsToSave): Record<string, SafeTensor> {
  const out: Record<string, SafeTensor> = {};
  for (const [k, v] of Object.entries(tensors)) out[k] = v instanceof tf.Tensor ? tensorToSafe(v) : v;
  return out;
}

/** Options of {@link save} and {@link serializeModel}. */
export interface SaveOptions {
  /** Registered architecture name, so {@link load} can rebuild the model from the file alone. */
  arch?: string;
  /** JSON-serialisable config passed to the architecture builder. */
  config?: Record<string, unknown>;
  /** Extra string metadata. */
  metadata?: Record<string, string>;
}

/** A model's state dict as safetensors bytes, with arch / config metadata. */
export function serializeModel(model: Module, opts: SaveOptions = {}): Uint8Array {
  const meta: Record<string, string> = { ...opts.metadata, [META_FORMAT]: FORMAT_VERSION };
  if (opts.arch !== undefined) meta[META_ARCH] = opts.arch;
  if (opts.config !== undefined) meta[META_CONFIG] = JSON.stringify(opts.config);
  return encodeSafetensors(toSafeMap(model.stateDict()), meta);
}

/** What {@link load} returns. */
export interface LoadedModel<M extends Module = Module> {
  model: M;
  arch: string | undefined;
  config: Record<string, unknown> | undefined;
  metadata: Record<string, string>;
}

/** Options of {@link load} and {@link deserializeModel}. */
export interface LoadOptions<M extends Module = Module> {
  /** Load into this model instead of building one from the file's architecture. */
  model?: M;
  /** Require every key to match (default true). */
  strict?: boolean;
}

/** Restores a model from safetensors bytes (see {@link load}). */
export function deserializeModel<M extends Module = Module>(
  bytes: Uint8Array,
  opts: LoadOptions<M> = {},
): LoadedModel<M> {
  const file = decodeSafetensors(bytes);
  const arch = file.metadata[META_ARCH];
  let config: Record<string, unknown> | undefined;
  if (file.metadata[META_CONFIG] !== undefined) {
    try {
      config = JSON.parse(file.metadata[META_CONFIG]) as Record<string, unknown>;
    } catch {
      throw new QbnnError('ERR_FORMAT', `checkpoint: metadata ${META_CONFIG} is not valid JSON`);
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new QbnnError('ERR_FORMAT', `checkpoint: metadata ${META_CONFIG} is not a JSON object`);
    }
  }
  let model = opts.model;
  const built = model === undefined;
  if (!model) {
    if (arch === undefined) {
      throw new QbnnError(
        'ERR_FORMAT',
        `checkpoint has no ${META_ARCH} metadata: pass the model to load into`,
      );
    }
    const contents: CheckpointContents = {
      tensors: Object.fromEntries(
        Object.entries(file.tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]),
      ),
    };
    model = buildModel(arch, config ?? {}, contents) as M;
  }
  const state: StateDict = {};
  try {
    for (const [k, t] of Object.entries(file.tensors)) state[k] = safeToTensor(k, t);
    model.loadStateDict(state, { strict: opts.strict ?? true });
  } catch (e) {
    if (built) model.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(state));
  }
  return { model, arch, config, metadata: file.metadata };
}
