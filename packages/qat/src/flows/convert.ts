import '../forms/builtins.js';
import { QbnnError } from '@qbnn/core';
import {
  AvgPool2d,
  Conv2d,
  ConvNd,
  Flatten,
  GlobalAvgPool2d,
  Linear,
  MaxPool2d,
  type Module,
  ReLU,
} from '@qbnn/nn';
import { BayesConv2d, BayesLSTM, type QuantPoint } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import type { QLayerSpec, QLstm, QOp } from '../engine/ir.js';
import { QuantizedModel } from '../engine/quantized-model.js';
import type { FakeQuantize } from '../fake-quant.js';
import { storedDrawsFromFloat } from '../forms/ensemble.js';
import { getIntegerForm, integerFormFor } from '../forms/registry.js';
import type { ConvertedLayer, FromFloatContext } from '../forms/types.js';
import { isLoweredConv, loweredGeometry, withEquivalentKernel } from '../lowered-conv.js';
import { quantizeValue } from '../params.js';
import { FakeQuantAfter, isBayesLayer, QuantLayer, type WeightedLayer } from '../quant-layer.js';
import type { QParams, QuantParams } from '../spec.js';
import { chainOf, isPassThrough, type Leaf, residualChains } from './chain.js';
import { setQuantState } from './prepare.js';

/** Options of {@link convert}. */
export interface ConvertOptions {
  /** Per-example input shape, e.g. [1, 28, 28] (required). */
  inputShape: number[];
  /**
   * Explicit opt-in for posteriors without an integer form: store this many quantised weight
   * draws per layer (an ensemble; Monte Carlo samples repeat after that many, so the integer
   * model is not the posterior). Without it such a posterior is an ERR_UNKNOWN error naming the
   * form to register.
   */
  storedDraws?: number;
}

function actQ(fq: FakeQuantize | undefined, what: string): QuantParams {
  if (!fq?.ready)
    throw new QbnnError('ERR_ARG', `convert: ${what} was never observed (run calibrate or training first)`);
  const p = fq.qparams();
  return { scale: p.scale[0], zeroPoint: p.zeroPoint[0], bits: p.bits, signed: false };
}

function readyParams(fq: FakeQuantize, what: string, values?: tf.Tensor): QParams {
  if (!fq.ready) {
    if (!values) throw new QbnnError('ERR_ARG', `convert: ${what} was never observed (run calibrate first)`);
    fq.observe(values);
  }
  return fq.qparams();
}

/** Quantises a row-major [N, K] tensor with per-row or per-tensor params. */
function quantizeRows(values: ArrayLike<number>, p: QParams, k: number): Int8Array | Uint8Array {
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

function values(t: tf.Tensor | ArrayLike<number>): ArrayLike<number> {
  return t instanceof tf.Tensor ? (t.dataSync() as Float32Array) : t;
}

/** What a form's fromFloat sees of a prepared layer. */
function fromFloatContext(
  ql: QuantLayer,
  path: string,
  n: number,
  k: number,
  storedDraws?: number,
): FromFloatContext {
  const inner = ql.inner;
  const folded = ql.foldedBias ? (ql.foldedBias.dataSync() as Float32Array) : undefined;
  const deterministic =
    inner instanceof Linear || inner instanceof Conv2d || inner instanceof ConvNd
      ? { weight: inner.param('weight'), bias: inner.hasParam('bias') ? inner.param('bias') : undefined }
      : undefined;
  return {
    path,
    n,
    k,
    posterior: isBayesLayer(inner) ? inner.posterior : undefined,
    deterministic,
    foldedBias: folded,
    storedDraws,
    point: (name: QuantPoint, o: { member?: number; values?: tf.Tensor } = {}) =>
      readyParams(
        ql.point(name, o.member ?? 0),
        `${path} ${o.member ? `member ${o.member} ` : ''}${name}`,
        o.values,
      ),
    quantize: (v, p) => quantizeRows(values(v), p, k),
    bias(b) {
      const own = b === undefined ? undefined : Float32Array.from(values(b));
      if (!folded) return own;
      return Float32Array.from(folded, (e, i) => (own ? own[i] : 0) + e);
    },
    get maskedInput() {
      return ql.maskedFq ? actQ(ql.maskedFq, `${path} masked input`) : undefined;
    },
  };
}

/** The integer weights of a prepared layer, through the form registered for its posterior. */
function layerWeights(
  ql: QuantLayer,
  path: string,
  n: number,
  k: number,
  storedDraws?: number,
): ConvertedLayer {
  const ctx = fromFloatContext(ql, path, n, k, storedDraws);
  if (!ctx.posterior) return getIntegerForm('fixed').fromFloat!(ctx);
  const name = ctx.posterior.kind;
  const form = integerFormFor(name);
  if (form) return form.fromFloat!(ctx);
  if (storedDraws !== undefined) return storedDrawsFromFloat(ctx);
  throw new QbnnError(
    'ERR_UNKNOWN',
    `convert: '${path}': posterior '${name}' has no integer form. Register one for it with @qbnn/qat's registerIntegerForm({ kind: '${name}', posteriors: ['${name}'], fromFloat, sample, ... }) (README: "Writing an integer form"), or opt in to stored weight draws with convert(model, { storedDraws: N }) (samples repeat after N)`,
  );
}

function layerGeometry(
  inner: WeightedLayer,
): Omit<QLayerSpec, 'path' | 'input' | 'output' | 'relu' | 'weights'> {
  if (inner instanceof Linear) return { op: 'linear', n: inner.outFeatures, k: inner.inFeatures };
  if (isLoweredConv(inner)) return loweredGeometry(inner);
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
 * The last step of both flows: turns a prepared (and calibrated or QAT-trained) model into a
 * {@link QuantizedModel} that computes in integers. Each layer's weights go through the integer
 * form registered for its posterior (registerIntegerForm; Gaussian and Radial store mu_q and
 * sigma_q, MC Dropout its weight and the masked input's params, SGHMC every member, a plugin
 * what its form stores); deterministic layers through the `fixed` form. Fused ReLUs become
 * requantisation clamps; max/avg pooling and flatten run on u8; residual blocks add in integers.
 */
export function convert(model: Module, opts: ConvertOptions): QuantizedModel {
  const leaves = chainOf(model);
  const layers = leaves.filter(([, m]) => m instanceof QuantLayer);
  if (!model.modules().some((m) => m instanceof QuantLayer))
    throw new QbnnError('ERR_ARG', 'convert: the model is not prepared (call prepare or prepareQat)');
  if (opts.storedDraws !== undefined && !(Number.isSafeInteger(opts.storedDraws) && opts.storedDraws >= 1)) {
    throw new QbnnError('ERR_ARG', `convert: storedDraws must be an integer >= 1, got ${opts.storedDraws}`);
  }
  setQuantState(model, { observe: false });
  const ctx: ConvertCtx = {
    model,
    storedDraws: opts.storedDraws,
    last: layers.length > 0 ? layers[layers.length - 1][1] : undefined,
  };
  const { ops } = convertLeaves(leaves, undefined, ctx, true);
  return new QuantizedModel(ops, opts.inputShape);
}

interface ConvertCtx {
  model: Module;
  storedDraws?: number;
  /** The top-level layer whose output is the float logits. */
  last: Module | undefined;
}

function convertLayer(
  m: QuantLayer,
  path: string,
  input: QuantParams,
  output: QuantParams | null,
  ctx: ConvertCtx,
): QOp {
  const g = layerGeometry(m.inner);
  const lw = withEquivalentKernel(m.inner, (): ConvertedLayer => {
    tf.engine().startScope();
    try {
      return layerWeights(m, path, g.n, g.k, ctx.storedDraws);
    } finally {
      tf.engine().endScope();
    }
  });
  const spec: QLayerSpec = { ...g, path, input, output, relu: m.opts.relu, weights: lw.weights };
  if (lw.dropout) spec.dropout = lw.dropout;
  return { op: 'layer', layer: spec };
}

/**
 * A prepared BayesLSTM as an `lstm` op: its maps converted like layers with float outputs, x_t on
 * grid `input` (or the observed network input), h on the grid `hh` observed.
 */
function convertLstm(m: BayesLSTM, path: string, input: QuantParams | undefined, ctx: ConvertCtx): QLstm {
  const maps = (['ih', 'hh'] as const).map((name) => {
    const ql = m.child(name);
    if (!(ql instanceof QuantLayer))
      throw new QbnnError('ERR_ARG', `convert: '${path}.${name}' is not prepared`);
    return ql;
  });
  if (!m.batchFirst) {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      `convert: '${path}': the integer engine runs batch-first LSTMs only`,
    );
  }
  const xq = input ?? actQ(maps[0].inputFq, `${path}.ih input`);
  const q = actQ(maps[1].inputFq, `${path} hidden state`);
  const [ih, hh] = maps.map((ql, i) => {
    const op = convertLayer(ql, `${path}.${i === 0 ? 'ih' : 'hh'}`, i === 0 ? xq : q, null, ctx);
    const layer = (op as Extract<QOp, { op: 'layer' }>).layer;
    if (layer.dropout)
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `convert: '${path}': MC Dropout inside an LSTM has no integer op`,
      );
    return layer;
  });
  return { op: 'lstm', path, hidden: m.hiddenSize, output: m.output, ih, hh, q };
}

/** Converts a chain of leaves starting from activations on grid `cur` (undefined: the network input). */
function convertLeaves(
  leaves: Leaf[],
  cur: QuantParams | undefined,
  ctx: ConvertCtx,
  top: boolean,
): { ops: QOp[]; out: QuantParams | undefined } {
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
    if (m instanceof BayesLSTM) {
      const op = convertLstm(m, path, cur, ctx);
      if (!cur) ops.push({ op: 'quantize', q: op.ih.input });
      ops.push(op);
      cur = op.q;
      continue;
    }
    if (!cur) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `convert: '${path}' (${m.constructor.name}) runs before the first layer`,
      );
    }
    const parts = residualChains(m, path);
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
