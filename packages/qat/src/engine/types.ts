import type { QParams } from '../spec.js';

/** Affine parameters of an unsigned activation tensor (per tensor). */
export interface ActQ {
  scale: number;
  zeroPoint: number;
  /** 2..8; values live in [0, 2^bits - 1] stored as u8. */
  bits: number;
}

/** A deterministic (pointwise) weight tensor stored as integers, with a float bias. */
export interface FixedWeights {
  kind: 'fixed';
  /** s8 weights [N, K] (conv: [O, C/g * kh * kw]). */
  w: Int8Array;
  wq: QParams;
  /** Float bias [N], quantised to int32 at S_in * S_w[n] when run. */
  bias?: Float32Array;
}

/**
 * A Gaussian (or Radial) posterior stored as integers (DESIGN.md section 3): means mu_q (signed,
 * weight bits), standard deviations sigma_q (unsigned, weight bits), and the observed scales of
 * the noise n = Q(eps * sigma) and of the sampled weight w = Q(mu + n).
 */
export interface GaussianWeights {
  kind: 'gaussian' | 'radial';
  mu: Int8Array;
  muQ: QParams;
  sigma: Uint8Array;
  sigmaQ: QParams;
  noiseQ: QParams;
  weightQ: QParams;
  /** Bias posterior in float (biases are int32 at run time): b = mu + sigma * eps. */
  bias?: { mu: Float32Array; sigma: Float32Array };
}

/** An ensemble (SGHMC members, or stored draws of a third-party posterior), each member quantised separately. */
export interface EnsembleWeights {
  kind: 'ensemble';
  members: FixedWeights[];
}

export type LayerWeights = FixedWeights | GaussianWeights | EnsembleWeights;

/** One linear or convolution layer of the integer engine. */
export interface QLayerSpec {
  op: 'linear' | 'conv2d';
  /** Module path in the float model. */
  path: string;
  /** Output channels N. */
  n: number;
  /** Reduction length K (linear: in features; conv: C/g * kh * kw). */
  k: number;
  /** Conv weight shape [O, C/g, kh, kw]. */
  wShape?: [number, number, number, number];
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
  /** Params of the input activation. */
  input: ActQ;
  /** Params of the output activation; null for float logits (the last layer). */
  output: ActQ | null;
  /** ReLU fused into the requantisation clamp. */
  relu: boolean;
  weights: LayerWeights;
  /** MC Dropout on the input: drop probability and the params of the masked, rescaled input. */
  dropout?: { p: number; masked: ActQ };
}

/** The ops of a quantised model, run in order. */
export type QOp =
  | { op: 'quantize'; q: ActQ }
  | { op: 'layer'; layer: QLayerSpec }
  | { op: 'relu'; q: ActQ }
  | {
      op: 'maxpool2d' | 'avgpool2d';
      kernel: [number, number];
      stride: [number, number];
      padding: [number, number];
      q: ActQ;
    }
  | { op: 'globalavgpool2d'; q: ActQ }
  | { op: 'flatten' }
  | {
      /**
       * Residual add: `q = Q(relu?(body(x) + shortcut(x)))` requantised from the two branches'
       * grids (`bodyQ`, `shortcutQ`) to `q`; an empty shortcut is the identity.
       */
      op: 'residual';
      body: QOp[];
      shortcut: QOp[];
      bodyQ: ActQ;
      shortcutQ: ActQ;
      q: ActQ;
      relu: boolean;
    };

/** How stochastic layers draw their randomness at inference. */
export type EngineMode = 'weights' | 'local';
