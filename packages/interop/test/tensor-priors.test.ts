import { initBackend } from '@qbnn/core';
import { decodeSafetensors, deserializeModel, encodeSafetensors, type Module } from '@qbnn/nn';
import { bayesLayers } from '@qbnn/posteriors';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTorch, serializeImported, serializeTorch } from '../src/index.js';

// An older Bayesian-Torch file: a Gaussian linear layer with per-element (MOPED) prior buffers.
const OUT = 3;
const IN = 4;
function values(n: number, f: (i: number) => number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => f(i));
}
const file = {
  'fc.mu_weight': values(OUT * IN, (i) => Math.sin(i + 1) * 0.3),
  'fc.rho_weight': values(OUT * IN, (i) => -3 + 0.1 * i),
  'fc.mu_bias': values(OUT, (i) => 0.05 * i),
  'fc.rho_bias': values(OUT, (i) => -4 + 0.2 * i),
  'fc.prior_weight_mu': values(OUT * IN, (i) => Math.cos(i) * 0.2),
  'fc.prior_weight_sigma': values(OUT * IN, (i) => 0.05 + 0.01 * i),
  'fc.prior_bias_mu': values(OUT, (i) => -0.1 * i),
  'fc.prior_bias_sigma': values(OUT, (i) => 0.2 + 0.1 * i),
};
const shapeOf = (k: string) => (k.endsWith('bias') || k.includes('_bias_') ? [OUT] : [OUT, IN]);
const bytes = encodeSafetensors(
  Object.fromEntries(
    Object.entries(file).map(([k, v]) => [k, { dtype: 'F32' as const, shape: shapeOf(k), data: v }]),
  ),
);
const arch = { layers: [{ name: 'fc', type: 'Linear' as const, in_features: IN, out_features: OUT }] };

/** KL(q || p) of the file's layer in float64: per-element Gaussians, q's sigma = log1p(exp(rho)). */
function klFloat64(): number {
  let kl = 0;
  for (const part of ['weight', 'bias'] as const) {
    const mq = file[`fc.mu_${part}`];
    const rho = file[`fc.rho_${part}`];
    const mp = file[`fc.prior_${part}_mu`];
    const sp = file[`fc.prior_${part}_sigma`];
    for (let i = 0; i < mq.length; i++) {
      const sq = Math.log1p(Math.exp(rho[i]));
      kl += Math.log(sp[i] / sq) + (sq * sq + (mq[i] - mp[i]) ** 2) / (2 * sp[i] * sp[i]) - 0.5;
    }
  }
  return kl;
}

const klOf = (model: Module) => {
  const [[, layer]] = bayesLayers(model);
  const t = layer.kl();
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

describe('per-element priors of an imported Bayesian-Torch layer', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('drive the KL on import, survive the qbnn checkpoint, and stay out of the torch export', () => {
    const reference = klFloat64();
    const imported = importTorch(bytes, arch);
    expect(klOf(imported.model)).toBeCloseTo(reference, 2);
    // Saved and rebuilt from the bytes alone: the same per-element prior, not N(0, 1).
    const back = deserializeModel(serializeImported(imported));
    expect(Math.abs(klOf(back.model) - reference) / reference).toBeLessThan(1e-5);
    // The torch export has Bayesian-Torch's persistent keys only (priors are non-persistent there).
    const exported = Object.keys(decodeSafetensors(serializeTorch(back.model)).tensors).sort();
    expect(exported).toEqual(['fc.mu_bias', 'fc.mu_weight', 'fc.rho_bias', 'fc.rho_weight']);
    imported.model.dispose();
    back.model.dispose();
  });

  it('a checkpoint whose config claims a prior buffer larger than the layer is ERR_FORMAT', () => {
    const imported = importTorch(bytes, arch);
    const config = JSON.parse(JSON.stringify(imported.config));
    config.priors.fc.weight = { shape: [1e6, 1e6] };
    const crafted = serializeImported({ ...imported, config });
    imported.model.dispose();
    expect(() => deserializeModel(crafted)).toThrow(/buffer shape \[1000000,1000000\] must be/);
  });
});
