import { QbnnError } from '@qbnn/core';
import type { QParams } from '../spec.js';
import { foldPointPosterior, storedWeightForm } from './fixed.js';
import type { IntegerForm, IntegerWeights } from './types.js';

/**
 * MC Dropout: a deterministic integer weight; the randomness is the Bernoulli mask on the
 * layer's input (the IR's `layer.dropout`: drop probability and the masked input's own params,
 * with 1 / (1 - p) folded into its requantisation).
 */
export interface McDropoutWeights extends IntegerWeights {
  kind: 'mcdropout';
  w: Int8Array;
  wq: QParams;
  bias?: Float32Array;
}

export const mcDropoutForm: IntegerForm<McDropoutWeights> = {
  kind: 'mcdropout',
  posteriors: ['mcdropout'],
  points: [{ name: 'weight', signed: true }],
  fromFloat(ctx) {
    const p = ctx.posterior;
    if (!p) throw new QbnnError('ERR_ARG', `convert: '${ctx.path}': the mcdropout form needs a posterior`);
    const s = p.sample();
    const wq = ctx.point('weight', { values: s.weight });
    const weights: McDropoutWeights = {
      kind: 'mcdropout',
      w: ctx.quantize(s.weight, wq) as Int8Array,
      wq,
      bias: ctx.bias(s.bias),
    };
    const dropP = (p as unknown as { p?: unknown }).p;
    // at p = 0, or where no mask was observed (the network input): a plain deterministic layer
    if (typeof dropP !== 'number' || !(dropP > 0)) return { weights };
    const masked = ctx.maskedInput;
    return masked ? { weights, dropout: { p: dropP, masked } } : { weights };
  },
  foldBatchNorm: (p, fold) => foldPointPosterior(p, fold),
  // the weight is the same for every sample (the mask makes the samples differ)
  ...storedWeightForm('mcdropout'),
};
