import { QbnnError } from '@qbnn/core';
import {
  AvgPool2d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  GlobalAvgPool2d,
  Identity,
  Linear,
  MaxPool2d,
  Module,
  ReLU,
  Residual,
  Sequential,
} from '@qbnn/nn';
import {
  BayesConv2d,
  type BayesLayer,
  LocScalePosterior,
  type Posterior,
  softplusInverse,
} from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { QuantizedModel } from './engine/quantized-model.js';
import type { ActQ, FixedWeights, GaussianWeights, LayerWeights, QLayerSpec, QOp } from './engine/types.js';
import type { FakeQuantize } from './fake-quant.js';
import { quantizeValue } from './params.js';
import {
  checkLayerOverrides,
  defaultQConfig,
  makeFakeQuant,
  type QConfig,
  resolveQConfig,
} from './qconfig.js';
import {
  FakeQuantAfter,
  isBayesLayer,
  isWeightedLayer,
  QuantLayer,
  type WeightedLayer,
} from './quant-layer.js';
import type { QParams } from './spec.js';

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

/** Leaves of a module in execution order, nested Sequentials flattened: [path, module]. */
export function linearise(model: Module, prefix = ''): [string, Module][] {
  const out: [string, Module][] = [];
  const walk = (m: Module, path: string) => {
    if (m instanceof Sequential) {
      for (const [n, c] of m.namedChildren()) walk(c, path ? `${path}.${n}` : n);
    } else out.push([path, m]);
  };
  walk(model, prefix);
  return out;
}

function isPassThrough(m: Module): boolean {
  return m instanceof Identity || (m instanceof Dropout && !m.alwaysOn);
}

function nextIndex(leaves: [string, Module][], i: number): number {
  let j = i + 1;
  while (j < leaves.length && isPassThrough(leaves[j][1])) j++;
  return j;
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
  const visit = (leaves: [string, Module][]) => {
    for (let i = 0; i < leaves.length; i++) {
      const [path, m] = leaves[i];
      const parts = residualParts(m, path);
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
  visit(linearise(model));
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
  const scaleRows = (v: tf.Variable, fac: Float64Array) =>
    tf.tidy(() => {
      v.assign(tf.mul(v, tf.tensor(Float32Array.from(fac), [C, ...v.shape.slice(1).map(() => 1)])));
    });
  const foldBias = (v: tf.Variable) =>
    tf.tidy(() => {
      const b = v.dataSync() as Float32Array;
      v.assign(tf.tensor1d(Float32Array.from(b, (x, c) => x * f[c] + shift[c])));
    });
  const absF = f.map(Math.abs);
  const scaleSigma = (rho: tf.Variable) =>
    tf.tidy(() => {
      const r = rho.dataSync() as Float32Array;
      const inner = r.length / C;
      const out = new Float32Array(r.length);
      for (let i = 0; i < r.length; i++) {
        const s = Math.log1p(Math.exp(-Math.abs(r[i]))) + Math.max(r[i], 0);
        out[i] = softplusInverse(Math.max(s * absF[Math.floor(i / inner)], 1e-30));
      }
      rho.assign(tf.tensor(out, rho.shape));
    });
  if (conv.outChannels !== C)
    throw new QbnnError('ERR_SHAPE', `BatchNorm2d(${C}) after a conv with ${conv.outChannels} channels`);
  if (conv instanceof Conv2d) {
    scaleRows(conv.param('weight'), f);
    if (conv.hasParam('bias')) {
      foldBias(conv.param('bias'));
      return undefined;
    }
    return tf.tensor1d(Float32Array.from(shift));
  }
  const p = conv.posterior;
  if (p instanceof LocScalePosterior) {
    const [w, b] = p.params;
    scaleRows(w.mu, f);
    scaleSigma(w.rho);
    if (b) {
      foldBias(b.mu);
      scaleSigma(b.rho);
      return undefined;
    }
    return tf.tensor1d(Float32Array.from(shift));
  }
  const params = p.parameters();
  const weight = params.get('weight');
  if (!weight) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `foldBatchNorm: posterior '${p.kind}' has no 'weight' to fold into`,
    );
  }
  scaleRows(weight, f);
  for (const [name, buf] of p.buffers()) {
    if (/_weight$/.test(name) && buf instanceof tf.Variable) scaleRows(buf, f);
    if (/_bias$/.test(name) && buf instanceof tf.Variable) foldBias(buf);
  }
  const bias = params.get('bias');
  if (bias) {
    foldBias(bias);
    return undefined;
  }
  return tf.tensor1d(Float32Array.from(shift));
}

/** Options of {@link prepare} and {@link prepareQat}. */
export interface PrepareOptions {
  /** Fold BatchNorms into the preceding convolutions first (default true). */
  foldBn?: boolean;
}

function prepareChain(model: Module, leaves: [string, Module][], qc: QConfig, top: boolean): void {
  const weighted = leaves.map(([, m], i) => (isWeightedLayer(m) ? i : -1)).filter((i) => i >= 0);
  const last = weighted[weighted.length - 1];
  // the network input is quantised by the first layer when only reshapes come before it
  const firstReal = leaves.findIndex(([, m]) => !isPassThrough(m) && !(m instanceof Flatten));
  for (let i = 0; i < leaves.length; i++) {
    const [path, m] = leaves[i];
    const parts = residualParts(m, path);
    if (parts) {
      prepareChain(model, parts.body, qc, false);
      prepareChain(model, parts.shortcut, qc, false);
      const post = model.getModule(parts.postPath);
      const fq = makeFakeQuant(resolveQConfig(qc, parts.postPath).activation);
      model.setModule(parts.postPath, new FakeQuantAfter(post, fq));
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
      prepareChain(model, linearise(c, p), qc, false);
    } else if (residualParts(c, p)) {
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
  prepareChain(model, linearise(model), qc, true);
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
  if (!model.modules().some((m) => m instanceof QuantLayer)) {
    throw new QbnnError('ERR_ARG', 'calibrate: the model is not prepared (call prepare first)');
  }
  const passes = opts.passes ?? 1;
  model.eval();
  for await (const x of batches) {
    for (let p = 0; p < passes; p++) tf.tidy(() => model.apply(x));
  }
}

/** Options of {@link convert}. */
export interface ConvertOptions {
  /** Per-example input shape, e.g. [1, 28, 28] (required). */
  inputShape: number[];
  /** Weight draws stored for a posterior the engine has no integer form for (default 8). */
  genericDraws?: number;
}

function actQ(fq: FakeQuantize | undefined, what: string): ActQ {
  if (!fq?.ready)
    throw new QbnnError('ERR_ARG', `convert: ${what} was never observed (run calibrate or training first)`);
  const p = fq.qparams();
  return { scale: p.scale[0], zeroPoint: p.zeroPoint[0], bits: p.bits };
}

function readyParams(fq: FakeQuantize, what: string, values?: tf.Tensor): QParams {
  if (!fq.ready) {
    if (!values) throw new QbnnError('ERR_ARG', `convert: ${what} was never observed (run calibrate first)`);
    fq.observe(values);
  }
  return fq.qparams();
}

/** Quantises a row-major [N, K] tensor with per-row or per-tensor params. */
export function quantizeRows(values: ArrayLike<number>, p: QParams, k: number): Int8Array | Uint8Array {
  const { qmin, qmax } = p.signed
    ? { qmin: -(2 ** (p.bits - 1)), qmax: 2 ** (p.bits - 1) - 1 }
    : { qmin: 0, qmax: 2 ** p.bits - 1 };
  const out = p.signed ? new Int8Array(values.length) : new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = p.scale.length === 1 ? 0 : Math.floor(i / k);
    out[i] = quantizeValue(values[i], p.scale[c], p.zeroPoint[c], qmin, qmax);
  }
  return out;
}

function data(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function addBias(
  b: Float32Array | undefined,
  extra: tf.Variable | undefined,
  n: number,
): Float32Array | undefined {
  if (!extra) return b;
  const e = data(extra);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (b ? b[i] : 0) + e[i];
  return out;
}

function layerWeights(
  ql: QuantLayer,
  path: string,
  n: number,
  k: number,
  genericDraws: number,
): { weights: LayerWeights; dropoutP?: number } {
  const inner = ql.inner;
  if (inner instanceof Linear || inner instanceof Conv2d) {
    const w = inner.param('weight');
    const wq = readyParams(ql.point('weight'), `${path} weight`, w);
    const bias = addBias(
      inner.hasParam('bias') ? data(inner.param('bias')).slice() : undefined,
      ql.foldedBias,
      n,
    );
    return { weights: { kind: 'fixed', w: quantizeRows(data(w), wq, k) as Int8Array, wq, bias } };
  }
  const layer = inner as BayesLayer;
  const post = layer.posterior;
  if (post instanceof LocScalePosterior && (post.kind === 'gaussian' || post.kind === 'radial')) {
    const p = post;
    const [w, b] = p.params;
    const sigma = tf.tidy(() => tf.softplus(w.rho));
    const muQ = readyParams(ql.point('mu'), `${path} mu`, w.mu);
    const sigmaQ = readyParams(ql.point('sigma'), `${path} sigma`, sigma);
    const noiseQ = readyParams(ql.point('noise'), `${path} noise`);
    const weightQ = readyParams(ql.point('weight'), `${path} weight`);
    const g: GaussianWeights = {
      kind: p.kind as 'gaussian' | 'radial',
      mu: quantizeRows(data(w.mu), muQ, k) as Int8Array,
      muQ,
      sigma: quantizeRows(data(sigma), sigmaQ, k) as Uint8Array,
      sigmaQ,
      noiseQ,
      weightQ,
    };
    sigma.dispose();
    if (b || ql.foldedBias) {
      const bs = b ? tf.tidy(() => data(tf.softplus(b.rho)).slice()) : new Float32Array(n);
      g.bias = { mu: addBias(b ? data(b.mu).slice() : undefined, ql.foldedBias, n)!, sigma: bs };
    }
    return { weights: g };
  }
  const p = post as Posterior;
  const size = p.ensembleSize?.() ?? 0;
  if (p.transformInput && size === 0) {
    // MC Dropout: a deterministic weight, randomness on the input
    const s = p.sample();
    const wq = readyParams(ql.point('weight'), `${path} weight`, s.weight);
    const bias = addBias(s.bias ? data(s.bias).slice() : undefined, ql.foldedBias, n);
    const dropP = (p as unknown as { p?: number }).p;
    return {
      weights: { kind: 'fixed', w: quantizeRows(data(s.weight), wq, k) as Int8Array, wq, bias },
      dropoutP: ql.maskedFq && typeof dropP === 'number' && dropP > 0 ? dropP : undefined,
    };
  }
  const members: FixedWeights[] = [];
  if (size > 0 && p.select) {
    // SGHMC: every member quantised separately, with its own observed params
    for (let m = 0; m < size; m++) {
      p.select(m);
      const s = p.sample();
      const wq = readyParams(ql.point('weight', m), `${path} member ${m} weight`, s.weight);
      members.push({
        kind: 'fixed',
        w: quantizeRows(data(s.weight), wq, k) as Int8Array,
        wq,
        bias: addBias(s.bias ? data(s.bias).slice() : undefined, ql.foldedBias, n),
      });
    }
    p.select(null);
    return { weights: { kind: 'ensemble', members } };
  }
  // generic rule: store draws of the sampled weight, quantised with the observed weight params
  const wq = readyParams(ql.point('weight'), `${path} weight`);
  for (let d = 0; d < genericDraws; d++) {
    const s = p.sample();
    members.push({
      kind: 'fixed',
      w: quantizeRows(data(s.weight), wq, k) as Int8Array,
      wq,
      bias: addBias(s.bias ? data(s.bias).slice() : undefined, ql.foldedBias, n),
    });
    tf.dispose([s.weight, ...(s.bias ? [s.bias] : [])]);
  }
  return { weights: { kind: 'ensemble', members } };
}

function layerGeometry(
  inner: WeightedLayer,
): Omit<QLayerSpec, 'path' | 'input' | 'output' | 'relu' | 'weights'> {
  if (inner instanceof Linear) return { op: 'linear', n: inner.outFeatures, k: inner.inFeatures };
  if (inner instanceof Conv2d || inner instanceof BayesConv2d) {
    const [kh, kw] = inner.kernelSize;
    const groups = inner instanceof Conv2d ? inner.groups : inner.params.groups;
    const cg = inner.inChannels / groups;
    return {
      op: 'conv2d',
      n: inner.outChannels,
      k: cg * kh * kw,
      wShape: [inner.outChannels, cg, kh, kw],
      stride: (inner instanceof Conv2d ? inner.stride : inner.params.stride) as [number, number],
      padding: (inner instanceof Conv2d ? inner.padding : inner.params.padding) as [number, number],
      dilation: (inner instanceof Conv2d ? inner.dilation : inner.params.dilation) as [number, number],
      groups,
    };
  }
  const l = inner as unknown as { inFeatures: number; outFeatures: number };
  return { op: 'linear', n: l.outFeatures, k: l.inFeatures };
}

/**
 * The last step of both flows: turns a prepared (and calibrated or QAT-trained) sequential
 * model into a {@link QuantizedModel} that computes in integers. Gaussian and Radial layers
 * store mu_q and sigma_q; MC Dropout stores its weight and the masked input's params; SGHMC
 * stores every member; any other posterior stores `genericDraws` quantised weight draws.
 * Fused ReLUs become requantisation clamps; max/avg pooling and flatten run on u8.
 */
export function convert(model: Module, opts: ConvertOptions): QuantizedModel {
  const leaves = linearise(model);
  const layers = leaves.filter(([, m]) => m instanceof QuantLayer);
  if (!model.modules().some((m) => m instanceof QuantLayer))
    throw new QbnnError('ERR_ARG', 'convert: the model is not prepared (call prepare or prepareQat)');
  setQuantState(model, { observe: false });
  const ctx: ConvertCtx = {
    model,
    genericDraws: opts.genericDraws ?? 8,
    last: layers.length > 0 ? layers[layers.length - 1][1] : undefined,
  };
  const { ops } = convertLeaves(leaves, undefined, ctx, true);
  return new QuantizedModel(ops, opts.inputShape);
}

interface ConvertCtx {
  model: Module;
  genericDraws: number;
  /** The top-level layer whose output is the float logits. */
  last: Module | undefined;
}

function convertLayer(m: QuantLayer, path: string, input: ActQ, output: ActQ | null, ctx: ConvertCtx): QOp {
  const g = layerGeometry(m.inner);
  tf.engine().startScope();
  let lw: ReturnType<typeof layerWeights>;
  try {
    lw = layerWeights(m, path, g.n, g.k, ctx.genericDraws);
  } finally {
    tf.engine().endScope();
  }
  const spec: QLayerSpec = { ...g, path, input, output, relu: m.opts.relu, weights: lw.weights };
  if (lw.dropoutP !== undefined) {
    spec.dropout = { p: lw.dropoutP, masked: actQ(m.maskedFq, `${path} masked input`) };
  }
  return { op: 'layer', layer: spec };
}

/** Converts a chain of leaves starting from activations on grid `cur` (undefined: the network input). */
function convertLeaves(
  leaves: [string, Module][],
  cur: ActQ | undefined,
  ctx: ConvertCtx,
  top: boolean,
): { ops: QOp[]; out: ActQ | undefined } {
  const ops: QOp[] = [];
  let pendingFlatten = false;
  let done = false;
  for (const [path, m] of leaves) {
    if (isPassThrough(m)) continue;
    if (done) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `convert: '${path}' (${m.constructor.name}) runs after the float output`,
      );
    }
    if (top && m instanceof Flatten && ops.length === 0) {
      pendingFlatten = true;
      continue;
    }
    if (m instanceof QuantLayer) {
      if (!cur) {
        cur = actQ(m.inputFq, `${path} input`);
        ops.push({ op: 'quantize', q: cur });
        if (pendingFlatten) ops.push({ op: 'flatten' });
      }
      const isLast = top && m === ctx.last;
      const output = isLast ? null : actQ(m.outputFq, `${path} output`);
      ops.push(convertLayer(m, path, cur, output, ctx));
      if (output) cur = output;
      else done = true;
      continue;
    }
    if (!cur) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `convert: '${path}' (${m.constructor.name}) runs before the first layer`,
      );
    }
    const parts = residualParts(m, path);
    if (parts) {
      const body = convertLeaves(parts.body, cur, ctx, false);
      const shortcut = convertLeaves(parts.shortcut, cur, ctx, false);
      const post = ctx.model.getModule(parts.postPath);
      if (!(post instanceof FakeQuantAfter)) {
        throw new QbnnError('ERR_ARG', `convert: '${parts.postPath}' is not prepared`);
      }
      const q = actQ(post.fq, `${parts.postPath} output`);
      const inner = post.child('inner');
      if (!(inner instanceof ReLU || isPassThrough(inner))) {
        throw new QbnnError(
          'ERR_UNSUPPORTED',
          `convert: residual post '${parts.postPath}' must be a ReLU or Identity`,
        );
      }
      ops.push({
        op: 'residual',
        body: body.ops,
        shortcut: shortcut.ops,
        bodyQ: body.out!,
        shortcutQ: shortcut.out!,
        q,
        relu: inner instanceof ReLU,
      });
      cur = q;
    } else if (m instanceof MaxPool2d || m instanceof AvgPool2d) {
      ops.push({
        op: m instanceof MaxPool2d ? 'maxpool2d' : 'avgpool2d',
        kernel: m.kernelSize,
        stride: m.stride,
        padding: m.padding,
        q: cur,
      });
    } else if (m instanceof GlobalAvgPool2d) {
      ops.push({ op: 'globalavgpool2d', q: cur });
      ops.push({ op: 'flatten' });
    } else if (m instanceof Flatten) {
      ops.push({ op: 'flatten' });
    } else if (m instanceof FakeQuantAfter && m.child('inner') instanceof ReLU) {
      ops.push({ op: 'relu', q: cur });
    } else {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `convert: the integer engine has no op for '${path}' (${m.constructor.name}); chains of linear/conv layers, ReLU, pooling, flatten and residual blocks are supported`,
      );
    }
  }
  return { ops, out: cur };
}

/**
 * The parts of a residual block: nn's Residual (`body`, `shortcut`, `post`) or any module with
 * children named `shortcut` and `post` whose other children, in registration order, form the
 * body (nn's ResNet BasicBlock).
 */
export function residualParts(
  m: Module,
  path: string,
): { body: [string, Module][]; shortcut: [string, Module][]; postPath: string } | undefined {
  const join = (n: string) => (path ? `${path}.${n}` : n);
  if (m instanceof Residual) {
    return {
      body: linearise(m.child('body'), join('body')),
      shortcut: linearise(m.child('shortcut'), join('shortcut')),
      postPath: join('post'),
    };
  }
  if (m instanceof QuantLayer || m instanceof FakeQuantAfter || m instanceof Sequential) return undefined;
  const kids = m.namedChildren();
  const names = new Set(kids.map(([n]) => n));
  if (!names.has('shortcut') || !names.has('post')) return undefined;
  return {
    body: kids.filter(([n]) => n !== 'shortcut' && n !== 'post').flatMap(([n, c]) => linearise(c, join(n))),
    shortcut: linearise(m.child('shortcut'), join('shortcut')),
    postPath: join('post'),
  };
}

/** Whether a module is one the flows treat as Bayesian. */
export { isBayesLayer };
