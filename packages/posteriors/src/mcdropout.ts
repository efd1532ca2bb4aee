import { dropout, QbnnError, type Rng, squaredDistance } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { type PointInitOptions, pointParameters } from './init.js';
import { type Prior, priorFor, priorTensors } from './priors.js';
import { dropoutMask } from './random.js';
import type {
  ForwardOptions,
  KlMethod,
  KlOptions,
  LayerOp,
  Posterior,
  PosteriorSpec,
  SampleOptions,
  SamplingMode,
  WeightSample,
} from './types.js';

/** Options of the `mcdropout` posterior. */
export interface McDropoutOptions extends PointInitOptions {
  /** Drop probability in [0, 1). Default 0.2. */
  p?: number;
  /** This layer sees the network input: nothing is dropped there. Default false. */
  isInput?: boolean;
}

const identity = (_p: string, _r: 'weight' | 'bias', t: tf.Tensor) => t;

/**
 * MC Dropout (Gal and Ghahramani 2016): a deterministic weight and bias (`weight`, `bias`) with
 * inverted dropout on the layer input, before every weight layer except the network input, and
 * active at inference. Modes: `local` (default: independent masks per example, i.e. an
 * independent weight sample per example), `weights` (one mask shared by the batch), `mean`
 * (no dropout).
 *
 * KL: only `closed`, as Gal's approximation up to an additive constant (the L2 regulariser a
 * Gaussian prior N(mu0, s0^2) induces): sum((1 - p)(w - mu0)^2) / (2 s0^2) + sum((b - mu0)^2) / (2 s0^2).
 */
export class McDropoutPosterior implements Posterior {
  readonly kind: string = 'mcdropout';
  readonly modes: readonly SamplingMode[] = ['local', 'weights', 'mean'];
  readonly klMethods: readonly KlMethod[] = ['closed'];
  readonly defaultMode: SamplingMode = 'local';
  readonly p: number;
  /** Whether this layer sees the network input (no dropout there). */
  isInput: boolean;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  private rng: Rng;

  constructor(spec: PosteriorSpec, options: McDropoutOptions = {}) {
    const p = options.p ?? 0.2;
    if (!(p >= 0 && p < 1)) throw new QbnnError('ERR_ARG', `mcdropout: p must be in [0, 1), got ${p}`);
    this.p = p;
    this.isInput = options.isInput ?? false;
    this.rng = spec.rng;
    const { weight, bias } = pointParameters(spec, options, spec.name ?? 'mcdropout');
    this.weight = weight;
    this.bias = bias;
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
    return new Map();
  }

  /** The weight itself: MC Dropout's randomness is on the input ({@link transformInput}). */
  sample(options: SampleOptions = {}): WeightSample {
    const hook = options.hook ?? identity;
    return {
      weight: hook('weight', 'weight', this.weight),
      bias: this.bias ? hook('weight', 'bias', this.bias) : undefined,
    };
  }

  mean(): WeightSample {
    return { weight: this.weight, bias: this.bias ?? undefined };
  }

  /** Applies the dropout mask (scaled by 1 / (1 - p)) to the layer input. */
  transformInput(x: tf.Tensor, options: ForwardOptions = {}): tf.Tensor {
    const mode = options.mode ?? this.defaultMode;
    this.checkMode(mode);
    if (mode === 'mean' || this.p === 0 || (options.isInput ?? this.isInput)) return x;
    const rng = options.rng ?? this.rng;
    const shape = mode === 'weights' ? [1, ...x.shape.slice(1)] : x.shape;
    // drawn and applied in one kernel each way where the backend has it (@qbnn/core's dropout)
    const maskSize = shape.reduce((a, b) => a * b, 1);
    const fused = x.dtype === 'float32' && maskSize > 0 ? dropout(x, rng, this.p, maskSize) : null;
    if (fused) return fused;
    return tf.tidy(() => tf.mul(x, dropoutMask(rng, shape, this.p)));
  }

  forward(x: tf.Tensor, op: LayerOp, options: ForwardOptions = {}): tf.Tensor {
    return tf.tidy(() => {
      const s = this.sample(options);
      return op.apply(this.transformInput(x, options), s.weight, s.bias);
    });
  }

  getKl(prior: Prior, options: KlOptions = {}): tf.Scalar {
    const method = options.method ?? 'closed';
    if (!this.klMethods.includes(method)) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `posterior 'mcdropout' does not support KL method '${method}' (supported: closed, Gal's L2 approximation)`,
      );
    }
    return tf.tidy(() => {
      const keep = this.isInput ? 1 : 1 - this.p;
      const term = (v: tf.Tensor, role: 'weight' | 'bias', factor: number) => {
        const p = priorFor(prior, role);
        // a number prior: one fused kernel each way (@qbnn/core's squaredDistance)
        const fused =
          typeof p.mean === 'number' && typeof p.sigma === 'number'
            ? squaredDistance(v, p.mean, factor / (2 * p.sigma * p.sigma))
            : null;
        if (fused) return fused;
        const { mean, sigma } = priorTensors(p);
        return tf.sum(tf.mul(factor, tf.div(tf.square(tf.sub(v, mean)), tf.mul(2, tf.square(sigma)))));
      };
      let kl = term(this.weight, 'weight', keep);
      if (this.bias) kl = tf.add(kl, term(this.bias, 'bias', 1));
      return kl as tf.Scalar;
    });
  }

  private checkMode(mode: SamplingMode): void {
    if (!this.modes.includes(mode)) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `posterior 'mcdropout' does not support sampling mode '${mode}'`,
      );
    }
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}
