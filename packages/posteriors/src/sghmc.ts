import { QbnnError, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

/** A named tensor (tfjs-core does not export its own type of it). */
type NamedTensor = { name: string; tensor: tf.Tensor };

import { type PointInitOptions, pointParameters } from './init.js';
import { sampleGamma } from './random.js';
import type {
  ForwardOptions,
  KlMethod,
  LayerOp,
  Posterior,
  PosteriorSpec,
  SampleOptions,
  SamplingMode,
  WeightSample,
} from './types.js';

/** Options of the `sghmc` posterior. */
export interface SghmcPosteriorOptions extends PointInitOptions {
  /**
   * Initial prior precision lambda (prior N(0, 1/lambda)) of weight and bias. `'fanIn'` sets
   * lambda = fanIn, a prior N(0, 1/fanIn) on the layer's scale (a plain N(0, 1) lets the many
   * weights the data barely constrain wander to O(1) and swamp the output). Default 1.
   */
  precision?: number | 'fanIn';
}

/**
 * The SGHMC posterior: a point in weight space that the {@link SghmcSampler} moves, plus the
 * ensemble of weight sets collected along the chain. At inference the ensemble is the
 * posterior: every member is one weight sample, chosen with {@link select} (the MC predictive
 * selects member l in every layer for sample l). Parameters `weight`, `bias`; collected members
 * are buffers `member<k>_weight`, `member<k>_bias`, so they save and load with the model.
 *
 * The prior is N(0, 1/lambda) per tensor with a Gamma(alpha, beta) hyper-prior on the precision
 * lambda, resampled from its conditional with {@link resamplePrecision}. There is no KL
 * (`getKl` throws ERR_UNSUPPORTED); training minimises N * NLL + {@link negLogPrior} through the
 * sampler's dynamics.
 */
export class SghmcPosterior implements Posterior {
  readonly kind: string = 'sghmc';
  readonly modes: readonly SamplingMode[] = ['weights', 'mean'];
  readonly klMethods: readonly KlMethod[] = [];
  readonly defaultMode: SamplingMode = 'weights';
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  /** Prior precision of the weight and the bias. */
  readonly precision: { weight: number; bias: number };
  private readonly members: { weight: tf.Tensor; bias: tf.Tensor | null }[] = [];
  private selected: number | null = null;
  private readonly createBuffer: ((name: string, value: tf.Tensor) => tf.Variable) | undefined;
  private rng: Rng;

  constructor(spec: PosteriorSpec, options: SghmcPosteriorOptions = {}) {
    this.rng = spec.rng;
    this.createBuffer = spec.createBuffer;
    const { weight, bias } = pointParameters(spec, options, spec.name ?? 'sghmc');
    this.weight = weight;
    this.bias = bias;
    const lambda = options.precision === 'fanIn' ? spec.fanIn : (options.precision ?? 1);
    if (!(lambda > 0)) throw new QbnnError('ERR_ARG', `sghmc: precision must be positive, got ${lambda}`);
    this.precision = { weight: lambda, bias: lambda };
  }

  reseed(rng: Rng): void {
    this.rng = rng;
  }

  parameters(): ReadonlyMap<string, tf.Variable> {
    const m = new Map<string, tf.Variable>([['weight', this.weight]]);
    if (this.bias) m.set('bias', this.bias);
    return m;
  }

  buffers(): ReadonlyMap<string, tf.Tensor> {
    const m = new Map<string, tf.Tensor>();
    this.members.forEach((mem, k) => {
      m.set(`member${k}_weight`, mem.weight);
      if (mem.bias) m.set(`member${k}_bias`, mem.bias);
    });
    return m;
  }

  /** Stores a copy of the current weights as a new ensemble member; returns its index. */
  collect(): number {
    const k = this.members.length;
    const keep = (t: tf.Tensor, n: string) => {
      if (this.createBuffer) return this.createBuffer(n, t);
      return tf.keep(t.clone());
    };
    this.members.push({
      weight: keep(this.weight, `member${k}_weight`),
      bias: this.bias ? keep(this.bias, `member${k}_bias`) : null,
    });
    return k;
  }

  /**
   * Allocates `n` zero members (to load a saved ensemble into a fresh model before
   * `loadStateDict`). Only on an empty ensemble.
   */
  reserveMembers(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new QbnnError('ERR_ARG', `sghmc: reserveMembers(n) needs an integer n >= 0, got ${String(n)}`);
    }
    if (this.members.length > 0)
      throw new QbnnError('ERR_ARG', 'sghmc: reserveMembers needs an empty ensemble');
    for (let k = 0; k < n; k++) this.collect();
  }

  ensembleSize(): number {
    return this.members.length;
  }

  select(i: number | null): void {
    if (i !== null && !(Number.isSafeInteger(i) && i >= 0 && i < this.members.length)) {
      throw new QbnnError('ERR_ARG', `sghmc: member ${i} out of range (ensemble of ${this.members.length})`);
    }
    this.selected = i;
  }

  /**
   * Copies member `i` into the chain's position (`'load'`) or the position into member `i`
   * (`'store'`): QAT fine-tunes each member through the trainable position.
   */
  copyMember(i: number, direction: 'load' | 'store'): void {
    if (!(Number.isSafeInteger(i) && i >= 0 && i < this.members.length)) {
      throw new QbnnError('ERR_ARG', `sghmc: member ${i} out of range (ensemble of ${this.members.length})`);
    }
    const m = this.members[i];
    const pairs: [tf.Tensor, tf.Variable][] = [[m.weight, this.weight]];
    if (m.bias && this.bias) pairs.push([m.bias, this.bias]);
    for (const [member, position] of pairs) {
      if (direction === 'load') position.assign(member);
      else if (member instanceof tf.Variable) member.assign(position);
      else
        throw new QbnnError('ERR_UNSUPPORTED', 'sghmc: members stored outside a layer cannot be overwritten');
    }
  }

  /** The selected member's weights, or the chain's current position when none is selected. */
  private current(): { weight: tf.Tensor; bias: tf.Tensor | null } {
    if (this.selected !== null) return this.members[this.selected];
    return { weight: this.weight, bias: this.bias };
  }

  sample(options: SampleOptions = {}): WeightSample {
    const c = this.current();
    const hook = options.hook;
    return {
      weight: hook ? hook('weight', 'weight', c.weight) : c.weight,
      bias: c.bias ? (hook ? hook('weight', 'bias', c.bias) : c.bias) : undefined,
    };
  }

  /** The chain's current position. */
  mean(): WeightSample {
    return { weight: this.weight, bias: this.bias ?? undefined };
  }

  forward(x: tf.Tensor, op: LayerOp, options: ForwardOptions = {}): tf.Tensor {
    const mode = options.mode ?? this.defaultMode;
    if (!this.modes.includes(mode)) {
      throw new QbnnError('ERR_UNSUPPORTED', `posterior 'sghmc' does not support sampling mode '${mode}'`);
    }
    const s = mode === 'mean' ? this.mean() : this.sample(options);
    return op.apply(x, s.weight, s.bias);
  }

  getKl(): tf.Scalar {
    throw new QbnnError(
      'ERR_UNSUPPORTED',
      "posterior 'sghmc' has no KL divergence: train it with SghmcSampler on N * NLL + negLogPrior()",
    );
  }

  /** -log p(theta | lambda) up to a constant: sum over tensors of lambda / 2 * ||theta||^2. */
  negLogPrior(): tf.Scalar {
    return tf.tidy(() => {
      let s = tf.mul(this.precision.weight / 2, tf.sum(tf.square(this.weight)));
      if (this.bias) s = tf.add(s, tf.mul(this.precision.bias / 2, tf.sum(tf.square(this.bias))));
      return s as tf.Scalar;
    });
  }

  /**
   * Gibbs step for the prior precisions: lambda ~ Gamma(alpha + n/2, rate beta + ||theta||^2 / 2)
   * for the weight and the bias separately (the conjugate conditional of a Gamma(alpha, beta)
   * hyper-prior).
   */
  resamplePrecision(alpha: number, beta: number, rng: Rng = this.rng): void {
    if (!(alpha > 0 && beta > 0))
      throw new QbnnError('ERR_ARG', `resamplePrecision: alpha, beta must be positive`);
    const draw = (t: tf.Tensor) => {
      const ss = tf.tidy(() => tf.sum(tf.square(t)).dataSync()[0]);
      return sampleGamma(alpha + t.size / 2, 1, rng)[0] / (beta + ss / 2);
    };
    this.precision.weight = draw(this.weight);
    if (this.bias) this.precision.bias = draw(this.bias);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
    if (!this.createBuffer) for (const m of this.members) tf.dispose([m.weight, ...(m.bias ? [m.bias] : [])]);
  }
}

/** Options of {@link SghmcSampler}. */
export interface SghmcOptions {
  /**
   * Learning rate; the step is epsilon = lr / sqrt(datasetSize) (the convention of Springenberg
   * et al.'s code), so lr is comparable across dataset sizes. Default 0.5.
   */
  lr?: number;
  /** Friction "mdecay" = epsilon M^-1 C (momentum decay per step), in (0, 1). Default 0.05. */
  mdecay?: number;
  /**
   * N, the dataset size. The loss given to the sampler is per example (mean NLL + negLogPrior / N);
   * the sampler multiplies its gradient by N to get the gradient of U = N NLL - log prior.
   */
  datasetSize: number;
  /** Steps of burn-in, during which the preconditioner, tau and the gradient averages adapt. Default 1000. */
  burnIn?: number;
  /** Resample the momentum from N(0, epsilon^2 M^-1) every this many steps (0: never). Default 0. */
  resampleMomentumEvery?: number;
  /**
   * Temperature T: the chain targets exp(-U / T) by scaling the injected noise variance
   * 2 eps^2 mdecay M^-1 by T (Wenzel et al. 2020's "cold posterior" for T < 1). Default 1, the
   * posterior itself.
   */
  temperature?: number;
  /** Seed of the injected noise. Default 0. */
  seed?: number | Rng;
}

interface SlotState {
  v: tf.Tensor;
  tau: tf.Tensor;
  g: tf.Tensor;
  vHat: tf.Tensor;
}

/**
 * Scale-adapted stochastic-gradient Hamiltonian Monte Carlo (Springenberg, Klein, Falkner and
 * Hutter 2016, after Chen et al. 2014), as a tfjs Optimizer: use it with `minimize`, or with
 * any training loop taking an optimizer. Per parameter, with g the gradient of U:
 *
 * - burn-in (adaptation): r = 1 / (tau + 1); tau <- tau + 1 - tau * gbar^2 / vhat;
 *   gbar <- (1 - r) gbar + r g; vhat <- (1 - r) vhat + r g^2 (the preconditioner M^-1 = vhat^(-1/2));
 * - every step: v <- v - eps^2 M^-1 g - mdecay v + N(0, max(2 eps^2 mdecay M^-1 - eps^4, 1e-16));
 *   theta <- theta + v.
 *
 * The eps^4 term is the gradient-noise estimate B = eps/2 * vhat subtracted from the injected
 * noise. Momentum can be resampled from N(0, eps^2 M^-1) (the law of v = eps M^-1 p with p ~ N(0, M)).
 */
export class SghmcSampler extends tf.Optimizer {
  static get className(): string {
    return 'QbnnSghmc';
  }
  readonly lr: number;
  readonly mdecay: number;
  readonly datasetSize: number;
  readonly burnIn: number;
  readonly resampleMomentumEvery: number;
  readonly temperature: number;
  private readonly slots = new Map<string, SlotState>();
  private readonly rng: Rng;
  private steps = 0;

  constructor(options: SghmcOptions) {
    super();
    this.lr = options.lr ?? 0.5;
    this.mdecay = options.mdecay ?? 0.05;
    this.datasetSize = options.datasetSize;
    this.burnIn = options.burnIn ?? 1000;
    this.resampleMomentumEvery = options.resampleMomentumEvery ?? 0;
    this.temperature = options.temperature ?? 1;
    if (!(this.temperature > 0 && Number.isFinite(this.temperature))) {
      throw new QbnnError('ERR_ARG', `SGHMC temperature must be positive, got ${this.temperature}`);
    }
    if (!(this.lr > 0)) throw new QbnnError('ERR_ARG', `SGHMC lr must be positive, got ${this.lr}`);
    if (!(this.mdecay > 0 && this.mdecay < 1)) {
      throw new QbnnError('ERR_ARG', `SGHMC mdecay must be in (0, 1), got ${this.mdecay}`);
    }
    if (!(Number.isSafeInteger(this.datasetSize) && this.datasetSize > 0)) {
      throw new QbnnError('ERR_ARG', `SGHMC datasetSize must be a positive integer, got ${this.datasetSize}`);
    }
    const seed = options.seed ?? 0;
    this.rng = seed instanceof Rng ? seed : new Rng(seed);
  }

  /** epsilon = lr / sqrt(N). */
  get epsilon(): number {
    return this.lr / Math.sqrt(this.datasetSize);
  }

  /** Sampler steps taken. */
  get stepCount(): number {
    return this.steps;
  }

  /** Whether the sampler is still adapting. */
  get burningIn(): boolean {
    return this.steps < this.burnIn;
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const list = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name] }));
    const eps = this.epsilon;
    const adapt = this.burningIn;
    this.steps += 1;
    const resample = this.resampleMomentumEvery > 0 && this.steps % this.resampleMomentumEvery === 0;
    for (const { name, tensor: grad } of list) {
      if (grad == null) continue;
      const variable = tf.engine().registeredVariables[name];
      if (!variable) throw new QbnnError('ERR_UNKNOWN', `SGHMC: no variable named '${name}'`);
      const old = this.slot(name, variable);
      const noise = this.rng.normal(variable.size);
      const fresh = resample ? this.rng.normal(variable.size) : null;
      const next = tf.tidy(() => {
        const g = tf.mul(grad, this.datasetSize);
        let { tau, g: gBar, vHat } = old;
        if (adapt) {
          const r = tf.reciprocal(tf.add(tau, 1));
          tau = tf.sub(tf.add(tau, 1), tf.div(tf.mul(tau, tf.square(gBar)), vHat));
          gBar = tf.add(tf.mul(tf.sub(1, r), gBar), tf.mul(r, g));
          vHat = tf.add(tf.mul(tf.sub(1, r), vHat), tf.mul(r, tf.square(g)));
        }
        const minv = tf.rsqrt(tf.add(vHat, 1e-16));
        const noiseVar = tf.maximum(
          tf.sub(tf.mul(2 * eps * eps * this.mdecay * this.temperature, minv), eps ** 4),
          1e-16,
        );
        // Momentum resampling: v ~ N(0, T eps^2 M^-1), then the usual step.
        const v0 = fresh
          ? tf.mul(tf.mul(eps * Math.sqrt(this.temperature), tf.sqrt(minv)), tf.tensor(fresh, variable.shape))
          : old.v;
        const v = tf.add(
          tf.sub(tf.sub(v0, tf.mul(eps * eps, tf.mul(minv, g))), tf.mul(this.mdecay, v0)),
          tf.mul(tf.sqrt(noiseVar), tf.tensor(noise, variable.shape)),
        );
        variable.assign(tf.add(variable, v));
        return { v, tau, g: gBar, vHat };
      });
      for (const k of ['v', 'tau', 'g', 'vHat'] as const) {
        if (next[k] !== old[k]) old[k].dispose();
        tf.keep(next[k]);
      }
      this.slots.set(name, next);
    }
    this.incrementIterations();
  }

  private slot(name: string, variable: tf.Variable): SlotState {
    let s = this.slots.get(name);
    if (!s) {
      s = tf.tidy(() => ({
        v: tf.keep(tf.zerosLike(variable)),
        tau: tf.keep(tf.onesLike(variable)),
        g: tf.keep(tf.onesLike(variable)),
        vHat: tf.keep(tf.onesLike(variable)),
      }));
      this.slots.set(name, s);
    }
    return s;
  }

  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [];
    for (const [name, s] of this.slots) {
      for (const k of ['v', 'tau', 'g', 'vHat'] as const) out.push({ name: `${name}/${k}`, tensor: s[k] });
    }
    return out;
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    for (const { name, tensor } of weightValues) {
      const cut = name.lastIndexOf('/');
      const vname = name.slice(0, cut);
      const k = name.slice(cut + 1) as keyof SlotState;
      const variable = tf.engine().registeredVariables[vname];
      if (!variable) continue;
      const s = this.slot(vname, variable);
      s[k].dispose();
      s[k] = tf.keep(tensor.clone());
    }
  }

  getConfig(): tf.serialization.ConfigDict {
    return {
      lr: this.lr,
      mdecay: this.mdecay,
      datasetSize: this.datasetSize,
      burnIn: this.burnIn,
      resampleMomentumEvery: this.resampleMomentumEvery,
      temperature: this.temperature,
    };
  }

  override dispose(): void {
    for (const s of this.slots.values()) tf.dispose([s.v, s.tau, s.g, s.vHat]);
    this.slots.clear();
    super.dispose();
  }
}
