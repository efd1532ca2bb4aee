// ReLU's gradient as one kernel where a backend has it ('QbnnReluGrad': dy * step(x), NaN where x
// is NaN). tfjs composes it of Step, Cast and Multiply: three passes over every activation and
// two temporaries, the largest element-wise cost of a convolutional training step. No backend
// has the kernel by default: an fp32 kernel set (@qbnn/native-amx) registers it for wasm, and
// everywhere else the gradient is tfjs's own composition.
import * as tf from '@tensorflow/tfjs-core';

export const RELU_GRAD = 'QbnnReluGrad';

/** Replaces tfjs's Relu gradient by one that runs {@link RELU_GRAD} where the backend has it. */
export function registerReluGradient(): void {
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return {
        x: () =>
          x.dtype === 'float32' && tf.getKernel(RELU_GRAD, tf.getBackend()) !== undefined
            ? (tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor)
            : tf.mul(dy as tf.Tensor, tf.cast(tf.step(x), 'float32')),
      };
    },
  });
}
