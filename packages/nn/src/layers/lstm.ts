import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { kaimingUniformBound, type SeedLike, toRng, uniformInit } from '../init.js';
import { Module } from '../module.js';
import { linear } from './linear.js';

/** What an LSTM layer returns: every step's hidden state, or the last one only. */
export type LstmOutput = 'sequence' | 'last';

/** Options of {@link LSTM}. */
export interface LstmOptions {
  /** Learn the biases `bias_ih_l*` and `bias_hh_l*` (default true). */
  bias?: boolean;
  /** Input and output are `[N, T, F]` instead of torch's default `[T, N, F]` (default false). */
  batchFirst?: boolean;
  /** Stacked layers (default 1). */
  numLayers?: number;
  /**
   * `sequence` (default): the last layer's hidden states at every step, torch's `output`;
   * `last`: the final hidden state `[N, H]` only (torch's `h_n[-1]`), e.g. before a regression head.
   */
  output?: LstmOutput;
  /** Initialisation seed (default 0). */
  seed?: SeedLike;
}

/** The sequence layout of an LSTM's input and output. */
export interface LstmLayout {
  batchFirst: boolean;
  output: LstmOutput;
}

function posInt(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new QbnnError('ERR_ARG', `${what} must be a positive integer, got ${n}`);
  return n;
}

/**
 * The LSTM recurrence over a `[T, N, F]` sequence with zero initial state, torch's gate order
 * (input, forget, cell, output):
 * `i, f, g, o = split(inputGates(t, x_t) + hiddenGates(h))`, `c = sigmoid(f) c + sigmoid(i) tanh(g)`,
 * `h = sigmoid(o) tanh(c)`. The gate functions return `[N, 4H]` (weights and biases applied), so a
 * Bayesian layer can draw new weights at every step. Returns the hidden states `[T, N, H]`.
 */
export function lstmRecurrence(
  x: tf.Tensor,
  hidden: number,
  inputGates: (t: number, xt: tf.Tensor) => tf.Tensor,
  hiddenGates: (h: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  const [steps, n] = x.shape;
  let h: tf.Tensor = tf.zeros([n, hidden]);
  let c: tf.Tensor = tf.zeros([n, hidden]);
  const hs: tf.Tensor[] = [];
  const xs = tf.unstack(x, 0);
  for (let t = 0; t < steps; t++) {
    const g = tf.add(inputGates(t, xs[t]), hiddenGates(h));
    const [gi, gf, gg, go] = tf.split(g, 4, 1);
    c = tf.add(tf.mul(tf.sigmoid(gf), c), tf.mul(tf.sigmoid(gi), tf.tanh(gg)));
    h = tf.mul(tf.sigmoid(go), tf.tanh(c));
    hs.push(h);
  }
  return tf.stack(hs, 0);
}

/** `x` as `[T, N, F]`, checking its rank and feature count. */
export function toTimeMajor(what: string, x: tf.Tensor, features: number, layout: LstmLayout): tf.Tensor {
  if (x.rank !== 3 || x.shape[2] !== features) {
    throw new QbnnError(
      'ERR_SHAPE',
      `${what}: expected input ${layout.batchFirst ? '[N, T' : '[T, N'}, ${features}], got [${x.shape}]`,
    );
  }
  if (x.shape[0] === 0 || x.shape[1] === 0)
    throw new QbnnError('ERR_SHAPE', `${what}: empty sequence [${x.shape}]`);
  return layout.batchFirst ? tf.transpose(x, [1, 0, 2]) : x;
}

/** The layer output from time-major hidden states `[T, N, H]`, in the layout asked for. */
export function fromTimeMajor(hs: tf.Tensor, layout: LstmLayout): tf.Tensor {
  if (layout.output === 'last') return tf.squeeze(tf.slice(hs, [hs.shape[0] - 1, 0, 0], [1, -1, -1]), [0]);
  return layout.batchFirst ? tf.transpose(hs, [1, 0, 2]) : hs;
}

/**
 * A long short-term memory layer with torch's semantics, layouts and parameter names
 * (`weight_ih_l{k}` `[4H, in]`, `weight_hh_l{k}` `[4H, H]`, `bias_ih_l{k}`, `bias_hh_l{k}` `[4H]`,
 * gates in the order input, forget, cell, output), initialised like torch
 * (U(-1/sqrt(H), 1/sqrt(H))). Zero initial state; unidirectional.
 */
export class LSTM extends Module {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly layout: LstmLayout;

  constructor(inputSize: number, hiddenSize: number, opts: LstmOptions = {}) {
    super();
    this.inputSize = posInt('LSTM inputSize', inputSize);
    this.hiddenSize = posInt('LSTM hiddenSize', hiddenSize);
    this.numLayers = posInt('LSTM numLayers', opts.numLayers ?? 1);
    const output = opts.output ?? 'sequence';
    if (output !== 'sequence' && output !== 'last') {
      throw new QbnnError('ERR_ARG', `LSTM output must be 'sequence' or 'last', got '${output}'`);
    }
    this.layout = { batchFirst: opts.batchFirst ?? false, output };
    const rng = toRng(opts.seed);
    const bound = kaimingUniformBound(hiddenSize);
    const h4 = 4 * hiddenSize;
    tf.tidy(() => {
      for (let k = 0; k < this.numLayers; k++) {
        const inF = k === 0 ? inputSize : hiddenSize;
        this.registerParameter(`weight_ih_l${k}`, uniformInit([h4, inF], bound, rng));
        this.registerParameter(`weight_hh_l${k}`, uniformInit([h4, hiddenSize], bound, rng));
        if (opts.bias ?? true) {
          this.registerParameter(`bias_ih_l${k}`, uniformInit([h4], bound, rng));
          this.registerParameter(`bias_hh_l${k}`, uniformInit([h4], bound, rng));
        }
      }
    });
  }

  /** Whether the layer has biases. */
  get hasBias(): boolean {
    return this.hasParam('bias_ih_l0');
  }

  forward(x: tf.Tensor): tf.Tensor {
    let seq = toTimeMajor('LSTM', x, this.inputSize, this.layout);
    for (let k = 0; k < this.numLayers; k++) {
      const wih = this.param(`weight_ih_l${k}`);
      const whh = this.param(`weight_hh_l${k}`);
      const bih = this.hasBias ? this.param(`bias_ih_l${k}`) : undefined;
      const bhh = this.hasBias ? this.param(`bias_hh_l${k}`) : undefined;
      const [steps, n, f] = seq.shape;
      // The input projection of every step in one matmul.
      const projected = tf.reshape(linear(tf.reshape(seq, [steps * n, f]), wih, bih), [
        steps,
        n,
        4 * this.hiddenSize,
      ]);
      const perStep = tf.unstack(projected, 0);
      seq = lstmRecurrence(
        seq,
        this.hiddenSize,
        (t) => perStep[t],
        (h) => linear(h, whh, bhh),
      );
    }
    return fromTimeMajor(seq, this.layout);
  }

  override extraRepr(): string {
    return `${this.inputSize}, ${this.hiddenSize}, numLayers=${this.numLayers}, bias=${this.hasBias}, batchFirst=${this.layout.batchFirst}, output=${this.layout.output}`;
  }
}
