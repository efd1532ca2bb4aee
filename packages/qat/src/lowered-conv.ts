import {
  type ConvGeometryFn,
  type ConvKind,
  ConvNd,
  conv1dKind,
  convTranspose1dKind,
  convTranspose2dKind,
  type Module,
} from '@qbnn/nn';
import { BayesConvNd } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import type { QLayerSpec } from './engine/ir.js';

// The conv kinds besides Conv2d that the integer engine runs, lowered onto its 2-D kernels: a
// Conv1d is a 1 x L convolution; a transposed convolution is the stride-1 convolution it equals
// over the spread input (engine/ir.ts), with the equivalent kernel stored by the integer forms.

/** A deterministic or Bayesian conv layer of a kind the integer engine lowers onto its 2-D kernels. */
export type LoweredConv = ConvNd<ConvGeometryFn> | BayesConvNd<ConvGeometryFn>;

const LOWERED: ReadonlySet<ConvKind> = new Set<ConvKind>([
  conv1dKind,
  convTranspose1dKind,
  convTranspose2dKind,
]);
const TRANSPOSED: ReadonlySet<ConvKind> = new Set<ConvKind>([convTranspose1dKind, convTranspose2dKind]);

/** Whether `m` is a conv layer the engine lowers (Conv1d, ConvTranspose1d/2d, and their Bayesian twins). */
export function isLoweredConv(m: Module): m is LoweredConv {
  return (m instanceof ConvNd || m instanceof BayesConvNd) && LOWERED.has(m.kind);
}

/**
 * Whether `m` is a transposed convolution. Its weights are quantised per tensor: a per-channel
 * axis of torch's `[in, out/groups, ...]` layout would be the reduction axis of the integer GEMM.
 */
export function isTransposedConv(m: Module): boolean {
  return isLoweredConv(m) && TRANSPOSED.has(m.kind);
}

const two = (v: unknown, height: number): [number, number] =>
  typeof v === 'number' ? [height, v] : [(v as number[])[0], (v as number[])[1]];

/** The IR geometry of a lowered conv: one-axis sizes at a height of 1; transposed kinds with the equivalent kernel's shape. */
export function loweredGeometry(
  c: LoweredConv,
): Omit<QLayerSpec, 'path' | 'input' | 'output' | 'relu' | 'weights'> {
  const p = c.params as Record<string, unknown>;
  const [kh, kw] = two(c.kernelSize, 1);
  const groups = p.groups as number;
  const cg = c.inChannels / groups;
  const transposed = TRANSPOSED.has(c.kind);
  return {
    op: transposed ? 'convTranspose2d' : 'conv2d',
    n: c.outChannels,
    k: cg * kh * kw,
    wShape: [c.outChannels, cg, kh, kw],
    stride: two(p.stride, 1),
    padding: two(p.padding, 0),
    ...(transposed ? { outputPadding: two(p.outputPadding, 0) } : {}),
    dilation: two(p.dilation, 1),
    groups,
  };
}

/** torch's transposed kernel `[in, out/g, (kh,) kw]` as the equivalent convolution's `[out, in/g, kh, kw]`: channel axes swapped per group, flipped. */
function equivalentKernel(w: tf.Tensor, groups: number): tf.Tensor {
  const [cin, og] = w.shape;
  const kh = w.rank === 4 ? (w.shape[2] as number) : 1;
  const kw = w.shape[w.rank - 1] as number;
  const ig = cin / groups;
  const swapped = tf.transpose(tf.reshape(w, [groups, ig, og, kh, kw]), [0, 2, 1, 3, 4]);
  return tf.reverse(tf.reshape(swapped, [groups * og, ig, kh, kw]), [2, 3]);
}

/**
 * Runs `f` with a transposed convolution's weight tensors rewritten in place to the element
 * order of the equivalent convolution's kernel (shapes kept, values restored after), so the
 * integer forms store the kernel the engine convolves with. Every parameter and buffer of the
 * torch weight's shape is taken for a weight tensor: right for posteriors that are elementwise
 * over the weight (every built-in one).
 */
export function withEquivalentKernel<T>(c: Module, f: () => T): T {
  if (!isTransposedConv(c)) return f();
  const conv = c as LoweredConv;
  const groups = (conv.params as { groups: number }).groups;
  const shape = conv.kind.geometry(
    '',
    conv.inChannels,
    conv.outChannels,
    conv.kernelSize,
    conv.params,
  ).weightShape;
  const vars = [...conv.namedParameters(), ...conv.namedBuffers({ includeNonPersistent: true })]
    .map(([, v]) => v)
    .filter((v) => v.shape.length === shape.length && v.shape.every((d, i) => d === shape[i]));
  const saved = vars.map((v) => tf.clone(v));
  try {
    for (const v of vars) v.assign(tf.tidy(() => tf.reshape(equivalentKernel(v, groups), v.shape)));
    return f();
  } finally {
    vars.forEach((v, i) => {
      v.assign(saved[i]);
    });
    tf.dispose(saved);
  }
}
