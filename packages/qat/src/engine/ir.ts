import type { DropoutSpec, IntegerWeights } from '../forms/types.js';
import type { QuantParams } from '../spec.js';

/**
 * The quantised model's IR: a list of {@link QOp}s run in order, walked by one walker
 * (engine/walker.ts) with an op table per interpretation (the integer engine, the float64
 * reference of @qbnn/qat/testing; a native plan compiler can be another). Activations are u8
 * tensors on per-tensor grids ({@link QuantParams}, unsigned); weights are a registered integer
 * form's ({@link IntegerWeights}, `kind` naming the form).
 */

/**
 * One linear or convolution layer. A convolution's input is `[C, H, W]`, or `[C, L]` read as a
 * 1 x L image (a Conv1d lowered onto the 2-D kernels; its output stays `[N, L']`).
 * `convTranspose2d` is PyTorch's transposed convolution computed as the stride-1 convolution it
 * equals: the input spread by the stride (zero points between elements), padded by
 * `dilation (k - 1) - padding` (cropped where negative) and by `outputPadding` after, convolved
 * with the equivalent kernel `wShape` (the torch kernel flipped, its channel axes swapped per group).
 */
export interface QLayerSpec {
  op: 'linear' | 'conv2d' | 'convTranspose2d';
  /** Module path in the float model. */
  path: string;
  /** Output channels N. */
  n: number;
  /** Reduction length K (linear: in features; conv: C/g * kh * kw). */
  k: number;
  /** Conv weight shape [O, C/g, kh, kw] (transposed: of the equivalent convolution). */
  wShape?: [number, number, number, number];
  stride?: [number, number];
  padding?: [number, number];
  /** convTranspose2d only: added after the last element of each spatial axis of the output. */
  outputPadding?: [number, number];
  dilation?: [number, number];
  groups?: number;
  /** Params of the input activation. */
  input: QuantParams;
  /** Params of the output activation; null for float logits (the last layer). */
  output: QuantParams | null;
  /** ReLU fused into the requantisation clamp. */
  relu: boolean;
  /** The layer's weights in the integer form named by `weights.kind`. */
  weights: IntegerWeights;
  /** MC Dropout on the input: drop probability and the params of the masked, rescaled input. */
  dropout?: DropoutSpec;
}

/** A residual add: `q = Q(relu?(body(x) + shortcut(x)))` from the branches' grids; an empty shortcut is the identity. */
export interface QResidual {
  op: 'residual';
  body: QOp[];
  shortcut: QOp[];
  bodyQ: QuantParams;
  shortcutQ: QuantParams;
  q: QuantParams;
  relu: boolean;
}

/** 2-D max or average pooling on u8 (grid unchanged; average pooling rounds half to even). */
export interface QPool {
  op: 'maxpool2d' | 'avgpool2d';
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  q: QuantParams;
}

/**
 * An LSTM layer over `[T, features]` examples (batch first, PyTorch's gates i, f, g, o; qbnn's
 * BayesLSTM, Bayesian-Torch's LSTMReparameterization). At every step its two linear maps run as
 * integer layers with float outputs (the gates' pre-activations): `ih` on the u8 input x_t, `hh`
 * on h_{t-1} held on the grid `q`. The gate nonlinearities and the cell state are float64; h_t is
 * quantised onto `q`, also the grid of the op's output. Stochastic weights are drawn afresh at
 * every step (sample `l T + t` of each map's streams), as BayesLSTM does, in every run mode (no
 * local reparameterisation inside the recurrence).
 */
export interface QLstm {
  op: 'lstm';
  path: string;
  /** Hidden size H (each map has N = 4H outputs). */
  hidden: number;
  /** Every step's h (`[T, H]` per example) or the last one (`[H]`). */
  output: 'sequence' | 'last';
  ih: QLayerSpec;
  hh: QLayerSpec;
  /** Grid of h: the recurrent input of `hh` and the op's output. */
  q: QuantParams;
}

/** The ops of a quantised model, run in order. */
export type QOp =
  | { op: 'quantize'; q: QuantParams }
  | { op: 'layer'; layer: QLayerSpec }
  | { op: 'relu'; q: QuantParams }
  | QPool
  | { op: 'globalavgpool2d'; q: QuantParams }
  | { op: 'flatten' }
  | QResidual
  | QLstm;

/** How stochastic layers draw their randomness at inference. */
export type EngineMode = 'weights' | 'local';

/** Logits of L samples for a batch of B: `logits[(l * B + b) * classes + c]`. */
export interface QuantizedOutput {
  logits: Float32Array;
  samples: number;
  batch: number;
  classes: number;
}

/** Product of a shape's dimensions. */
export function sizeOf(s: readonly number[]): number {
  let p = 1;
  for (const d of s) p *= d;
  return p;
}

/** Per-example output shape [C, Ho, Wo] of a conv layer on a [C, H, W] input (torch's formulas). */
export function convOutputShape(layer: QLayerSpec, h: number, w: number): [number, number, number] {
  const [, , kh, kw] = layer.wShape!;
  const [sh, sw] = layer.stride ?? [1, 1];
  const [ph, pw] = layer.padding ?? [0, 0];
  const [dh, dw] = layer.dilation ?? [1, 1];
  if (layer.op === 'convTranspose2d') {
    const [oph, opw] = layer.outputPadding ?? [0, 0];
    return [
      layer.n,
      (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1,
      (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1,
    ];
  }
  const Ho = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  return [layer.n, Ho, Wo];
}

/** A conv layer's per-example input as an image [C, H, W] ([C, L] is a 1 x L image); undefined for other ranks. */
export function convImage(shape: readonly number[]): [number, number, number] | undefined {
  if (shape.length === 3) return [shape[0], shape[1], shape[2]];
  if (shape.length === 2) return [shape[0], 1, shape[1]];
  return undefined;
}

/** Per-example output shape of a conv layer, of the input's rank ([N, Ho, Wo], or [N, L'] for [C, L]). */
export function convOutput(layer: QLayerSpec, shape: readonly number[]): number[] {
  const [, h, w] = convImage(shape)!;
  const out = convOutputShape(layer, h, w);
  return shape.length === 2 ? [out[0], out[2]] : out;
}

/** The layers of an op list in execution order (residual bodies before shortcuts). */
export function layersOf(ops: readonly QOp[]): QLayerSpec[] {
  return ops.flatMap((o) =>
    o.op === 'layer'
      ? [o.layer]
      : o.op === 'residual'
        ? [...layersOf(o.body), ...layersOf(o.shortcut)]
        : o.op === 'lstm'
          ? [o.ih, o.hh]
          : [],
  );
}
