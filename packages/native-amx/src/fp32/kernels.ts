// tfjs-backend-wasm kernels served by the addon's fp32 kernels (native/src/fp32): each reads its
// inputs and writes its `makeOutput` buffer in the wasm heap in place, through typed-array views
// taken fresh on every call (the heap's ArrayBuffer is replaced when wasm memory grows). Cases
// the native kernels do not cover (NCHW pooling, dilated pooling, PReLU, other dtypes, batch shapes that
// need general broadcasting) call the kernel that was registered before, so nothing changes
// for them.
import {
  CONV_RELU_MAX_POOL,
  CONV_RELU_MAX_POOL_GRAD,
  type ConvReluMaxPoolAttrs,
  checkDropout,
  checkFusedAdam,
  checkGaussianKl,
  checkGaussianSampleKl,
  checkLocScaleSample,
  checkNormalLocScale,
  checkSquaredDistance,
  convReluMaxPoolInfo,
  DROPOUT,
  type DropoutAttrs,
  FUSED_ADAM,
  type FusedAdamAttrs,
  GAUSSIAN_KL,
  GAUSSIAN_KL_GRAD,
  GAUSSIAN_SAMPLE_KL,
  GAUSSIAN_SAMPLE_KL_GRAD,
  type GaussianKlAttrs,
  type GaussianSampleKlAttrs,
  LOCSCALE_SAMPLE,
  LOCSCALE_SAMPLE_GRAD,
  NORMAL_LOCSCALE,
  type NormalLocScaleAttrs,
  packedTapCount,
  QbnnError,
  RELU_GRAD,
  SQUARED_DISTANCE,
  SQUARED_DISTANCE_GRAD,
  type SquaredDistanceAttrs,
} from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Fp32Addon } from '../binding.js';

type TensorInfo = tf.TensorInfo;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** The part of tfjs-backend-wasm's BackendWasm the kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: object): boolean;
  typedArrayFromHeap(info: TensorInfo): tf.backend_util.TypedArray;
}

/** Activation codes of the native epilogue (sgemm.h). */
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, leakyrelu: 3, sigmoid: 4 };

type Impl = (args: Parameters<tf.KernelFunc>[0], fallback: tf.KernelFunc) => TensorInfo | TensorInfo[];

function f32(backend: WasmBackend, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

const allFloat = (...infos: (TensorInfo | undefined)[]): boolean =>
  infos.every((t) => t === undefined || t.dtype === 'float32');

function convGeometry(c: tf.backend_util.Conv2DInfo): Int32Array {
  return Int32Array.from([
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.outHeight,
    c.outWidth,
    c.outChannels,
    c.filterHeight,
    c.filterWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    c.padInfo.top,
    c.padInfo.left,
  ]);
}

function poolGeometry(p: tf.backend_util.Conv2DInfo): Int32Array {
  return Int32Array.from([
    p.batchSize,
    p.inHeight,
    p.inWidth,
    p.inChannels,
    p.outHeight,
    p.outWidth,
    p.filterHeight,
    p.filterWidth,
    p.strideHeight,
    p.strideWidth,
    p.padInfo.top,
    p.padInfo.left,
  ]);
}

/** Whether a fused kernel's bias is absent or one value per output channel (the native epilogue). */
function channelBias(bias: TensorInfo | undefined, channels: number): boolean {
  if (bias === undefined) return true;
  return (
    tf.util.sizeFromShape(bias.shape) === channels &&
    bias.shape.every((d, i, s) => i === s.length - 1 || d === 1)
  );
}

function matMulImpl(native: Fp32Addon, fused: boolean): Impl {
  return ({ inputs, backend, attrs }, fallback) => {
    const { a, b, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined> as {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const act = ACTIVATIONS[activation ?? 'linear'];
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (
      !allFloat(a, b, bias) ||
      preluActivationWeights !== undefined ||
      act === undefined ||
      ra < 2 ||
      rb < 2
    ) {
      return fallback({ inputs, backend, attrs });
    }
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const K2 = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA);
    const batchB = tf.util.sizeFromShape(outerB);
    const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    if (K !== K2 || !(sameOuter || batchA === 1 || batchB === 1) || !channelBias(bias, N)) {
      return fallback({ inputs, backend, attrs });
    }
    // tfjs' broadcast of the outer shapes (a [2, M, K] times b [1, 1, K, N] is [1, 2, M, N])
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput([...outer, M, N], 'float32');
    // an empty batch, M or N: nothing to compute (the addon takes batches >= 1)
    if (batchA === 0 || batchB === 0 || M === 0 || N === 0) return out;
    native.matmul(
      f32(wasm, a),
      f32(wasm, b),
      f32(wasm, out),
      Int32Array.from([batchA, batchB, M, K, N, transposeA ? 1 : 0, transposeB ? 1 : 0]),
      bias === undefined ? null : f32(wasm, bias),
      fused ? act : 0,
      leakyreluAlpha ?? 0.2,
    );
    return out;
  };
}

function conv2dImpl(native: Fp32Addon, fused: boolean): Impl {
  return ({ inputs, backend, attrs }, fallback) => {
    const { x, filter, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined> as {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation, leakyreluAlpha } =
      attrs as unknown as {
        strides: [number, number] | number;
        pad: Pad;
        dataFormat: 'NHWC' | 'NCHW';
        dilations: [number, number] | number;
        dimRoundingMode: Rounding;
        activation?: string;
        leakyreluAlpha?: number;
      };
    const act = ACTIVATIONS[activation ?? 'linear'];
    if (!allFloat(x, filter, bias) || preluActivationWeights !== undefined || act === undefined) {
      return fallback({ inputs, backend, attrs });
    }
    const nchw = dataFormat === 'NCHW';
    const c = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      strides,
      dilations ?? 1,
      pad,
      dimRoundingMode,
      false,
      nchw ? 'channelsFirst' : 'channelsLast',
    );
    // tfjs's fused NCHW bias is a 1-D per-channel vector (or a scalar); other shapes fall back.
    if (!channelBias(bias, c.outChannels) || (nchw && bias !== undefined && bias.shape.length > 1))
      return fallback({ inputs, backend, attrs });
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(c.outShape, 'float32');
    (nchw ? native.conv2dNchw : native.conv2d)(
      f32(wasm, x),
      f32(wasm, filter),
      f32(wasm, out),
      convGeometry(c),
      bias === undefined ? null : f32(wasm, bias),
      fused ? act : 0,
      leakyreluAlpha ?? 0.2,
    );
    return out;
  };
}

interface BackpropAttrs {
  strides: [number, number] | number;
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode: Rounding;
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
}

/**
 * Conv2DBackpropInput (inputs dy, filter) and Conv2DBackpropFilter (inputs x, dy): the geometry
 * from the x and filter shapes (one of them an attribute), the gradient written natively.
 */
const conv2dBackprop =
  (native: Fp32Addon, wrt: 'input' | 'filter'): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const a = attrs as unknown as BackpropAttrs;
    const { dy } = inputs as { dy: TensorInfo };
    const other = (wrt === 'input' ? inputs.filter : inputs.x) as TensorInfo;
    if (!allFloat(dy, other)) return fallback({ inputs, backend, attrs });
    const nchw = a.dataFormat === 'NCHW';
    const xShape = wrt === 'input' ? a.inputShape : other.shape;
    const fShape = wrt === 'input' ? other.shape : a.filterShape;
    const c = tf.backend_util.computeConv2DInfo(
      xShape as [number, number, number, number],
      fShape as [number, number, number, number],
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      nchw ? 'channelsFirst' : 'channelsLast',
    );
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(wrt === 'input' ? c.inShape : (fShape as number[]), 'float32');
    if (wrt === 'input') {
      (nchw ? native.conv2dNchwBackpropInput : native.conv2dBackpropInput)(
        f32(wasm, dy),
        f32(wasm, other),
        f32(wasm, out),
        convGeometry(c),
      );
    } else {
      (nchw ? native.conv2dNchwBackpropFilter : native.conv2dBackpropFilter)(
        f32(wasm, other),
        f32(wasm, dy),
        f32(wasm, out),
        convGeometry(c),
      );
    }
    return out;
  };

/** CONV_RELU_MAX_POOL (NCHW, dilation 1, float32; other cases are an error, @qbnn/core's caller avoids them). */
const convReluMaxPool =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { x, filter, bias, at } = inputs as Record<string, TensorInfo | undefined> as {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      at: TensorInfo;
    };
    const a = attrs as unknown as ConvReluMaxPoolAttrs;
    const dil = a.dilations ?? [1, 1];
    if (!allFloat(x, filter, bias) || a.dataFormat !== 'NCHW' || dil[0] !== 1 || dil[1] !== 1)
      return fallback({ inputs, backend, attrs });
    const c = convReluMaxPoolInfo(x.shape, filter.shape, a);
    if (!channelBias(bias, c.outChannels)) return fallback({ inputs, backend, attrs });
    const windows = c.batchSize * c.outChannels * Math.floor(c.outHeight / 2) * Math.floor(c.outWidth / 2);
    const taps = packedTapCount(windows);
    if (at === undefined || at.dtype !== 'int32' || at.shape.reduce((p, q) => p * q, 1) !== taps)
      throw new QbnnError(
        'ERR_ARG',
        `${CONV_RELU_MAX_POOL}: input at must be an int32 tensor of ${taps} elements`,
      );
    const wasm = backend as unknown as WasmBackend;
    const y = wasm.makeOutput(
      [c.batchSize, c.outChannels, Math.floor(c.outHeight / 2), Math.floor(c.outWidth / 2)],
      'float32',
    );
    // the taps into the op's buffer `at` (an input, so that tfjs's backward pass builds no zero gradient for it)
    native.conv2dNchwReluMaxPool(
      f32(wasm, x),
      f32(wasm, filter),
      f32(wasm, y),
      wasm.typedArrayFromHeap(at) as Int32Array,
      convGeometry(c),
      bias === undefined ? null : f32(wasm, bias),
      a.filterLayout ?? 'HWIO',
    );
    return y;
  };

/**
 * CONV_RELU_MAX_POOL_GRAD: the gradient of CONV_RELU_MAX_POOL with respect to `wrt` ('x' from
 * dy, at and the filter; 'filter' from dy, at and x; 'bias' from dy and at).
 */
const convReluMaxPoolGrad =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { dy, at, x, filter } = inputs as Record<string, TensorInfo | undefined> as {
      dy: TensorInfo;
      at: TensorInfo;
      x?: TensorInfo;
      filter?: TensorInfo;
    };
    const a = attrs as unknown as ConvReluMaxPoolAttrs & {
      wrt: 'x' | 'filter' | 'bias';
      xShape: number[];
      filterShape: number[];
    };
    if (!allFloat(dy, x, filter) || at.dtype !== 'int32' || a.dataFormat !== 'NCHW')
      return fallback({ inputs, backend, attrs });
    const c = convReluMaxPoolInfo(a.xShape, a.filterShape, a);
    const wasm = backend as unknown as WasmBackend;
    // views after makeOutput, which may grow (and so replace) the heap
    const taps = () => wasm.typedArrayFromHeap(at) as Int32Array;
    if (a.wrt === 'x' && filter !== undefined) {
      const dx = wasm.makeOutput(a.xShape, 'float32');
      native.conv2dNchwReluMaxPoolBackpropInput(
        f32(wasm, dy),
        taps(),
        f32(wasm, filter),
        f32(wasm, dx),
        convGeometry(c),
        a.filterLayout ?? 'HWIO',
      );
      return dx;
    }
    if (a.wrt === 'filter' && x !== undefined) {
      const df = wasm.makeOutput(a.filterShape, 'float32');
      native.conv2dNchwReluMaxPoolBackpropFilter(
        f32(wasm, x),
        f32(wasm, dy),
        taps(),
        f32(wasm, df),
        convGeometry(c),
        a.filterLayout ?? 'HWIO',
      );
      return df;
    }
    if (a.wrt === 'bias') {
      const db = wasm.makeOutput([c.outChannels], 'float32');
      native.reluMaxPoolBiasGrad(
        f32(wasm, dy),
        taps(),
        f32(wasm, db),
        Int32Array.of(c.batchSize, c.outChannels, c.outHeight, c.outWidth),
      );
      return db;
    }
    return fallback({ inputs, backend, attrs });
  };

interface PoolAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: Pad;
  dimRoundingMode: Rounding;
}

function poolInfo(shape: number[], attrs: PoolAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

const pool =
  (native: Fp32Addon, kind: 'max' | 'avg'): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { x } = inputs as { x: TensorInfo };
    if (!allFloat(x) || x.shape.length !== 4) return fallback({ inputs, backend, attrs });
    const p = poolInfo(x.shape, attrs as unknown as PoolAttrs);
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(p.outShape, 'float32');
    native.pool(kind, f32(wasm, x), f32(wasm, out), poolGeometry(p));
    return out;
  };

const poolGrad =
  (native: Fp32Addon, kind: 'max' | 'avg'): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    if (!allFloat(dy, input) || input.shape.length !== 4) return fallback({ inputs, backend, attrs });
    const p = poolInfo(input.shape, attrs as unknown as PoolAttrs);
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(input.shape, 'float32');
    native.poolGrad(
      kind,
      kind === 'max' ? f32(wasm, input) : null,
      f32(wasm, dy),
      f32(wasm, out),
      poolGeometry(p),
    );
    return out;
  };

const transpose =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { x } = inputs as { x: TensorInfo };
    const { perm } = attrs as unknown as { perm: number[] };
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || x.shape.length > 8) {
      return fallback({ inputs, backend, attrs });
    }
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(
      perm.map((p) => x.shape[p]),
      x.dtype,
    );
    native.transpose(
      wasm.typedArrayFromHeap(x) as Float32Array | Int32Array,
      wasm.typedArrayFromHeap(out) as Float32Array | Int32Array,
      Int32Array.from(x.shape),
      Int32Array.from(perm),
    );
    return out;
  };

type UnaryOp = 'softplus' | 'sigmoid' | 'exp' | 'log' | 'sqrt';
type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'maximum'
  | 'minimum'
  | 'reluGrad'
  | 'less'
  | 'lessEqual'
  | 'greater'
  | 'greaterEqual';
const FLOAT_RESULT = new Set<BinaryOp>(['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'reluGrad']);

const unary =
  (native: Fp32Addon, op: UnaryOp): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { x } = inputs as { x: TensorInfo };
    if (!allFloat(x)) return fallback({ inputs, backend, attrs });
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(x.shape, 'float32');
    native.unary(op, f32(wasm, x), f32(wasm, out));
    return out;
  };

/** Float tensors of one shape, or one of them a single value: the native binary ops' cases. */
const binary =
  (native: Fp32Addon, op: BinaryOp): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    // @qbnn/core's ReLU gradient takes (dy, x); the others (a, b).
    const { a, b } = (op === 'reluGrad' ? { a: inputs.dy, b: inputs.x } : inputs) as {
      a: TensorInfo;
      b: TensorInfo;
    };
    const sa = tf.util.sizeFromShape(a.shape);
    const sb = tf.util.sizeFromShape(b.shape);
    const same = tf.util.arraysEqual(a.shape, b.shape);
    if (!allFloat(a, b) || !(same || sa === 1 || sb === 1)) return fallback({ inputs, backend, attrs });
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    if (tf.util.sizeFromShape(shape) !== Math.max(sa, sb)) return fallback({ inputs, backend, attrs });
    const wasm = backend as unknown as WasmBackend;
    const compare = !FLOAT_RESULT.has(op);
    const out = wasm.makeOutput(shape, compare ? 'bool' : 'float32');
    native.binary(op, f32(wasm, a), f32(wasm, b), wasm.typedArrayFromHeap(out) as Float32Array | Uint8Array);
    return out;
  };

const select =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { condition, t, e } = inputs as { condition: TensorInfo; t: TensorInfo; e: TensorInfo };
    const size = tf.util.sizeFromShape(t.shape);
    if (
      condition.dtype !== 'bool' ||
      !allFloat(t, e) ||
      tf.util.sizeFromShape(condition.shape) !== size ||
      !tf.util.arraysEqual(t.shape, e.shape)
    ) {
      return fallback({ inputs, backend, attrs });
    }
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(t.shape, 'float32');
    native.select(
      wasm.typedArrayFromHeap(condition) as Uint8Array,
      f32(wasm, t),
      f32(wasm, e),
      f32(wasm, out),
    );
    return out;
  };

/**
 * Sum over axes that leave one contiguous block of kept axes (every axis before it and after it
 * reduced): bias gradients, whole-tensor sums. Other axis sets fall back.
 */
const sum =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { x } = inputs as { x: TensorInfo };
    const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const shape = x.shape;
    const size = tf.util.sizeFromShape(shape);
    if (x.dtype !== 'float32') return fallback({ inputs, backend, attrs });
    const reduced = new Set(tf.util.parseAxisParam(axis, shape));
    const kept = shape.map((_, i) => i).filter((i) => !reduced.has(i));
    const outShape = keepDims ? shape.map((d, i) => (reduced.has(i) ? 1 : d)) : kept.map((i) => shape[i]);
    const wasm = backend as unknown as WasmBackend;
    if (size === 0) {
      // a sum over nothing is 0 (tfjs-backend-wasm's kernel left its output memory as it found it)
      const out = wasm.makeOutput(outShape, 'float32');
      f32(wasm, out).fill(0);
      return out;
    }
    const first = kept.length > 0 ? kept[0] : shape.length;
    const last = kept.length > 0 ? kept[kept.length - 1] : shape.length - 1;
    if (kept.length > 0 && last - first + 1 !== kept.length) return fallback({ inputs, backend, attrs });
    const outer = tf.util.sizeFromShape(shape.slice(0, first));
    const inner = tf.util.sizeFromShape(shape.slice(last + 1));
    const out = wasm.makeOutput(outShape, 'float32');
    native.sum(f32(wasm, x), f32(wasm, out), Int32Array.of(outer, size / (outer * inner), inner));
    return out;
  };

/** @qbnn/core's fused Adam step ('QbnnAdam'), natively: the same float64 arithmetic, threaded. */
const adam =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }) => {
    checkFusedAdam(inputs, attrs);
    const wasm = backend as unknown as WasmBackend;
    const { param, m, v, grad } = inputs as Record<string, TensorInfo>;
    const outs = [param, m, v].map((t) => wasm.makeOutput([...t.shape], 'float32'));
    const a = attrs as unknown as FusedAdamAttrs;
    native.adam(
      f32(wasm, param),
      f32(wasm, m),
      f32(wasm, v),
      f32(wasm, grad),
      f32(wasm, outs[0]),
      f32(wasm, outs[1]),
      f32(wasm, outs[2]),
      Float64Array.of(a.learningRate, a.beta1, a.beta2, a.epsilon, a.correction1, a.correction2),
    );
    return outs;
  };

/** @qbnn/core's fused Gaussian KL ('QbnnGaussianKl') and its gradient, natively. */
const gaussianKl =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }) => {
    checkGaussianKl(inputs, attrs);
    const wasm = backend as unknown as WasmBackend;
    const { mu, rho } = inputs as Record<string, TensorInfo>;
    const a = attrs as unknown as GaussianKlAttrs;
    const out = wasm.makeOutput([], 'float32');
    f32(wasm, out)[0] = native.gaussianKl(
      f32(wasm, mu),
      f32(wasm, rho),
      Float64Array.of(a.priorMean, a.priorSigma),
    );
    return out;
  };

const gaussianKlGrad =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    checkGaussianKl(inputs, attrs, GAUSSIAN_KL_GRAD);
    const wasm = backend as unknown as WasmBackend;
    const { mu, rho, dy } = inputs as Record<string, TensorInfo>;
    if (dy === undefined || dy.shape.length !== 0) return fallback({ inputs, backend, attrs });
    const a = attrs as unknown as GaussianKlAttrs;
    const outs = [wasm.makeOutput([...mu.shape], 'float32'), wasm.makeOutput([...rho.shape], 'float32')];
    native.gaussianKlGrad(
      f32(wasm, mu),
      f32(wasm, rho),
      Float64Array.of(a.priorMean, a.priorSigma),
      f32(wasm, dy)[0],
      f32(wasm, outs[0]),
      f32(wasm, outs[1]),
    );
    return outs;
  };

/**
 * @qbnn/core's Gaussian weight samples fused with their KL ('QbnnGaussianSampleKl', k tensors a call)
 * and its gradient. The KL output sums the tensors' float32 KLs in order in float32, as tfjs's AddN.
 */
const gaussianSampleKl =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }) => {
    const sizes = checkGaussianSampleKl(inputs, attrs);
    const wasm = backend as unknown as WasmBackend;
    const list = Object.values(inputs) as TensorInfo[];
    const a = attrs as unknown as GaussianSampleKlAttrs;
    const outs = sizes.map((_, j) => wasm.makeOutput([...list[3 * j].shape], 'float32'));
    outs.push(wasm.makeOutput([], 'float32'));
    // views after every makeOutput, which may grow (and so replace) the heap
    let kl = 0;
    sizes.forEach((_, j) => {
      const one = native.gaussianSampleKl(
        f32(wasm, list[3 * j]),
        f32(wasm, list[3 * j + 1]),
        Float64Array.of(a.priorMean[j], a.priorSigma[j]),
        f32(wasm, list[3 * j + 2]),
        f32(wasm, outs[j]),
      );
      kl = j === 0 ? Math.fround(one) : Math.fround(kl + Math.fround(one));
    });
    f32(wasm, outs[sizes.length])[0] = kl;
    return outs;
  };

const gaussianSampleKlGrad =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }) => {
    const sizes = checkGaussianSampleKl(inputs, attrs, GAUSSIAN_SAMPLE_KL_GRAD);
    const wasm = backend as unknown as WasmBackend;
    const list = Object.values(inputs) as TensorInfo[];
    const a = attrs as unknown as GaussianSampleKlAttrs;
    const outs = sizes.flatMap((_, j) => [
      wasm.makeOutput([...list[4 * j].shape], 'float32'),
      wasm.makeOutput([...list[4 * j + 1].shape], 'float32'),
    ]);
    const dkl = f32(wasm, list[list.length - 1])[0];
    sizes.forEach((_, j) => {
      native.gaussianSampleKlGrad(
        f32(wasm, list[4 * j]),
        f32(wasm, list[4 * j + 1]),
        Float64Array.of(a.priorMean[j], a.priorSigma[j]),
        f32(wasm, list[4 * j + 2]),
        f32(wasm, list[4 * j + 3]),
        dkl,
        f32(wasm, outs[2 * j]),
        f32(wasm, outs[2 * j + 1]),
      );
    });
    return outs;
  };

/** @qbnn/core's inverted dropout ('QbnnDropout'), drawn and applied natively, bit for bit. */
const dropout =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }) => {
    checkDropout(inputs, attrs);
    const x = inputs.x as TensorInfo;
    const wasm = backend as unknown as WasmBackend;
    const a = attrs as unknown as DropoutAttrs;
    const out = wasm.makeOutput([...x.shape], 'float32');
    native.dropout(f32(wasm, x), a.maskSize, Uint32Array.of(a.k0, a.k1), a.firstBlock, a.p, f32(wasm, out));
    return out;
  };

/** @qbnn/core's scaled squared distance ('QbnnSquaredDistance') and its gradient, natively. */
const squaredDistance =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }) => {
    checkSquaredDistance(inputs, attrs);
    const wasm = backend as unknown as WasmBackend;
    const a = attrs as unknown as SquaredDistanceAttrs;
    const out = wasm.makeOutput([], 'float32');
    f32(wasm, out)[0] = a.scale * native.squaredDistance(f32(wasm, inputs.x as TensorInfo), a.center);
    return out;
  };

const squaredDistanceGrad =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    checkSquaredDistance(inputs, attrs, SQUARED_DISTANCE_GRAD);
    const { x, dy } = inputs as Record<string, TensorInfo>;
    if (dy === undefined || dy.shape.length !== 0) return fallback({ inputs, backend, attrs });
    const wasm = backend as unknown as WasmBackend;
    const a = attrs as unknown as SquaredDistanceAttrs;
    const out = wasm.makeOutput([...x.shape], 'float32');
    native.squaredDistanceGrad(f32(wasm, x), a.center, 2 * a.scale * f32(wasm, dy)[0], f32(wasm, out));
    return out;
  };

/** GatherV2 along axis 0 (no batch dimensions) of 4-byte tensors: a batch cut out of a dataset. */
const gather =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }, fallback) => {
    const { x, indices } = inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
    const rank = x.shape.length;
    if (
      (x.dtype !== 'float32' && x.dtype !== 'int32') ||
      indices.dtype !== 'int32' ||
      rank === 0 ||
      (batchDims ?? 0) !== 0 ||
      (axis < 0 ? axis + rank : axis) !== 0
    )
      return fallback({ inputs, backend, attrs });
    const row = tf.util.sizeFromShape(x.shape.slice(1));
    if (row === 0 || tf.util.sizeFromShape(indices.shape) === 0) return fallback({ inputs, backend, attrs });
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const ok = native.gather(
      wasm.typedArrayFromHeap(x) as Float32Array | Int32Array,
      wasm.typedArrayFromHeap(indices) as Int32Array,
      wasm.typedArrayFromHeap(out) as Float32Array | Int32Array,
      row,
    );
    if (ok) return out;
    // An index out of range: tfjs-backend-wasm's kernel says so in its own words.
    wasm.disposeData(out.dataId);
    return fallback({ inputs, backend, attrs });
  };

/** @qbnn/core's fused location-scale sample ('QbnnLocScaleSample') and its gradient. */
const locScale =
  (native: Fp32Addon, grad: boolean): Impl =>
  ({ inputs, backend }) => {
    checkLocScaleSample(inputs, grad ? LOCSCALE_SAMPLE_GRAD : LOCSCALE_SAMPLE);
    const wasm = backend as unknown as WasmBackend;
    const first = (grad ? inputs.dy : inputs.mu) as TensorInfo;
    const { rho, eps } = inputs as Record<string, TensorInfo>;
    const out = wasm.makeOutput([...(grad ? rho : first).shape], 'float32');
    (grad ? native.locScaleSampleGrad : native.locScaleSample)(
      f32(wasm, first),
      f32(wasm, rho),
      f32(wasm, eps),
      f32(wasm, out),
    );
    return out;
  };

/** @qbnn/core's inference Gaussian sample ('QbnnNormalLocScale'): the normals never leave native code. */
const normalLocScale =
  (native: Fp32Addon): Impl =>
  ({ inputs, backend, attrs }) => {
    checkNormalLocScale(inputs, attrs ?? {});
    const wasm = backend as unknown as WasmBackend;
    const { mu, sigma } = inputs as Record<string, TensorInfo>;
    const { k0, k1, firstBlock } = attrs as unknown as NormalLocScaleAttrs;
    const out = wasm.makeOutput([...mu.shape], 'float32');
    native.normalLocScale(k0, k1, firstBlock, f32(wasm, out), f32(wasm, mu), f32(wasm, sigma));
    return out;
  };

/** The native implementation of each kernel name. */
export function floatKernelImpls(native: Fp32Addon): Record<string, Impl> {
  return {
    BatchMatMul: matMulImpl(native, false),
    _FusedMatMul: matMulImpl(native, true),
    Conv2D: conv2dImpl(native, false),
    FusedConv2D: conv2dImpl(native, true),
    Conv2DBackpropInput: conv2dBackprop(native, 'input'),
    Conv2DBackpropFilter: conv2dBackprop(native, 'filter'),
    [CONV_RELU_MAX_POOL]: convReluMaxPool(native),
    [CONV_RELU_MAX_POOL_GRAD]: convReluMaxPoolGrad(native),
    MaxPool: pool(native, 'max'),
    AvgPool: pool(native, 'avg'),
    MaxPoolGrad: poolGrad(native, 'max'),
    AvgPoolGrad: poolGrad(native, 'avg'),
    Transpose: transpose(native),
    Softplus: unary(native, 'softplus'),
    Sigmoid: unary(native, 'sigmoid'),
    Exp: unary(native, 'exp'),
    Log: unary(native, 'log'),
    Sqrt: unary(native, 'sqrt'),
    Add: binary(native, 'add'),
    Sub: binary(native, 'sub'),
    Multiply: binary(native, 'mul'),
    RealDiv: binary(native, 'div'),
    Maximum: binary(native, 'maximum'),
    Minimum: binary(native, 'minimum'),
    Less: binary(native, 'less'),
    LessEqual: binary(native, 'lessEqual'),
    Greater: binary(native, 'greater'),
    GreaterEqual: binary(native, 'greaterEqual'),
    Select: select(native),
    Sum: sum(native),
    GatherV2: gather(native),
    [FUSED_ADAM]: adam(native),
    [GAUSSIAN_KL]: gaussianKl(native),
    [GAUSSIAN_KL_GRAD]: gaussianKlGrad(native),
    [GAUSSIAN_SAMPLE_KL]: gaussianSampleKl(native),
    [GAUSSIAN_SAMPLE_KL_GRAD]: gaussianSampleKlGrad(native),
    [DROPOUT]: dropout(native),
    [SQUARED_DISTANCE]: squaredDistance(native),
    [SQUARED_DISTANCE_GRAD]: squaredDistanceGrad(native),
    [RELU_GRAD]: binary(native, 'reluGrad'),
    [LOCSCALE_SAMPLE]: locScale(native, false),
    [NORMAL_LOCSCALE]: normalLocScale(native),
    [LOCSCALE_SAMPLE_GRAD]: locScale(native, true),
  };
}
