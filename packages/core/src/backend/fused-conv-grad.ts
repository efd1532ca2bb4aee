// A gradient for tfjs's FusedConv2D kernel with a bias and no activation (the convolution and its
// bias in one kernel pass). tfjs registers none: tf.fused.conv2d differentiates through a
// customGrad of its own, for NHWC only. With this, a layer may call the kernel directly (e.g.
// @qbnn/nn's NCHW convolution on native fp32 kernels) and train: x and filter get Conv2D's
// gradients (the Conv2DBackpropInput / Conv2DBackpropFilter kernels, as tfjs's Conv2D gradient
// runs them), the bias the sum of dy over every axis but the channels; each only when asked, so
// the data input of a first layer costs nothing.
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';

/** Registers the FusedConv2D gradient (bias, linear activation, dilation 1). */
export function registerFusedConvGradient(): void {
  tf.registerGradient({
    kernelName: tf.FusedConv2D,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      const a = attrs as unknown as tf.FusedConv2DAttrs;
      const dil = typeof a.dilations === 'number' ? [a.dilations, a.dilations] : (a.dilations ?? [1, 1]);
      if ((a.activation ?? 'linear') !== 'linear' || dil.some((d) => d !== 1))
        throw new QbnnError(
          'ERR_UNSUPPORTED',
          `FusedConv2D gradient: only a linear activation and dilation 1, got ${a.activation} and [${dil}]`,
        );
      const g = dy as tf.Tensor4D;
      const common = {
        strides: a.strides,
        pad: a.pad,
        dataFormat: a.dataFormat,
        dimRoundingMode: a.dimRoundingMode,
      };
      const channelAxis = a.dataFormat === 'NCHW' ? 1 : 3;
      return {
        x: () =>
          tf
            .engine()
            .runKernel(tf.Conv2DBackpropInput, { dy: g, filter }, { ...common, inputShape: x.shape }),
        filter: () =>
          tf
            .engine()
            .runKernel(tf.Conv2DBackpropFilter, { x, dy: g }, { ...common, filterShape: filter.shape }),
        bias: () =>
          tf.sum(
            g,
            [0, 1, 2, 3].filter((d) => d !== channelAxis),
          ),
      };
    },
  });
}
