// A convolution with its bias, a ReLU and a 2 x 2 stride-2 max pool in one kernel
// ('QbnnConvReluMaxPool'), so that the convolution's output never goes to memory: LeNet-5's
// conv - relu - pool blocks wrote and read back 4x the pooled activations a step for it, and the
// pool's gradient read them once more. Inputs x, filter (HWIO) and an optional bias, attributes
// as FusedConv2D's (NCHW, dilation 1); outputs the pooled activations
// relu(maxpool(conv(x) + bias)) and each window's tap, one byte a window packed four to an int32
// element (0..3 row-major; 4 where the ReLU passes no gradient). Its gradient kernel
// ('QbnnConvReluMaxPoolGrad', attribute `wrt` 'x' | 'filter' | 'bias') gives Conv2D's gradients and
// the bias sum of dz, dy put at each window's tap (the values ReluGrad then MaxPoolGrad give),
// from dy and the taps without dz. No backend has the kernels by default: an fp32 kernel set
// (@qbnn/native-amx) registers them for wasm.
import * as tf from '@tensorflow/tfjs-core';

export const CONV_RELU_MAX_POOL = 'QbnnConvReluMaxPool';
export const CONV_RELU_MAX_POOL_GRAD = 'QbnnConvReluMaxPoolGrad';

/**
 * Attributes of {@link CONV_RELU_MAX_POOL} (FusedConv2D's, NCHW, no activation); its gradient
 * kernel {@link CONV_RELU_MAX_POOL_GRAD} adds `wrt` and `xShape` / `filterShape`.
 */
export interface ConvReluMaxPoolAttrs {
  strides: [number, number];
  pad: tf.backend_util.ExplicitPadding;
  dataFormat: 'NCHW';
  dilations: [1, 1];
}

/** The convolution's geometry (NCHW x, HWIO filter). */
export function convReluMaxPoolInfo(
  xShape: readonly number[],
  filterShape: readonly number[],
  a: ConvReluMaxPoolAttrs,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    undefined,
    false,
    'channelsFirst',
  );
}

/** Elements of the packed tap tensor for `windows` windows (four bytes an int32). */
export const packedTapCount = (windows: number): number => Math.max(1, Math.ceil(windows / 4));

/** Registers the kernel's gradient (x, filter and bias, each only when asked). */
export function registerConvReluMaxPoolGradient(): void {
  tf.registerGradient({
    kernelName: CONV_RELU_MAX_POOL,
    inputsToSave: ['x', 'filter'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
      const [x, filter, at] = saved;
      const grad = (wrt: 'x' | 'filter' | 'bias', inputs: tf.NamedTensorMap) =>
        tf.engine().runKernel(CONV_RELU_MAX_POOL_GRAD, { dy, at, ...inputs }, {
          ...attrs,
          wrt,
          xShape: x.shape,
          filterShape: filter.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return {
        x: () => grad('x', { filter }),
        filter: () => grad('filter', { x }),
        bias: () => grad('bias', {}),
      };
    },
  });
}

/**
 * relu(maxpool2x2(conv2d(x, filter) + bias)) on NCHW `x` with an HWIO filter, as one kernel forward
 * and its gradient backward; null when the backend lacks the kernels (compose the ops then).
 */
export function convReluMaxPool(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D | undefined,
  attrs: ConvReluMaxPoolAttrs,
): tf.Tensor4D | null {
  const backend = tf.getBackend();
  if (
    tf.getKernel(CONV_RELU_MAX_POOL, backend) === undefined ||
    tf.getKernel(CONV_RELU_MAX_POOL_GRAD, backend) === undefined
  )
    return null;
  const inputs: tf.NamedTensorMap = bias ? { x, filter, bias } : { x, filter };
  const [y, at] = tf
    .engine()
    .runKernel(CONV_RELU_MAX_POOL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  // the tape keeps its own reference to the taps when it records; nothing else reads them
  at.dispose();
  return y as tf.Tensor4D;
}
