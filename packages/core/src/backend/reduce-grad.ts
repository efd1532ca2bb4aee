// Sum's and Mean's gradients with the ones made by the backend. tfjs multiplies dy by
// `ones(x.shape)`, which it fills element by element in JavaScript and uploads: a KL summed over
// a 1.2 M-weight layer (MC Dropout's L2 term) built and copied 1.2 M ones every training step.
// `fill` makes them in the backend (the gradient of sum(w^2) over [2450, 500] on wasm with the
// native kernels: 20 instead of 37 ms; tf.broadcastTo, through wasm's Tile, took 72). The values
// are the same: dy * 1 is exact.
import * as tf from '@tensorflow/tfjs-core';

/** dy, reshaped with the reduced axes kept as 1, times ones of `shape`. */
function broadcastDy(dy: tf.Tensor, shape: number[], axis: number | number[]): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis, shape);
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.fill(shape, 1, 'float32'));
}

/** Replaces tfjs's Sum and Mean gradients by the same products with backend-made ones. */
export function registerReduceGradients(): void {
  tf.registerGradient({
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as tf.SumAttrs;
      return { x: () => broadcastDy(dy as tf.Tensor, x.shape, axis) };
    },
  });
  tf.registerGradient({
    kernelName: tf.Mean,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as tf.MeanAttrs;
      const axes = tf.util.parseAxisParam(axis, x.shape);
      const size = axes.reduce((n, a) => n * x.shape[a], 1);
      return { x: () => tf.div(broadcastDy(dy as tf.Tensor, x.shape, axis), size) };
    },
  });
}
