import { QbnnError, type Rng } from '@qbnn/core';
import {
  crossFromStats,
  type ForwardOptions,
  gaussianLogDensity,
  type KlMethod,
  type KlOptions,
  type LayerOp,
  logSoftplus,
  type Posterior,
  type PosteriorSpec,
  type Prior,
  priorFor,
  type SampleOptions,
  type SamplingMode,
  softplus,
  type WeightSample,
} from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';

/** Options of the `lowrank` posterior. */
export interface LowRankOptions {
  /** Initial rho of the diagonal part (sigma = softplus(rho)). Default -5. */
  rhoInit?: number;
  /** Standard deviation of the initial rank-one factor v ~ N(0, vInit^2). Default 1e-3. */
  vInit?: number;
}

// Typed options for `posteriorOptions` when a layer names 'lowrank'.
declare module '@qbnn/posteriors' {
  interface PosteriorOptionsMap {
    lowrank: LowRankOptions;
  }
}

interface Part {
  role: 'weight' | 'bias';
  mu: tf.Variable;
  rho: tf.Variable;
  v: tf.Variable;
}

const LOG_2PI = Math.log(2 * Math.PI);

/** Diagonal plus rank-one Gaussian posterior. */
export class LowRankGaussianPosterior implements Posterior {
  readonly kind = 'lowrank';
  // Flipout needs a perturbation law invariant under sign flips; the rank-one part is not.
  readonly modes: readonly SamplingMode[] = ['weights', 'mean'];
  readonly klMethods: readonly KlMethod[] = ['closed', 'direct'];
  readonly defaultMode: SamplingMode = 'weights';
  readonly parts: Part[] = [];
  private rng: Rng;

  constructor(spec: PosteriorSpec, options: LowRankOptions = {}) {
    this.rng = spec.rng;
    const init = spec.rng.fork(0);
    // Allocate through the layer (its registerParameter) so the variables train and save with it.
    const create = spec.createParameter ?? ((_name: string, value: tf.Tensor) => tf.variable(value));
    const make = (role: 'weight' | 'bias', shape: readonly number[]): Part => {
      const n = shape.reduce((a, b) => a * b, 1);
      const bound = 1 / Math.sqrt(spec.fanIn);
      const u = init.uniform(n).map((x) => (role === 'weight' ? (2 * x - 1) * bound : 0));
      const vs = init.normal(n).map((x) => x * (options.vInit ?? 1e-3));
      const alloc = (name: string, values: Float32Array) => {
        const t = tf.tensor(values, shape as number[]);
        const variable = create(`${role}_${name}`, t);
        t.dispose();
        return variable;
      };
      return {
        role,
        mu: alloc('mu', u),
        rho: alloc('rho', new Float32Array(n).fill(options.rhoInit ?? -5)),
        v: alloc('v', vs),
      };
    };
    this.parts.push(make('weight', spec.weightShape));
    if (spec.biasShape) this.parts.push(make('bias', spec.biasShape));
  }

  reseed(rng: Rng): void {
    this.rng = rng;
  }

  parameters(): ReadonlyMap<string, tf.Variable> {
    const m = new Map<string, tf.Variable>();
    for (const p of this.parts) {
      m.set(`${p.role}_mu`, p.mu);
      m.set(`${p.role}_rho`, p.rho);
      m.set(`${p.role}_v`, p.v);
    }
    return m;
  }

  buffers(): ReadonlyMap<string, tf.Tensor> {
    return new Map();
  }

  sample(options: SampleOptions = {}): WeightSample {
    const rng = options.rng ?? this.rng;
    const hook = options.hook ?? ((_p: string, _r: 'weight' | 'bias', t: tf.Tensor) => t);
    const out = tf.tidy(() =>
      this.parts.map((p) => {
        const eps = tf.tensor(rng.normal(p.mu.size), p.mu.shape);
        const [z] = rng.normal(1);
        const mu = hook('mu', p.role, p.mu);
        const sigma = hook('sigma', p.role, softplus(p.rho));
        const noise = hook('noise', p.role, tf.add(tf.mul(sigma, eps), tf.mul(p.v, z)));
        return hook('weight', p.role, tf.add(mu, noise));
      }),
    );
    return { weight: out[0], bias: out[1] };
  }

  mean(): WeightSample {
    return { weight: this.parts[0].mu, bias: this.parts[1]?.mu };
  }

  forward(x: tf.Tensor, op: LayerOp, options: ForwardOptions = {}): tf.Tensor {
    const mode = options.mode ?? this.defaultMode;
    if (!this.modes.includes(mode)) {
      throw new QbnnError('ERR_UNSUPPORTED', `posterior 'lowrank' does not support sampling mode '${mode}'`);
    }
    return tf.tidy(() => {
      const s = mode === 'mean' ? this.mean() : this.sample(options);
      return op.apply(x, s.weight, s.bias);
    });
  }

  /**
   * KL(q || p) = E_q[log q] - E_q[log p]. Entropy term, exact by the matrix determinant lemma:
   * log det Sigma = sum log sigma^2 + log(1 + sum v^2 / sigma^2). Cross term: `closed` uses the
   * marginal variances sigma^2 + v^2; `direct` averages log p over nMcIter samples.
   */
  getKl(prior: Prior, options: KlOptions = {}): tf.Scalar {
    const method = options.method ?? 'closed';
    if (!this.klMethods.includes(method)) {
      throw new QbnnError('ERR_UNSUPPORTED', `posterior 'lowrank' does not support KL method '${method}'`);
    }
    const m = options.nMcIter ?? 1;
    const rng = options.rng ?? this.rng;
    return tf.tidy(() => {
      let kl: tf.Tensor = tf.scalar(0);
      for (const p of this.parts) {
        const pr = priorFor(prior, p.role);
        const n = p.mu.size;
        const logSigma = logSoftplus(p.rho);
        const sigma = softplus(p.rho);
        const logDet = tf.add(tf.mul(2, tf.sum(logSigma)), tf.log1p(tf.sum(tf.square(tf.div(p.v, sigma)))));
        const entropy = tf.mul(-0.5, tf.add(logDet, n * (LOG_2PI + 1)));
        let cross: tf.Tensor;
        if (method === 'closed') {
          cross = crossFromStats(p.mu, tf.sqrt(tf.add(tf.square(sigma), tf.square(p.v))), pr, 0, 1);
        } else {
          let acc: tf.Tensor = tf.scalar(0);
          for (let k = 0; k < m; k++) {
            const eps = tf.tensor(rng.normal(n), p.mu.shape);
            const [z] = rng.normal(1);
            const w = tf.add(p.mu, tf.add(tf.mul(sigma, eps), tf.mul(p.v, z)));
            acc = tf.add(acc, gaussianLogDensity(w, pr));
          }
          cross = tf.div(acc, m);
        }
        kl = tf.add(kl, tf.sub(entropy, cross));
      }
      return kl as tf.Scalar;
    });
  }

  dispose(): void {
    for (const p of this.parts) tf.dispose([p.mu, p.rho, p.v]);
  }
}
