import './forms/builtins.js';
import { QbnnError, Rng } from '@qbnn/core';
import { Conv2d, type ConvGeometryFn, ConvNd, conv2d, Linear, linear, Module } from '@qbnn/nn';
import { BayesConv2d, BayesConvNd, type BayesLayer, BayesLinear, type QuantPoint } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import type { FakeQuantize } from './fake-quant.js';
import { integerFormFor } from './forms/registry.js';
import { isLoweredConv, isTransposedConv } from './lowered-conv.js';
import { type LayerQConfig, makeFakeQuant } from './qconfig.js';

/** What a QuantLayer wraps. */
export type WeightedLayer = Linear | Conv2d | ConvNd<ConvGeometryFn> | BayesLayer;

/** Whether a module is a layer the quantisation flows wrap. */
export function isWeightedLayer(m: Module): m is WeightedLayer {
  return m instanceof Linear || m instanceof Conv2d || isBayesLayer(m) || isLoweredConv(m);
}

/** Whether a module is a Bayesian layer (a posterior plugin behind it) the flows wrap. */
export function isBayesLayer(m: Module): m is BayesLayer {
  return (
    m instanceof BayesLinear || m instanceof BayesConv2d || (m instanceof BayesConvNd && isLoweredConv(m))
  );
}

/** A deterministic layer: its `weight` and `bias` are plain parameters. */
function isDeterministic(m: WeightedLayer): m is Linear | Conv2d | ConvNd<ConvGeometryFn> {
  return m instanceof Linear || m instanceof Conv2d || m instanceof ConvNd;
}

/** Options of {@link QuantLayer}. */
export interface QuantLayerOptions {
  /** Fake-quantise this layer's input (the network input). */
  quantizeInput: boolean;
  /** Fake-quantise the output (false for the last layer: float logits). */
  quantizeOutput: boolean;
  /** ReLU fused after the op, before the output fake-quant. */
  relu: boolean;
}

/**
 * A weighted layer (Linear, Conv2d, Conv1d, ConvTranspose1d/2d, and their Bayesian twins) with its fake-quantisation
 * points (Ferianc et al. placement, DESIGN.md section 3):
 *
 * - the input, when the layer sees the network input;
 * - weight-side points through the posterior's sample hook: `mu`, `sigma` (= softplus(rho)),
 *   `noise` (eps * sigma), `weight` (the sample), or whatever points a third-party posterior
 *   reports (the generic rule: each gets a signed per-channel fake-quant, and the sampled weight
 *   is fake-quantised even when the plugin never reports it); deterministic layers: `weight`;
 * - MC Dropout: the masked, rescaled input, observed separately (`masked`);
 * - ensembles (SGHMC): one set of weight points per member, the member chosen per forward;
 * - the output, after the fused ReLU.
 *
 * Biases stay float (int32 at run time). The KL is never part of a QAT loss here: train with a
 * plain likelihood loss (nn's default cross-entropy).
 */
export class QuantLayer extends Module {
  readonly cfg: LayerQConfig;
  readonly opts: QuantLayerOptions;
  readonly inputFq?: FakeQuantize;
  readonly outputFq?: FakeQuantize;
  maskedFq?: FakeQuantize;
  /** Weight-side points by name, one map per ensemble member (index 0 otherwise). */
  readonly pointFqs: Map<string, FakeQuantize>[] = [];
  /** Bias folded in from a BatchNorm when the layer has none of its own ([out]). */
  foldedBias?: tf.Variable;
  private readonly pick: Rng;
  /** Member used by the last forward (ensembles). */
  lastMember = 0;
  /**
   * While QAT fine-tunes ensemble member k through the posterior's trainable parameters (see
   * `Posterior.copyMember`): every forward uses member k's quantisation points and the
   * parameters, instead of a random stored member.
   */
  trainMember: number | null = null;
  /** Observation state given to every fake-quant, including those created later. */
  observing = true;
  /** Fake-quantisation state given to every fake-quant, including those created later. */
  fakeQuantizing = true;

  constructor(inner: WeightedLayer, cfg: LayerQConfig, opts: QuantLayerOptions) {
    super();
    this.registerModule('inner', inner);
    this.cfg = cfg;
    this.opts = opts;
    if (opts.quantizeInput) this.inputFq = makeFakeQuant(cfg.activation);
    if (opts.quantizeOutput) this.outputFq = makeFakeQuant(cfg.activation);
    this.pick = new Rng(0x9a7).fork(inner.numParameters());
  }

  get inner(): WeightedLayer {
    return this.child<WeightedLayer>('inner');
  }

  /** The fake-quant of a weight-side point of member `m` (created on first use). */
  point(name: QuantPoint, m = 0): FakeQuantize {
    while (this.pointFqs.length <= m) this.pointFqs.push(new Map());
    let fq = this.pointFqs[m].get(name);
    if (!fq) {
      // transposed convolutions: per tensor (their torch axis 0 is the GEMM's reduction axis)
      const axis = isTransposedConv(this.inner) ? undefined : 0;
      fq = makeFakeQuant(this.cfg.weight, axis, this.pointSigned(name) ? {} : { signed: false });
      this.configure(fq);
      this.pointFqs[m].set(name, fq);
    }
    return fq;
  }

  /**
   * Signedness of a weight-side point: as the integer form of this layer's posterior declares it
   * (IntegerForm.points), else signed except `sigma` (a standard deviation).
   */
  private pointSigned(name: QuantPoint): boolean {
    const inner = this.inner;
    const form = isBayesLayer(inner) ? integerFormFor(inner.posterior.kind) : undefined;
    const declared = form?.points?.find((p) => p.name === name);
    return declared ? declared.signed : name !== 'sigma';
  }

  private configure(fq: FakeQuantize): FakeQuantize {
    fq.observerEnabled = this.observing;
    fq.fakeQuantEnabled = this.fakeQuantizing;
    return fq;
  }

  /** Switches observation and fake quantisation of every point, present and future. */
  setQuantState(state: { observe?: boolean; fakeQuant?: boolean }): void {
    if (state.observe !== undefined) this.observing = state.observe;
    if (state.fakeQuant !== undefined) this.fakeQuantizing = state.fakeQuant;
    for (const fq of this.fakeQuants()) this.configure(fq);
  }

  /** Every fake-quant of this layer. */
  fakeQuants(): FakeQuantize[] {
    const out: FakeQuantize[] = [];
    if (this.inputFq) out.push(this.inputFq);
    if (this.maskedFq) out.push(this.maskedFq);
    for (const m of this.pointFqs) out.push(...m.values());
    if (this.outputFq) out.push(this.outputFq);
    return out;
  }

  private opOf(inner: WeightedLayer): (x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) => tf.Tensor {
    if (inner instanceof Linear) return (x, w, b) => linear(x, w, b);
    if (inner instanceof Conv2d) return (x, w, b) => conv2d(x, w, b, inner.params);
    if (inner instanceof ConvNd) return (x, w, b) => inner.kind.apply(x, w, b, inner.params);
    return (x, w, b) => inner.op.apply(x, w, b);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const inner = this.inner;
    if (this.inputFq) x = this.inputFq.apply(x);
    const op = this.opOf(inner);
    let y: tf.Tensor;
    if (isDeterministic(inner)) {
      const w = this.point('weight').apply(inner.param('weight'));
      y = op(x, w, inner.hasParam('bias') ? inner.param('bias') : undefined);
    } else {
      const p = inner.posterior;
      let xin = x;
      if (p.transformInput) {
        xin = p.transformInput(x, {
          mode: inner.activeMode,
          training: inner.training,
          isInput: inner.isInput,
        });
        if (xin !== x) {
          this.maskedFq ??= this.configure(makeFakeQuant(this.cfg.activation));
          xin = this.maskedFq.apply(xin);
        }
      }
      let member = this.trainMember ?? 0;
      const size = this.trainMember === null ? (p.ensembleSize?.() ?? 0) : 0;
      if (size > 0 && p.select) {
        member = this.pick.uint32(1)[0] % size;
        p.select(member);
      }
      this.lastMember = member;
      let sawWeight = false;
      const hook = (point: QuantPoint, role: 'weight' | 'bias', t: tf.Tensor): tf.Tensor => {
        if (role !== 'weight') return t;
        if (point === 'weight') sawWeight = true;
        return this.point(point, member).apply(t);
      };
      const s = p.sample({ hook });
      if (size > 0 && p.select) p.select(null);
      const w = sawWeight ? s.weight : this.point('weight', member).apply(s.weight);
      y = op(xin, w, s.bias);
    }
    if (this.foldedBias) {
      const shape = [1, -1, ...new Array(y.rank - 2).fill(1)];
      y = tf.add(y, tf.reshape(this.foldedBias, shape));
    }
    if (this.opts.relu) y = tf.relu(y);
    if (this.outputFq) y = this.outputFq.apply(y);
    this.adoptScales();
    return y;
  }

  /**
   * Registers learnable (LSQ) scales as parameters of this module once they exist, so optimisers
   * and checkpoints see them. They exist after the first forward: run {@link calibrate} (or one
   * forward) before `fit` collects the trainable parameters.
   */
  private adoptScales(): void {
    const named: [string, FakeQuantize | undefined][] = [
      ['lsq_input', this.inputFq],
      ['lsq_masked', this.maskedFq],
      ['lsq_output', this.outputFq],
    ];
    this.pointFqs.forEach((m, i) => {
      for (const [k, fq] of m) named.push([`lsq_${k.replace(/[^A-Za-z0-9_]/g, '_')}_${i}`, fq]);
    });
    for (const [name, fq] of named) {
      if (!fq?.scaleVariable || this.hasParam(name)) continue;
      const own = this.registerParameter(name, fq.scaleVariable);
      fq.scaleVariable.dispose();
      fq.scaleVariable = own;
    }
  }

  override extraRepr(): string {
    return `relu=${this.opts.relu}, w${this.cfg.weight.bits}a${this.cfg.activation.bits}`;
  }
}

/**
 * Fake-quantises the output of a wrapped module: a standalone ReLU, or the `post` of a residual
 * block (the activation after the add).
 */
export class FakeQuantAfter extends Module {
  readonly fq: FakeQuantize;
  constructor(inner: Module, fq: FakeQuantize) {
    super();
    this.registerModule('inner', inner);
    this.fq = fq;
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.fq.apply(this.child('inner').apply(x));
  }
}

/** Throws unless a module was prepared. */
export function assertQuantLayer(m: Module, path: string): QuantLayer {
  if (!(m instanceof QuantLayer)) {
    throw new QbnnError(
      'ERR_ARG',
      `module '${path}' is not prepared for quantisation (call prepare or prepareQat)`,
    );
  }
  return m;
}
