import '../forms/builtins.js';
import { QbnnError } from '@qbnn/core';
import { BatchNorm2d, Conv2d, Identity, Module } from '@qbnn/nn';
import { BayesConv2d, softplusInverse } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { integerFormFor } from '../forms/registry.js';
import type { ChannelFold } from '../forms/types.js';
import { chainOf, type Leaf, nextIndex, residualChains } from './chain.js';

/** A per-channel bias left by folding a BatchNorm into a layer that had no bias of its own. */
export class FoldedBias extends Module {
  constructor(bias: tf.Tensor) {
    super();
    this.registerParameter('bias', bias);
  }
  forward(x: tf.Tensor): tf.Tensor {
    const shape = x.rank === 4 ? [1, -1, 1, 1] : [1, -1];
    return tf.add(x, tf.reshape(this.param('bias'), shape));
  }
}

/**
 * Folds every BatchNorm2d that directly follows a convolution into it (eval statistics):
 * with f = gamma / sqrt(var + eps), the weight becomes W f and the bias (b - mean) f + beta.
 * Bayesian convolutions (Gaussian, Radial) scale mu by f and sigma by |f| (rho recomputed), the
 * bias posterior likewise; MC Dropout and SGHMC scale their weights (and every SGHMC member's).
 * The BatchNorm is replaced by Identity, or by a {@link FoldedBias} when the conv has no bias.
 * Returns the paths of the folded BatchNorms.
 */
export function foldBatchNorm(model: Module): string[] {
  const folded: string[] = [];
  const visit = (leaves: Leaf[]) => {
    for (let i = 0; i < leaves.length; i++) {
      const [path, m] = leaves[i];
      const parts = residualChains(m, path);
      if (parts) {
        visit(parts.body);
        visit(parts.shortcut);
        continue;
      }
      if (!(m instanceof Conv2d || m instanceof BayesConv2d)) continue;
      const j = nextIndex(leaves, i);
      if (j >= leaves.length || !(leaves[j][1] instanceof BatchNorm2d)) continue;
      const bn = leaves[j][1] as BatchNorm2d;
      const extra = foldInto(m, bn);
      model.setModule(leaves[j][0], extra ? new FoldedBias(extra) : new Identity());
      extra?.dispose();
      folded.push(leaves[j][0]);
    }
  };
  visit(chainOf(model));
  return folded;
}

/** Folds `bn` into `conv`; returns a bias tensor the caller must place when the conv has none. */
function foldInto(conv: Conv2d | BayesConv2d, bn: BatchNorm2d): tf.Tensor | undefined {
  const C = bn.numFeatures;
  const mean = bn.buffer('running_mean').dataSync() as Float32Array;
  const variance = bn.buffer('running_var').dataSync() as Float32Array;
  const gamma = bn.affine ? (bn.param('weight').dataSync() as Float32Array) : new Float32Array(C).fill(1);
  const beta = bn.affine ? (bn.param('bias').dataSync() as Float32Array) : new Float32Array(C);
  const f = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    f[c] = gamma[c] / Math.sqrt(variance[c] + bn.eps);
    shift[c] = beta[c] - mean[c] * f[c];
  }
  const absF = f.map(Math.abs);
  const fold: ChannelFold = {
    scale: f,
    shift,
    scaleRows: (v) =>
      tf.tidy(() => {
        v.assign(tf.mul(v, tf.tensor(Float32Array.from(f), [C, ...v.shape.slice(1).map(() => 1)])));
      }),
    foldBias: (v) =>
      tf.tidy(() => {
        const b = v.dataSync() as Float32Array;
        v.assign(tf.tensor1d(Float32Array.from(b, (x, c) => x * f[c] + shift[c])));
      }),
    scaleSoftplus: (rho) =>
      tf.tidy(() => {
        const r = rho.dataSync() as Float32Array;
        const inner = r.length / C;
        const out = new Float32Array(r.length);
        for (let i = 0; i < r.length; i++) {
          const s = Math.log1p(Math.exp(-Math.abs(r[i]))) + Math.max(r[i], 0);
          out[i] = softplusInverse(Math.max(s * absF[Math.floor(i / inner)], 1e-30));
        }
        rho.assign(tf.tensor(out, rho.shape));
      }),
  };
  if (conv.outChannels !== C)
    throw new QbnnError('ERR_SHAPE', `BatchNorm2d(${C}) after a conv with ${conv.outChannels} channels`);
  if (conv instanceof Conv2d) {
    fold.scaleRows(conv.param('weight'));
    if (conv.hasParam('bias')) {
      fold.foldBias(conv.param('bias'));
      return undefined;
    }
    return tf.tensor1d(Float32Array.from(shift));
  }
  const p = conv.posterior;
  const form = integerFormFor(p.kind);
  if (!form?.foldBatchNorm) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `foldBatchNorm: posterior '${p.kind}' declares no BatchNorm folding (its integer form's foldBatchNorm); prepare with { foldBn: false } to keep the BatchNorm`,
    );
  }
  return form.foldBatchNorm(p, fold) ? undefined : tf.tensor1d(Float32Array.from(shift));
}
