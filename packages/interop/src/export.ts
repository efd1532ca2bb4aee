import { encodeSafetensors, type Module, type SafeTensor, tensorToSafe } from '@qbnn/nn';
import { torchKeyMapping } from './names.js';
import { priorBufferKeys } from './tensor-priors.js';

/**
 * A model's state dict under PyTorch / Bayesian-Torch names (see `torchKeyMapping`): Gaussian
 * Bayesian layers as `mu_weight` / `rho_weight` (linear) or `mu_kernel` / `rho_kernel`
 * (convolutions), deterministic layers under torch's own names, int32 counters as int64 like
 * torch's `num_batches_tracked`. Bayesian-Torch keeps its priors in non-persistent buffers, so
 * none are written (nor the prior buffers an imported per-element prior is held in): `load_state_dict` of the matching torch module accepts the dict as it is.
 */
export function toTorchStateDict(model: Module): Record<string, SafeTensor> {
  const own = model.stateDict();
  const out: Record<string, SafeTensor> = {};
  const held = priorBufferKeys(model);
  for (const { qbnn, torch } of torchKeyMapping(model)) {
    if (held.has(qbnn)) continue;
    const t = tensorToSafe(own[qbnn]);
    out[torch] =
      t.dtype === 'I32'
        ? { dtype: 'I64', shape: t.shape, data: BigInt64Array.from(t.data as Int32Array, (v) => BigInt(v)) }
        : t;
  }
  return out;
}

/**
 * {@link toTorchStateDict} as safetensors bytes, which PyTorch reads with
 * `safetensors.torch.load` (or any safetensors reader) and loads with `load_state_dict`.
 * `exportTorch` of '@qbnn/interop/node' writes them to a file.
 */
export function serializeTorch(model: Module): Uint8Array {
  return encodeSafetensors(toTorchStateDict(model), {}, { checksum: false });
}
