// Quantised-model files (Node only; exported from '@qbnn/qat/node'). The byte-level forms
// serializeQuantized / deserializeQuantized are in the main entry and work everywhere.
import { loadSafetensors, writeFileAtomic } from '@qbnn/nn/node';
import type { QuantizedModel } from './engine/quantized-model.js';
import { deserializeQuantized, serializeQuantized } from './save.js';

/** Saves a quantised model to a safetensors file (atomically). */
export async function saveQuantized(qm: QuantizedModel, path: string): Promise<void> {
  await writeFileAtomic(path, serializeQuantized(qm));
}

/** Loads a quantised model saved by {@link saveQuantized}. */
export async function loadQuantized(path: string): Promise<QuantizedModel> {
  return deserializeQuantized(await loadSafetensors(path));
}
