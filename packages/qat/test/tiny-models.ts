import type { QOp } from '../src/engine/ir.js';
import { QuantizedModel } from '../src/engine/quantized-model.js';
import { act, lcg, randomFixedWeights, randomGaussianWeights } from './helpers.js';

/**
 * A Bayesian MLP small enough for loops of thousands of calls: quantize -> Gaussian
 * linear(inputs -> hidden) + ReLU -> Gaussian linear(hidden -> classes), float logits.
 */
export function tinyMlp(
  opts: { inputs?: number; hidden?: number; classes?: number; seed?: number; weightBits?: number } = {},
): QuantizedModel {
  const { inputs = 16, hidden = 32, classes = 4, seed = 7, weightBits = 8 } = opts;
  const rnd = lcg(seed);
  const a0 = act(0, 1);
  const a1 = act(0, 2);
  const ops: QOp[] = [
    { op: 'quantize', q: a0 },
    {
      op: 'layer',
      layer: {
        op: 'linear',
        path: 'fc1',
        n: hidden,
        k: inputs,
        input: a0,
        output: a1,
        relu: true,
        weights: randomGaussianWeights(rnd, hidden, inputs, weightBits),
      },
    },
    {
      op: 'layer',
      layer: {
        op: 'linear',
        path: 'fc2',
        n: classes,
        k: hidden,
        input: a1,
        output: null,
        relu: false,
        weights: randomGaussianWeights(rnd, classes, hidden, weightBits),
      },
    },
  ];
  return new QuantizedModel(ops, [inputs]);
}

/** A deterministic conv net: quantize -> conv(1 -> 2, 3x3) + ReLU -> flatten -> linear(2*4*4 -> 3). */
export function tinyConvNet(seed = 3): QuantizedModel {
  const rnd = lcg(seed);
  const a0 = act(0, 1);
  const a1 = act(0, 2);
  const ops: QOp[] = [
    { op: 'quantize', q: a0 },
    {
      op: 'layer',
      layer: {
        op: 'conv2d',
        path: 'conv',
        n: 2,
        k: 9,
        wShape: [2, 1, 3, 3],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
        input: a0,
        output: a1,
        relu: true,
        weights: randomFixedWeights(rnd, 2, 9, 8),
      },
    },
    { op: 'flatten' },
    {
      op: 'layer',
      layer: {
        op: 'linear',
        path: 'fc',
        n: 3,
        k: 32,
        input: a1,
        output: null,
        relu: false,
        weights: randomFixedWeights(rnd, 3, 32, 8),
      },
    },
  ];
  return new QuantizedModel(ops, [1, 6, 6]);
}
