import type { Module } from '@qbnn/nn';
import { writeFileAtomic } from '@qbnn/nn/node';
import { serializeImported } from './checkpoint.js';
import { serializeTorch } from './export.js';
import type { ImportedModel } from './import.js';

/**
 * Saves an imported model as an ordinary qbnn checkpoint file (safetensors, written atomically)
 * that `nn.load` rebuilds from the file alone: the bytes of `serializeImported`.
 */
export async function saveImported(
  imported: ImportedModel,
  path: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, serializeImported(imported, metadata));
}

/**
 * Writes a model's state dict under PyTorch / Bayesian-Torch names as a safetensors file
 * (atomically; the bytes of `serializeTorch`), which PyTorch reads with
 * `safetensors.torch.load_file` and loads with `load_state_dict`.
 */
export async function exportTorch(model: Module, path: string): Promise<void> {
  await writeFileAtomic(path, serializeTorch(model));
}
