/**
 * @qbnn/interop: train in PyTorch, deploy with qbnn. Reads `torch.save` files (a restricted
 * unpickler that never executes code) and safetensors files, maps PyTorch and Bayesian-Torch
 * parameter names onto qbnn's layers and posteriors, and writes models back with torch's names.
 * @packageDocumentation
 */

export { type ArchSpec, buildArch, type LayerSpec, layerSpecTypes, registerLayerSpec } from './arch.js';
export { buildImported, IMPORTED_ARCH, serializeImported } from './checkpoint.js';
export { serializeTorch, toTorchStateDict } from './export.js';
export {
  type ImportedConfig,
  type ImportedLayer,
  type ImportedModel,
  type ImportOptions,
  importTorch,
  type KeyShape,
  type LayerPriorConfig,
  readStateDict,
  StateDictMismatchError,
} from './import.js';
export { BAYESIAN_TORCH_EXTRAS, bayesianTorchName, type KeyMapping, torchKeyMapping } from './names.js';
export { type PyValue, UnsafePickleError } from './pickle.js';
export { floatValues, intValues, LoadedTensor } from './tensors.js';
export { readTorchFile, readTorchStateDict, STATE_DICT_KEYS, stateDictOf } from './torch-file.js';
