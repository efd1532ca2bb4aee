import { QbnnError } from '@qbnn/core';
import { checkPositiveInteger, Flatten, Identity, type Module, ReLU, Sequential } from '@qbnn/nn';
import { BayesLSTM } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkLayerOverrides,
  defaultQConfig,
  makeFakeQuant,
  type QConfig,
  resolveQConfig,
} from '../qconfig.js';
import { FakeQuantAfter, isWeightedLayer, QuantLayer } from '../quant-layer.js';
import { chainOf, isPassThrough, type Leaf, nextIndex, residualChains } from './chain.js';
import { FoldedBias, foldBatchNorm } from './fold-bn.js';

/** Options of {@link prepare} and {@link prepareQat}. */
export interface PrepareOptions {
  /** Fold BatchNorms into the preceding convolutions first (default true). */
  foldBn?: boolean;
}

function prepareChain(model: Module, leaves: Leaf[], qc: QConfig, top: boolean): void {
  const weighted = leaves.map(([, m], i) => (isWeightedLayer(m) ? i : -1)).filter((i) => i >= 0);
  const last = weighted[weighted.length - 1];
  // the network input is quantised by the first layer when only reshapes come before it
  const firstReal = leaves.findIndex(([, m]) => !isPassThrough(m) && !(m instanceof Flatten));
  for (let i = 0; i < leaves.length; i++) {
    const [path, m] = leaves[i];
    const parts = residualChains(m, path);
    if (parts) {
      prepareChain(model, parts.body, qc, false);
      prepareChain(model, parts.shortcut, qc, false);
      const post = model.getModule(parts.postPath);
      const fq = makeFakeQuant(resolveQConfig(qc, parts.postPath).activation);
      model.setModule(parts.postPath, new FakeQuantAfter(post, fq));
      continue;
    }
    if (m instanceof BayesLSTM) {
      // its two maps become integer layers with float outputs; both observe their inputs (x_t,
      // and h_{t-1}: the grid of h)
      for (const map of ['ih', 'hh'] as const) {
        const at = `${path}.${map}`;
        const quantizeInput = map === 'hh' || (top && i === firstReal);
        model.setModule(
          at,
          new QuantLayer(m.child(map), resolveQConfig(qc, at), {
            quantizeInput,
            quantizeOutput: false,
            relu: false,
          }),
        );
      }
      continue;
    }
    if (!isWeightedLayer(m) && !(m instanceof ReLU) && m.children().length > 0) {
      // an unknown container: quantise what it holds without fusing (its order is not known)
      prepareLoose(model, m, path, qc);
      continue;
    }
    if (m instanceof ReLU) {
      // a ReLU not fused into a layer (fused ones were replaced already)
      model.setModule(path, new FakeQuantAfter(m, makeFakeQuant(resolveQConfig(qc, path).activation)));
      continue;
    }
    if (!isWeightedLayer(m)) continue;
    const j = nextIndex(leaves, i);
    let extraBias: tf.Tensor | undefined;
    let k = j;
    if (k < leaves.length && leaves[k][1] instanceof FoldedBias) {
      extraBias = (leaves[k][1] as FoldedBias).param('bias');
      model.setModule(leaves[k][0], new Identity());
      k = nextIndex(leaves, k);
    }
    const relu = k < leaves.length && leaves[k][1] instanceof ReLU;
    if (relu) {
      model.setModule(leaves[k][0], new Identity());
      leaves[k] = [leaves[k][0], new Identity()];
    }
    const ql = new QuantLayer(m, resolveQConfig(qc, path), {
      quantizeInput: top && i === firstReal,
      quantizeOutput: !top || i !== last,
      relu,
    });
    if (extraBias) ql.foldedBias = tf.variable(extraBias.clone(), false);
    model.setModule(path, ql);
  }
}

function prepareLoose(model: Module, m: Module, path: string, qc: QConfig): void {
  for (const [n, c] of m.namedChildren()) {
    const p = path ? `${path}.${n}` : n;
    if (isWeightedLayer(c)) {
      model.setModule(
        p,
        new QuantLayer(c, resolveQConfig(qc, p), { quantizeInput: false, quantizeOutput: true, relu: false }),
      );
    } else if (c instanceof ReLU) {
      model.setModule(p, new FakeQuantAfter(c, makeFakeQuant(resolveQConfig(qc, p).activation)));
    } else if (c instanceof Sequential) {
      prepareChain(model, chainOf(c, p), qc, false);
    } else if (residualChains(c, p)) {
      prepareChain(model, [[p, c]], qc, false);
    } else if (c.children().length > 0) prepareLoose(model, c, p, qc);
  }
}

function preparedLeaves(model: Module): (QuantLayer | FakeQuantAfter)[] {
  return model
    .modules()
    .filter((m): m is QuantLayer | FakeQuantAfter => m instanceof QuantLayer || m instanceof FakeQuantAfter);
}

/** Switches observers and fake quantisation of a prepared model on or off. */
export function setQuantState(model: Module, state: { observe?: boolean; fakeQuant?: boolean }): void {
  for (const m of preparedLeaves(model)) {
    if (m instanceof QuantLayer) m.setQuantState(state);
    else {
      if (state.observe !== undefined) m.fq.observerEnabled = state.observe;
      if (state.fakeQuant !== undefined) m.fq.fakeQuantEnabled = state.fakeQuant;
    }
  }
}

function prepareCommon(model: Module, qc: QConfig, opts: PrepareOptions): Module {
  if (model.modules().some((m) => m instanceof QuantLayer)) {
    throw new QbnnError('ERR_ARG', 'model is already prepared');
  }
  checkLayerOverrides(
    qc,
    model.namedModules().map(([path]) => path),
  );
  if (opts.foldBn ?? true) {
    model.eval();
    foldBatchNorm(model);
  }
  prepareChain(model, chainOf(model), qc, true);
  return model;
}

/**
 * Post-training quantisation, step 1 (Bayesian-Torch style): folds BatchNorms, wraps every
 * linear/conv layer (deterministic or Bayesian, any posterior) in a {@link QuantLayer} with
 * observers at the Ferianc points, and fuses ReLUs. Observers record; nothing is fake-quantised
 * yet. The model is modified in place and returned.
 */
export function prepare<M extends Module>(
  model: M,
  qconfig: QConfig = defaultQConfig(),
  opts: PrepareOptions = {},
): M {
  prepareCommon(model, qconfig, opts);
  setQuantState(model, { observe: true, fakeQuant: false });
  return model;
}

/**
 * Quantisation-aware training, step 1: as {@link prepare}, with fake quantisation on (straight-
 * through gradients) and observers tracking (EMA for activations with `defaultQConfig({ qat: true })`).
 * Then train with nn's `fit` and a plain likelihood loss (no KL gradient during QAT: the
 * default cross-entropy), a few epochs at a small learning rate, then {@link convert}.
 * Bayesian layers sample weights (`weights` mode) so every sample passes the fake-quantisers.
 */
export function prepareQat<M extends Module>(
  model: M,
  qconfig: QConfig = defaultQConfig({ qat: true }),
  opts: PrepareOptions = {},
): M {
  prepareCommon(model, qconfig, opts);
  setQuantState(model, { observe: true, fakeQuant: true });
  return model;
}

/** Options of {@link calibrate}. */
export interface CalibrateOptions {
  /** Forward passes per batch (each draws new weight samples; default 1). */
  passes?: number;
}

/**
 * Post-training quantisation, step 2: runs the prepared model (eval mode) on representative
 * batches so every observer sees its tensor's range, weight samples included.
 */
export async function calibrate(
  model: Module,
  batches: Iterable<tf.Tensor> | AsyncIterable<tf.Tensor>,
  opts: CalibrateOptions = {},
): Promise<void> {
  const passes = checkPositiveInteger('calibrate: opts.passes', opts.passes ?? 1);
  if (!model.modules().some((m) => m instanceof QuantLayer)) {
    throw new QbnnError('ERR_ARG', 'calibrate: the model is not prepared (call prepare first)');
  }
  model.eval();
  for await (const x of batches) {
    for (let p = 0; p < passes; p++) tf.tidy(() => model.apply(x));
  }
}
