import { QbnnError } from '@qbnn/core';
import { fromTimeMajor, LSTM, type LstmOutput, lstmRecurrence, Module, toRng, toTimeMajor } from '@qbnn/nn';
import type * as tf from '@tensorflow/tfjs-core';
import { convertedLayerOptions, registerBnnConverter } from './dnn-to-bnn.js';
import { type BayesLayerOptions, BayesLinear } from './layers.js';

/** Options of {@link BayesLSTM}: the gates' posterior options plus the sequence layout. */
export interface BayesLstmOptions extends BayesLayerOptions {
  /** Input and output `[N, T, F]` (default true, as Bayesian-Torch); false: torch's `[T, N, F]`. */
  batchFirst?: boolean;
  /** `sequence` (default): every step's hidden state; `last`: the final one `[N, H]`. */
  output?: LstmOutput;
  /** Options of one gate layer only (MOPED initialisation of `ih` or `hh`); seeds are forked from `seed`. */
  gates?: { ih?: Partial<BayesLayerOptions>; hh?: Partial<BayesLayerOptions> };
}

/**
 * A Bayesian LSTM with Bayesian-Torch's `LSTMReparameterization` / `LSTMFlipout` semantics: two
 * Bayesian linear gate layers, `ih` (`[4H, in]`) and `hh` (`[4H, H]`), each with its own posterior
 * and bias, applied at every time step, so each step draws fresh weights in `weights` mode (and
 * fresh flipout signs in `flipout` mode). Gates in torch's order (input, forget, cell, output),
 * zero initial state. The KL is the gates' (they are ordinary Bayesian layers of the model).
 */
export class BayesLSTM extends Module {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly batchFirst: boolean;
  readonly output: LstmOutput;

  constructor(inputSize: number, hiddenSize: number, options: BayesLstmOptions = {}) {
    super();
    for (const [what, n] of [
      ['inputSize', inputSize],
      ['hiddenSize', hiddenSize],
    ] as const) {
      if (!Number.isSafeInteger(n) || n <= 0) {
        throw new QbnnError('ERR_ARG', `BayesLSTM ${what} must be a positive integer, got ${n}`);
      }
    }
    const output = options.output ?? 'sequence';
    if (output !== 'sequence' && output !== 'last') {
      throw new QbnnError('ERR_ARG', `BayesLSTM output must be 'sequence' or 'last', got '${output}'`);
    }
    this.inputSize = inputSize;
    this.hiddenSize = hiddenSize;
    this.batchFirst = options.batchFirst ?? true;
    this.output = output;
    const { gates, batchFirst: _b, output: _o, ...layer } = options;
    const rng = toRng(options.seed);
    this.registerModule(
      'ih',
      new BayesLinear(inputSize, 4 * hiddenSize, { ...layer, ...gates?.ih, seed: rng.fork(0) }),
    );
    this.registerModule(
      'hh',
      new BayesLinear(hiddenSize, 4 * hiddenSize, {
        ...layer,
        ...gates?.hh,
        seed: rng.fork(1),
        isInput: false,
      }),
    );
  }

  forward(x: tf.Tensor): tf.Tensor {
    const layout = { batchFirst: this.batchFirst, output: this.output };
    const seq = toTimeMajor('BayesLSTM', x, this.inputSize, layout);
    const ih = this.child('ih');
    const hh = this.child('hh');
    const hs = lstmRecurrence(
      seq,
      this.hiddenSize,
      (_t, xt) => ih.apply(xt),
      (h) => hh.apply(h),
    );
    return fromTimeMajor(hs, layout);
  }

  override extraRepr(): string {
    return `${this.inputSize}, ${this.hiddenSize}, batchFirst=${this.batchFirst}, output=${this.output}`;
  }
}

registerBnnConverter('LSTM', {
  matches: (m) => m instanceof LSTM,
  convert: (m, ctx) => {
    const l = m as LSTM;
    if (l.numLayers !== 1) {
      throw new QbnnError(
        'ERR_UNSUPPORTED',
        `dnnToBnn: an LSTM of ${l.numLayers} layers (BayesLSTM has one, as Bayesian-Torch's); split it into single-layer LSTMs`,
      );
    }
    const bias = (name: string) => (l.hasBias ? l.param(name) : null);
    return new BayesLSTM(l.inputSize, l.hiddenSize, {
      ...ctx.layer,
      bias: l.hasBias,
      batchFirst: l.layout.batchFirst,
      output: l.layout.output,
      gates: {
        ih: convertedLayerOptions(ctx, l.param('weight_ih_l0'), bias('bias_ih_l0')),
        hh: convertedLayerOptions(ctx, l.param('weight_hh_l0'), bias('bias_hh_l0')),
      },
    });
  },
});
