import type { Module } from '@qbnn/nn';
import type { Posterior } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { QuantLayer } from '../quant-layer.js';

type MemberPosterior = Posterior & Required<Pick<Posterior, 'ensembleSize' | 'copyMember'>>;

/** The QAT-prepared layers whose posterior is an ensemble of stored copies of its parameters. */
function ensembleLayers(model: Module): [QuantLayer, MemberPosterior][] {
  const out: [QuantLayer, MemberPosterior][] = [];
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof QuantLayer)) continue;
    const p = (m.inner as { posterior?: Posterior }).posterior;
    if (p?.copyMember && (p.ensembleSize?.() ?? 0) > 0) out.push([m, p as MemberPosterior]);
  }
  return out;
}

/**
 * Runs QAT fine-tuning `train` once per ensemble member when the model's posteriors are
 * ensembles (SGHMC): the members are what the model predicts with, stored as copies that no
 * optimiser sees, so member k is loaded into the trainable parameters, fine-tuned through its
 * own quantisation points, and stored back. The parameters (the chain's position, which `mean`
 * mode uses) are restored afterwards. Without ensembles `train` runs once (with `null`); a run
 * that returns `false` (aborted) stops the loop.
 */
export async function fineTuneMembers(
  model: Module,
  train: (member: number | null) => Promise<boolean>,
): Promise<void> {
  const layers = ensembleLayers(model);
  if (layers.length === 0) {
    await train(null);
    return;
  }
  const size = Math.min(...layers.map(([, p]) => p.ensembleSize()));
  const saved = layers.map(([, p]) => [...p.parameters().values()].map((v) => tf.keep(v.clone())));
  try {
    for (let k = 0; k < size; k++) {
      for (const [q, p] of layers) {
        p.copyMember(k, 'load');
        q.trainMember = k;
      }
      const go = await train(k);
      for (const [, p] of layers) p.copyMember(k, 'store');
      if (!go) break;
    }
  } finally {
    layers.forEach(([q, p], i) => {
      q.trainMember = null;
      [...p.parameters().values()].forEach((v, j) => {
        v.assign(saved[i][j]);
      });
    });
    tf.dispose(saved.flat());
  }
}
