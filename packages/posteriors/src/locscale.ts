import { locScaleSample, normalTensor, QbnnError, type Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  type InitFrom,
  type LocInit,
  locValues,
  makeVariable,
  mopedRho,
  type RhoInit,
  rhoValues,
  sizeOf,
  valuesOf,
} from './init.js';
import { accumulateStats, crossDirect, crossFromStats } from './kl.js';
import { logSoftplus, softplus } from './math.js';
import { type GaussianPrior, type Prior, priorFor } from './priors.js';
import { signTensor } from './random.js';
import { sigmaOf } from './sample-scope.js';
import type {
  ForwardOptions,
  KlMethod,
  KlOptions,
  LayerOp,
  Posterior,
  PosteriorSpec,
  SampleHook,
  SampleOptions,
  SamplingMode,
  WeightSample,
} from './types.js';

/** Options shared by the location-scale posteriors (Gaussian, Radial). */
export interface LocScaleOptions {
  /** Initial weight mean. Default `kaiming`. */
  muInit?: LocInit;
  /** Initial bias mean. Default 0. */
  biasMuInit?: LocInit;
  /**
   * Initial rho (sigma = softplus(rho)), weight and bias. Default { mean: -5, std: 0.1 } (sigma ~
   * 0.0067); Radial scales its default by the tensor's size (see RadialPosterior).
   */
  rhoInit?: RhoInit;
  /** MOPED / empirical-Bayes initialisation from a trained deterministic layer (overrides the inits). */
  initFrom?: InitFrom;
}

/** One location-scale tensor of a posterior: mu and rho variables. */
export interface LocScaleParam {
  readonly role: 'weight' | 'bias';
  readonly mu: tf.Variable;
  readonly rho: tf.Variable;
}

const identityHook: SampleHook = (_p, _r, t) => t;

/**
 * Shared machinery of posteriors w = mu + sigma * xi with sigma = softplus(rho) and a
 * standardised noise xi (independent normals for Gaussian, radial for Radial). Subclasses say
 * how xi is drawn and what its entropy and moments are. Exported so plugins can reuse it.
 */
export abstract class LocScalePosterior implements Posterior {
  abstract readonly kind: string;
  abstract readonly modes: readonly SamplingMode[];
  readonly klMethods: readonly KlMethod[] = ['closed', 'direct', 'repar'];
  readonly defaultMode: SamplingMode = 'weights';
  /** The posterior's tensors: weight, then bias if any. */
  readonly params: LocScaleParam[];
  protected rng: Rng;
  protected readonly spec: PosteriorSpec;

  constructor(spec: PosteriorSpec, options: LocScaleOptions = {}) {
    this.spec = spec;
    this.rng = spec.rng;
    const init = spec.rng.fork(0);
    const name = spec.name ?? 'bayes';
    const from = options.initFrom;
    const make = (
      role: 'weight' | 'bias',
      shape: readonly number[],
      locInit: LocInit,
      src: tf.Tensor | null | undefined,
    ) => {
      const n = sizeOf(shape);
      let mu: Float32Array;
      let rho: Float32Array;
      if (from && src) {
        mu = valuesOf(src, shape, `${name}: initFrom.${role}`);
        rho = mopedRho(mu, from.delta ?? 0.1);
      } else {
        mu = locValues(locInit, n, spec.fanIn, init);
        rho = rhoValues(options.rhoInit ?? this.defaultRhoInit(n), n, init);
      }
      const c = spec.createParameter;
      return {
        role,
        mu: makeVariable(mu, shape, c ? `${role}_mu` : `${name}.${role}_mu`, c),
        rho: makeVariable(rho, shape, c ? `${role}_rho` : `${name}.${role}_rho`, c),
      };
    };
    this.params = [make('weight', spec.weightShape, options.muInit ?? 'kaiming', from?.weight)];
    if (spec.biasShape) this.params.push(make('bias', spec.biasShape, options.biasMuInit ?? 0, from?.bias));
  }

  /**
   * The rho initialisation of a tensor of `n` elements when the options give none:
   * { mean: -5, std: 0.1 }, sigma ~ 0.0067 (Bayesian-Torch's and Ferianc et al.'s choice).
   */
  protected defaultRhoInit(_n: number): RhoInit {
    return { mean: -5, std: 0.1 };
  }

  /** Draws the standardised noise xi for one tensor, as float32 values in row-major order. */
  protected abstract drawXiValues(shape: readonly number[], rng: Rng): Float32Array;

  /** The standardised noise as a tensor. */
  protected drawXi(shape: readonly number[], rng: Rng): tf.Tensor {
    return tf.tensor(this.drawXiValues(shape, rng), shape as number[], 'float32');
  }
  /** E_q[log q] of one tensor, given log sigma. */
  protected abstract entropyTerm(logSigma: tf.Tensor): tf.Scalar;
  /** Exact E_q[log p] of one tensor. */
  protected abstract crossClosed(mu: tf.Tensor, sigma: tf.Tensor, prior: GaussianPrior): tf.Scalar;
  /** (t1, t2) over M draws of xi, without gradient. Default: accumulate M draws. */
  protected reparStats(shape: readonly number[], m: number, rng: Rng): { t1: tf.Tensor; t2: tf.Tensor } {
    const { t1, t2 } = accumulateStats(sizeOf(shape), m, () => this.drawXiValues(shape, rng));
    return { t1: tf.tensor(t1, shape as number[]), t2: tf.tensor(t2, shape as number[]) };
  }

  reseed(rng: Rng): void {
    this.rng = rng;
  }

  parameters(): ReadonlyMap<string, tf.Variable> {
    const m = new Map<string, tf.Variable>();
    for (const p of this.params) {
      m.set(`${p.role}_mu`, p.mu);
      m.set(`${p.role}_rho`, p.rho);
    }
    return m;
  }

  buffers(): ReadonlyMap<string, tf.Tensor> {
    return new Map();
  }

  /** sigma = softplus(rho) of one tensor. */
  sigma(role: 'weight' | 'bias'): tf.Tensor {
    return softplus(this.param(role).rho);
  }

  protected param(role: 'weight' | 'bias'): LocScaleParam {
    const p = this.params.find((q) => q.role === role);
    if (!p) throw new QbnnError('ERR_ARG', `posterior has no ${role}`);
    return p;
  }

  sample(options: SampleOptions = {}): WeightSample {
    const rng = options.rng ?? this.rng;
    const hook = options.hook ?? identityHook;
    const [weight, bias] = tf.tidy(() =>
      this.params.map((p) => {
        // No hook to see the parts: one fused kernel each way where the backend has it.
        if (options.hook === undefined) return this.sampleParam(p, rng);
        const mu = hook('mu', p.role, p.mu);
        const sigma = hook('sigma', p.role, softplus(p.rho));
        const noise = hook('noise', p.role, tf.mul(sigma, this.drawXi(p.mu.shape, rng)));
        return hook('weight', p.role, tf.add(mu, noise));
      }),
    );
    return { weight, bias };
  }

  /** One tensor's sample mu + softplus(rho) * xi: one fused kernel each way where the backend has it. */
  protected sampleParam(p: LocScaleParam, rng: Rng): tf.Tensor {
    return locScaleSample(p.mu, p.rho, this.drawXi(p.mu.shape, rng));
  }

  mean(): WeightSample {
    return { weight: this.params[0].mu, bias: this.params[1]?.mu };
  }

  forward(x: tf.Tensor, op: LayerOp, options: ForwardOptions = {}): tf.Tensor {
    const mode = options.mode ?? this.defaultMode;
    if (!this.modes.includes(mode)) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `posterior '${this.kind}' does not support sampling mode '${mode}'`,
      );
    }
    const rng = options.rng ?? this.rng;
    return tf.tidy(() => {
      if (mode === 'mean') {
        const hook = options.hook ?? identityHook;
        const w = this.params.map((p) => hook('weight', p.role, hook('mu', p.role, p.mu)));
        return op.apply(x, w[0], w[1]);
      }
      if (mode === 'weights') {
        const s = this.sample({ rng, hook: options.hook });
        return op.apply(x, s.weight, s.bias);
      }
      if (mode === 'local') return this.forwardLocal(x, op, rng);
      return this.forwardFlipout(x, op, rng);
    });
  }

  /**
   * Local reparameterisation: y = op(x, mu) + sqrt(op(x^2, sigma^2)) * eps, eps ~ N(0, 1) per output.
   * sigma is kept across a prediction's passes (see sigmaOf).
   */
  protected forwardLocal(x: tf.Tensor, op: LayerOp, rng: Rng): tf.Tensor {
    const w = this.params[0];
    const b = this.params[1];
    const mean = op.apply(x, w.mu, b?.mu);
    const variance = op.apply(
      tf.square(x),
      tf.square(sigmaOf(w.rho)),
      b ? tf.square(sigmaOf(b.rho)) : undefined,
    );
    // A tiny floor keeps the square root's gradient finite where the variance is exactly 0
    // (e.g. zero-padded border outputs of a convolution on a zero input).
    const sd = tf.sqrt(tf.add(variance, 1e-16));
    return tf.add(mean, tf.mul(sd, this.drawGaussian(mean.shape, rng)));
  }

  /** Standard normal noise for local reparameterisation (Gaussian by construction). */
  protected drawGaussian(shape: readonly number[], rng: Rng): tf.Tensor {
    return normalTensor(rng, shape);
  }

  /**
   * Flipout: y = op(x, mu) + op(x * s_in, sigma * xi) * s_out (+ the sampled bias), with
   * independent random signs s_in [N, C_in, 1...] and s_out [N, C_out, 1...] per example.
   */
  protected forwardFlipout(x: tf.Tensor, op: LayerOp, rng: Rng): tf.Tensor {
    const w = this.params[0];
    const b = this.params[1];
    const bias = b ? tf.add(b.mu, tf.mul(softplus(b.rho), this.drawXi(b.mu.shape, rng))) : undefined;
    const base = op.apply(x, w.mu, bias);
    const dW = tf.mul(softplus(w.rho), this.drawXi(w.mu.shape, rng));
    const sIn = signTensor(rng, channelSignShape(x.shape));
    const pert = op.apply(tf.mul(x, sIn), dW);
    const sOut = signTensor(rng, channelSignShape(pert.shape));
    return tf.add(base, tf.mul(pert, sOut));
  }

  getKl(prior: Prior, options: KlOptions = {}): tf.Scalar {
    const method = options.method ?? 'closed';
    if (!this.klMethods.includes(method)) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `posterior '${this.kind}' does not support KL method '${method}'`,
      );
    }
    const m = options.nMcIter ?? 1;
    if (!Number.isSafeInteger(m) || m < 1) {
      throw new QbnnError('ERR_ARG', `nMcIter must be a positive integer, got ${m}`);
    }
    const rng = options.rng ?? this.rng;
    return tf.tidy(() => {
      let kl: tf.Tensor = tf.scalar(0);
      for (const p of this.params) {
        const pr = priorFor(prior, p.role);
        const sigma = softplus(p.rho);
        const entropy = this.entropyTerm(logSoftplus(p.rho));
        let cross: tf.Scalar;
        if (method === 'closed') cross = this.crossClosed(p.mu, sigma, pr);
        else if (method === 'direct')
          cross = crossDirect(p.mu, sigma, pr, m, () => this.drawXi(p.mu.shape, rng));
        else {
          const { t1, t2 } = this.reparStats(p.mu.shape, m, rng);
          cross = crossFromStats(p.mu, sigma, pr, t1, t2);
        }
        kl = tf.add(kl, tf.sub(entropy, cross));
      }
      return kl as tf.Scalar;
    });
  }

  dispose(): void {
    for (const p of this.params) {
      p.mu.dispose();
      p.rho.dispose();
    }
  }
}

/** Shape of a per-example, per-channel sign tensor for an [N, C, ...] tensor: [N, C, 1, ...]. */
export function channelSignShape(shape: readonly number[]): number[] {
  return shape.map((d, i) => (i < 2 ? d : 1));
}
