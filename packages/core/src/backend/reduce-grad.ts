// Sum's and Mean's gradients with the ones made by the backend. tfjs multiplies dy by
// `ones(x.shape)`, which it fills element by element in JavaScript and uploads: a KL summed over
// a 1.2 M-weight layer (MC Dropout's L2 term) built and copied 1.2 M ones every training step.
// `fill` makes them in the backend (the gradient of sum(w^2) over [2450, 500] on wasm with the
// native kernels: 20 instead of 37 ms; tf.broadcastTo, through wasm's Tile, took 72). The values
// are the same: dy * 1 is exact.
import * as tf from '@tensorflow/tfjs-core';

/** dy, reshaped with the reduced axes kept as 1, times ones of `shape`. */
function spreadDy(dy: tf.Tensor, shape: number[], axis: number | number[]): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis, shape);
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.fill(shape, 1, 'float32'));
}

/** The gradient of a reduction: dy spread over x, divided by the reduced count for a mean. */
function reduceGradient(kernelName: string, mean: boolean): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as tf.SumAttrs;
      const spread = () => spreadDy(dy as tf.Tensor, x.shape, axis);
      if (!mean) return { x: spread };
      const count = tf.util.parseAxisParam(axis, x.shape).reduce((n, a) => n * x.shape[a], 1);
      return { x: () => tf.div(spread(), count) };
    },
  };
}

/** Replaces tfjs's Sum and Mean gradients by the same products with backend-made ones. */
export function registerReduceGradients(): void {
  tf.registerGradient(reduceGradient(tf.Sum, false));
  tf.registerGradient(reduceGradient(tf.Mean, true));
}
