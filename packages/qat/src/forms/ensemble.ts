import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { fail } from './checks.js';
import {
  type FixedWeights,
  fixedBytes,
  fixedReference,
  fixedSample,
  foldPointPosterior,
  loadFixed,
  saveFixed,
  validateFixed,
} from './fixed.js';
import type { ConvertedLayer, FromFloatContext, IntegerForm, IntegerWeights } from './types.js';

/** Weight sets stored separately, sample l using member l mod size: the `ensemble` form. */
export interface EnsembleWeights extends IntegerWeights {
  kind: 'ensemble';
  members: FixedWeights[];
}

/**
 * SGHMC: every collected member quantised like a pointwise network, with its own observed weight
 * params (DESIGN.md section 3); sample l runs member l mod size.
 */
export const ensembleForm: IntegerForm<EnsembleWeights> = {
  kind: 'ensemble',
  posteriors: ['sghmc'],
  points: [{ name: 'weight', signed: true }],
  fromFloat(ctx) {
    const p = ctx.posterior;
    const size = p?.ensembleSize?.() ?? 0;
    if (!p?.select || size === 0) {
      throw new QbnnError(
        'ERR_ARG',
        `convert: '${ctx.path}': the ensemble form needs a posterior with collected members (ensembleSize() > 0 and select)`,
      );
    }
    const members: FixedWeights[] = [];
    try {
      for (let m = 0; m < size; m++) {
        p.select(m);
        const s = p.sample();
        const wq = ctx.point('weight', { member: m, values: s.weight });
        members.push({
          kind: 'fixed',
          w: ctx.quantize(s.weight, wq) as Int8Array,
          wq,
          bias: ctx.bias(s.bias),
        });
      }
    } finally {
      p.select(null);
    }
    return { weights: { kind: 'ensemble', members } };
  },
  foldBatchNorm(p, fold) {
    // SGHMC keeps its collected members as buffers member<k>_weight / member<k>_bias
    const buffers = p.buffers();
    const members: { weight: tf.Variable; bias?: tf.Variable }[] = [];
    for (let k = 0; buffers.has(`member${k}_weight`); k++) {
      const weight = buffers.get(`member${k}_weight`);
      const bias = buffers.get(`member${k}_bias`);
      if (!(weight instanceof tf.Variable)) continue;
      members.push({ weight, bias: bias instanceof tf.Variable ? bias : undefined });
    }
    return foldPointPosterior(p, fold, members);
  },
  stochastic: () => true,
  sample: (w, ctx) => fixedSample(w.members[ctx.l % w.members.length], ctx),
  plan: (w, ctx) => ({ kind: 'sets', sets: w.members.map((m) => fixedSample(m, ctx)), cycle: true }),
  validate(w, { n, k }, path) {
    const members = (w as { members?: unknown }).members;
    if (!Array.isArray(members) || members.length === 0) fail(`${path}.members`, 'must be a non-empty array');
    members.forEach((m, j) => {
      validateFixed(m, n, k, `${path}.members[${j}]`);
    });
  },
  // an ensemble has no Gaussian moments: local mode samples members as in weights mode
  local: 'weights',
  reference: (w, ctx) => fixedReference(w.members[ctx.l % w.members.length], ctx.n, ctx.k),
  sizeBytes: (w) => w.members.reduce((a, m) => a + fixedBytes(m), 0),
  weightBits: (w) => w.members[0].wq.bits,
  save: (w, put, shape) => ({ members: w.members.map((m, j) => saveFixed(m, put, `member${j}.`, shape)) }),
  load(json, get, shape) {
    const list = json.members;
    if (!Array.isArray(list) || list.length === 0) {
      throw new QbnnError('ERR_FORMAT', 'quantised model: an ensemble layer needs at least one member');
    }
    return {
      kind: 'ensemble',
      members: list.map((m, j) => ({
        kind: 'fixed' as const,
        ...loadFixed(m as Record<string, unknown>, get, `member${j}.`, shape, `ensemble member ${j}`),
      })),
    };
  },
};

/**
 * The explicit opt-in for a posterior without an integer form (`convert({ storedDraws })`):
 * `ctx.storedDraws` weight draws quantised with the observed weight params, stored as an
 * ensemble. Monte Carlo samples repeat after that many draws, so this is not the posterior.
 */
export function storedDrawsFromFloat(ctx: FromFloatContext): ConvertedLayer<EnsembleWeights> {
  const p = ctx.posterior;
  const draws = ctx.storedDraws ?? 0;
  if (!p || !(draws >= 1)) throw new QbnnError('ERR_ARG', `convert: '${ctx.path}': storedDraws must be >= 1`);
  const wq = ctx.point('weight');
  const members: FixedWeights[] = [];
  for (let d = 0; d < draws; d++) {
    const s = p.sample();
    members.push({ kind: 'fixed', w: ctx.quantize(s.weight, wq) as Int8Array, wq, bias: ctx.bias(s.bias) });
    tf.dispose([s.weight, ...(s.bias ? [s.bias] : [])]);
  }
  return { weights: { kind: 'ensemble', members } };
}
