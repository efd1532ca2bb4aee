// A convolution with its bias, a ReLU and a 2 x 2 stride-2 max pool in one kernel
// ('QbnnConvReluMaxPool'), so that the convolution's output never goes to memory: LeNet-5's
// conv - relu - pool blocks wrote and read back 4x the pooled activations a step for it, and the
// pool's gradient read them once more. Inputs x, filter (HWIO), an optional bias and `at`, an int32
// buffer the kernel fills with each window's tap (one byte a window packed four to an int32
// element: 0..3 row-major, 4 where the ReLU passes no gradient); attributes as FusedConv2D's (NCHW,
// dilation 1); output the pooled activations relu(maxpool(conv(x) + bias)). The taps are an input
// the op allocates, not a second output: tfjs's backward pass gives every output without a
// gradient a zero tensor built in JS (0.4 MB of typed arrays a LeNet-5 b64 step, copied into the
// heap, and external memory that drove garbage collections). Its gradient kernel
// ('QbnnConvReluMaxPoolGrad', attribute `wrt` 'x' | 'filter' | 'bias') gives Conv2D's gradients and
// the bias sum of dz, dy put at each window's tap (the values ReluGrad then MaxPoolGrad give),
// from dy and the taps without dz. No backend has the kernels by default: an fp32 kernel set
// (@qbnn/native-amx) registers them for wasm.
// The filter may also come as PyTorch's OIHW (attribute filterLayout 'OIHW', qbnn's layers'
// own layout, so that no transpose op runs per call) when the kernel set declares
// CONV_RELU_MAX_POOL_OIHW; the filter gradient then comes in the same layout.
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';
import { floatKernelFeature } from './float-kernels.js';
import type { WasmHeapBackend } from './heap.js';

export const CONV_RELU_MAX_POOL = 'QbnnConvReluMaxPool';
export const CONV_RELU_MAX_POOL_GRAD = 'QbnnConvReluMaxPoolGrad';
/** The kernel-set feature (FloatKernelSet.features): the kernels take `filterLayout: 'OIHW'`. */
export const CONV_RELU_MAX_POOL_OIHW = 'QbnnConvReluMaxPool:OIHW';

/**
 * Attributes of {@link CONV_RELU_MAX_POOL} (FusedConv2D's, NCHW, no activation; `filterLayout`
 * 'HWIO' when absent); its gradient kernel {@link CONV_RELU_MAX_POOL_GRAD} adds `wrt` and
 * `xShape` / `filterShape`.
 */
export interface ConvReluMaxPoolAttrs {
  strides: [number, number];
  pad: tf.backend_util.ExplicitPadding;
  dataFormat: 'NCHW';
  dilations: [1, 1];
  filterLayout?: 'HWIO' | 'OIHW';
}

function isCount(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/**
 * Checks the kernel's shapes and attributes: x [N, C, H, W] and a rank-4 filter in
 * `a.filterLayout` ('HWIO' or 'OIHW') whose input channels are C, strides two integers >= 1,
 * `pad` NCHW explicit padding ([[0, 0], [0, 0], [top, bottom], [left, right]], integers >= 0),
 * dataFormat 'NCHW', dilations 1, and a bias of one value an output channel. Throws a
 * QbnnError ERR_ARG naming what does not fit (a filter of fewer input channels than x was read
 * in the wrong layout, a fractional pad rounded, a stride of 0 a typed array of Infinity).
 */
export function checkConvReluMaxPool(
  xShape: readonly number[],
  filterShape: readonly number[],
  a: ConvReluMaxPoolAttrs,
  biasShape?: readonly number[],
): void {
  const fail = (what: string): never => {
    throw new QbnnError('ERR_ARG', `${CONV_RELU_MAX_POOL}: ${what}`);
  };
  if (a === null || typeof a !== 'object') fail('attrs must be an object');
  if (a.filterLayout !== undefined && a.filterLayout !== 'HWIO' && a.filterLayout !== 'OIHW')
    fail(`filterLayout must be 'HWIO' or 'OIHW', got ${String(a.filterLayout)}`);
  if (a.dataFormat !== 'NCHW') fail(`dataFormat must be 'NCHW', got ${String(a.dataFormat)}`);
  const dil = a.dilations ?? [1, 1];
  if (!Array.isArray(dil) || dil.length !== 2 || dil[0] !== 1 || dil[1] !== 1)
    fail(`dilations must be [1, 1], got ${String(dil)}`);
  if (!Array.isArray(a.strides) || a.strides.length !== 2 || !a.strides.every((v) => isCount(v, 1)))
    fail(`strides must be two integers >= 1, got ${String(a.strides)}`);
  const pad = a.pad as unknown;
  const pairOk = (p: unknown, zero: boolean) =>
    Array.isArray(p) && p.length === 2 && p.every((v) => isCount(v, 0) && (!zero || v === 0));
  if (!Array.isArray(pad) || pad.length !== 4 || !pad.every((p, j) => pairOk(p, j < 2)))
    fail(
      `pad must be [[0, 0], [0, 0], [top, bottom], [left, right]] of integers >= 0, got ${JSON.stringify(pad)}`,
    );
  if (xShape.length !== 4 || !xShape.every((v) => isCount(v, 0)))
    fail(`x must be [batch, channels, height, width], got [${xShape}]`);
  if (filterShape.length !== 4 || !filterShape.every((v) => isCount(v, 1)))
    fail(`filter must be rank 4 of sizes >= 1, got [${filterShape}]`);
  const oihw = a.filterLayout === 'OIHW';
  const inC = oihw ? filterShape[1] : filterShape[2];
  const outC = oihw ? filterShape[0] : filterShape[3];
  if (inC !== xShape[1])
    fail(
      `the filter [${filterShape}] (${oihw ? 'OIHW' : 'HWIO'}) takes ${inC} input channels, x [${xShape}] has ${xShape[1]}`,
    );
  if (biasShape !== undefined && (biasShape.length !== 1 || biasShape[0] !== outC))
    fail(`bias must be [${outC}] (one value an output channel), got [${biasShape}]`);
}

/** The convolution's geometry (NCHW x, the filter in `a.filterLayout`), after {@link checkConvReluMaxPool}. */
export function convReluMaxPoolInfo(
  xShape: readonly number[],
  filterShape: readonly number[],
  a: ConvReluMaxPoolAttrs,
): tf.backend_util.Conv2DInfo {
  checkConvReluMaxPool(xShape, filterShape, a);
  const [o, i, h, w] = filterShape;
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    (a.filterLayout === 'OIHW' ? [h, w, i, o] : filterShape) as [number, number, number, number],
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

/** An int32 tensor of `count` elements for the kernel to fill: on wasm straight in its heap, no JS array. */
function tapBuffer(count: number): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.zeros([count], 'int32');
  const info = (tf.backend() as unknown as WasmHeapBackend).makeOutput([count], 'int32');
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** Registers the kernel's gradient (x, filter and bias, each only when asked). */
export function registerConvReluMaxPoolGradient(): void {
  tf.registerGradient({
    kernelName: CONV_RELU_MAX_POOL,
    inputsToSave: ['x', 'filter', 'at'],
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
 * relu(maxpool2x2(conv2d(x, filter) + bias)) on NCHW `x` with an HWIO filter (or OIHW with
 * `attrs.filterLayout`), as one kernel forward and its gradient backward; null when the backend
 * lacks the kernels (compose the ops then). An OIHW filter goes to the kernel as it is when the
 * kernel set declares {@link CONV_RELU_MAX_POOL_OIHW}, else through a transpose op.
 */
export function convReluMaxPool(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D | undefined,
  attrs: ConvReluMaxPoolAttrs,
): tf.Tensor4D | null {
  for (const [name, t] of [
    ['x', x],
    ['filter', filter],
    ['bias', bias],
  ] as const) {
    if (t === undefined && name === 'bias') continue;
    if (!(t instanceof tf.Tensor) || t.isDisposed)
      throw new QbnnError('ERR_ARG', `${CONV_RELU_MAX_POOL}: ${name} must be a live tensor`);
    if (t.dtype !== 'float32')
      throw new QbnnError('ERR_ARG', `${CONV_RELU_MAX_POOL}: ${name} must be float32, got ${t.dtype}`);
  }
  checkConvReluMaxPool(x.shape, filter.shape, attrs, bias?.shape);
  const backend = tf.getBackend();
  if (
    tf.getKernel(CONV_RELU_MAX_POOL, backend) === undefined ||
    tf.getKernel(CONV_RELU_MAX_POOL_GRAD, backend) === undefined
  )
    return null;
  if (attrs.filterLayout === 'OIHW' && !floatKernelFeature(CONV_RELU_MAX_POOL_OIHW)) {
    const { filterLayout: _, ...hwio } = attrs;
    return convReluMaxPool(x, tf.transpose(filter, [2, 3, 1, 0]) as tf.Tensor4D, bias, hwio);
  }
  const c = convReluMaxPoolInfo(x.shape, filter.shape, attrs);
  const at = tapBuffer(
    packedTapCount(c.batchSize * c.outChannels * Math.floor(c.outHeight / 2) * Math.floor(c.outWidth / 2)),
  );
  const inputs: tf.NamedTensorMap = bias ? { x, filter, bias, at } : { x, filter, at };
  const y = tf
    .engine()
    .runKernel(CONV_RELU_MAX_POOL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  // the tape keeps its own reference to the taps when it records; nothing else reads them
  at.dispose();
  return y as tf.Tensor4D;
}
