import type { Module } from '@qbnn/nn';
import { type BayesLayer, bayesLayers } from '@qbnn/posteriors';

/**
 * Bayesian-Torch's parameter names for the tensors of a qbnn location-scale posterior (Gaussian):
 * the linear and LSTM-gate layers say `weight`, the convolutions `kernel`
 * (`LinearReparameterization.mu_weight`, `Conv2dFlipout.rho_kernel`). sigma = log1p(exp(rho))
 * in both libraries, so rho is copied unchanged.
 */
export function bayesianTorchName(layer: BayesLayer, param: string): string | undefined {
  const w = layer.op.kind === 'linear' ? 'weight' : 'kernel';
  switch (param) {
    case 'weight_mu':
      return `mu_${w}`;
    case 'weight_rho':
      return `rho_${w}`;
    case 'bias_mu':
      return 'mu_bias';
    case 'bias_rho':
      return 'rho_bias';
    default:
      return undefined;
  }
}

/** Bayesian-Torch buffers that carry no learned state: noise scratch and prior constants. */
export const BAYESIAN_TORCH_EXTRAS = [
  'eps_weight',
  'eps_kernel',
  'eps_bias',
  'prior_weight_mu',
  'prior_weight_sigma',
  'prior_bias_mu',
  'prior_bias_sigma',
];

/** A state-dict key of a qbnn model and the name the same tensor has in a torch file. */
export interface KeyMapping {
  /** qbnn's key (`conv1.weight_mu`). */
  qbnn: string;
  /** torch's key (`conv1.mu_kernel`). */
  torch: string;
  /** The Bayesian layer's path when the key belongs to one. */
  layer?: string;
}

/**
 * How every key of `model`'s state dict is named in a PyTorch / Bayesian-Torch state dict: the
 * deterministic layers share torch's names (`weight`, `bias`, `running_mean`, `weight_ih_l0`,
 * ...), the Gaussian Bayesian layers take Bayesian-Torch's (`mu_weight`, `rho_kernel`, ...).
 * Posteriors without a Bayesian-Torch counterpart (MC Dropout, SGHMC) keep qbnn's names.
 */
export function torchKeyMapping(model: Module): KeyMapping[] {
  const owner = new Map<string, [string, BayesLayer]>();
  for (const [path, layer] of bayesLayers(model)) {
    for (const name of layer.posterior.parameters().keys())
      owner.set(path ? `${path}.${name}` : name, [path, layer]);
  }
  return Object.keys(model.stateDict()).map((key) => {
    const o = owner.get(key);
    if (o?.[1].posterior.kind !== 'gaussian') return { qbnn: key, torch: key };
    const [path, layer] = o as [string, BayesLayer];
    const param = path ? key.slice(path.length + 1) : key;
    const t = bayesianTorchName(layer, param);
    return t ? { qbnn: key, torch: path ? `${path}.${t}` : t, layer: path } : { qbnn: key, torch: key };
  });
}
