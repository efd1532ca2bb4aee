// Monte Carlo classification of one digit with a quantised Bayesian network, and the numbers a
// user needs to trust it or not: the predictive distribution, its entropy, the mutual
// information between prediction and weights (epistemic uncertainty) and a referral flag.
import { uncertaintyScores } from '@qbnn/metrics';
import type { QuantizedModel } from '@qbnn/qat';

/** Refer to a human when the predictive entropy reaches this share of its maximum, ln(classes). */
export const REFER_SHARE = 0.5;

export interface Classification {
  /** Float logits of every sample, [samples, classes]. */
  logits: Float32Array;
  /** Softmax of every sample, [samples, classes], float64. */
  probs: Float64Array;
  /** Predictive distribution: the mean of the samples' softmax, [classes]. */
  mean: Float64Array;
  prediction: number;
  /** Predictive entropy (nats). */
  entropy: number;
  /** Mutual information (nats): predictive entropy minus the mean entropy of the samples. */
  mutualInformation: number;
  /** True when the entropy is at least REFER_SHARE of ln(classes). */
  refer: boolean;
  samples: number;
  seed: number;
}

/** Softmax of each row of `logits` ([rows, classes]) in float64. */
export function softmaxRows(logits: Float32Array, classes: number): Float64Array {
  const p = new Float64Array(logits.length);
  for (let off = 0; off < logits.length; off += classes) {
    let m = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[off + c]);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(logits[off + c] - m);
    for (let c = 0; c < classes; c++) p[off + c] = Math.exp(logits[off + c] - m) / s;
  }
  return p;
}

/**
 * Classifies one image (`pixels`: the model's input, e.g. 784 values in [0, 1]) with `samples`
 * Monte Carlo draws of the integer engine, reproducibly for a given `seed`.
 */
export function classify(
  model: QuantizedModel,
  pixels: Float32Array,
  samples: number,
  seed: number,
): Classification {
  const out = model.forward(pixels, { samples, seed });
  const probs = softmaxRows(out.logits, out.classes);
  const s = uncertaintyScores(probs, { samples, n: 1, classes: out.classes });
  const entropy = s.entropy[0];
  return {
    logits: out.logits,
    probs,
    mean: s.mean,
    prediction: s.prediction[0],
    entropy,
    mutualInformation: s.mutualInformation[0],
    refer: entropy >= REFER_SHARE * Math.log(out.classes),
    samples,
    seed,
  };
}
