import type { DropoutSpec, IntegerWeights } from '../forms/types.js';
import type { QuantParams } from '../spec.js';

/**
 * The quantised model's IR: a list of {@link QOp}s run in order, walked by one walker
 * (engine/walker.ts) with an op table per interpretation (the integer engine, the float64
 * reference of @qbnn/qat/testing; a native plan compiler can be another). Activations are u8
 * tensors on per-tensor grids ({@link QuantParams}, unsigned); weights are a registered integer
 * form's ({@link IntegerWeights}, `kind` naming the form).
 */

/** One linear or convolution layer. */
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

/** The ops of a quantised model, run in order. */
export type QOp =
  | { op: 'quantize'; q: QuantParams }
  | { op: 'layer'; layer: QLayerSpec }
  | { op: 'relu'; q: QuantParams }
  | QPool
  | { op: 'globalavgpool2d'; q: QuantParams }
  | { op: 'flatten' }
  | QResidual;

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

/** Per-example output shape [C, Ho, Wo] of a conv layer on a [C, H, W] input (torch formula). */
export function convOutputShape(layer: QLayerSpec, h: number, w: number): [number, number, number] {
  const [, , kh, kw] = layer.wShape!;
  const [sh, sw] = layer.stride ?? [1, 1];
  const [ph, pw] = layer.padding ?? [0, 0];
  const [dh, dw] = layer.dilation ?? [1, 1];
  const Ho = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  return [layer.n, Ho, Wo];
}

/** The layers of an op list in execution order (residual bodies before shortcuts). */
export function layersOf(ops: readonly QOp[]): QLayerSpec[] {
  return ops.flatMap((o) =>
    o.op === 'layer' ? [o.layer] : o.op === 'residual' ? [...layersOf(o.body), ...layersOf(o.shortcut)] : [],
  );
}
