// Kernels that tfjs-backend-wasm 4.22 lacks, gets wrong or runs slowly on the training path,
// registered for the 'wasm' backend (measured with scripts/bench-backend.mjs).
//
// Strategies:
// - Native: JS loops over typed-array views of the wasm heap (no copies), or, for
//   Conv2DBackpropFilter, an im2col in JS then wasm's own BatchMatMul. Used for every kernel on
//   the training path, because tfjs-backend-cpu's versions are very slow: its
//   Conv2DBackpropFilter takes ~17 s where the im2col path takes ~8 ms (3x3, 32 -> 64 channels,
//   8x14x14 batch), and its UnsortedSegmentSum costs a full pass over the data per segment.
// - Wrapping wasm's own kernels: matmuls with a transpose flag, Conv2DBackpropInput through Conv2D.
// - Delegation: run tfjs-backend-cpu's own kernel on a private CPU backend instance. The inputs are
//   copied out of the wasm heap, the cpu kernel (looked up in tfjs's kernel registry, so it is
//   exactly the implementation tfjs ships) runs, and its outputs are copied back into the heap.
//   Correct by construction; used for the rare kernels (Einsum, NCHW filter gradients).

import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { QbnnError } from '../errors.js';

type TensorInfo = tf.TensorInfo;
type NamedAttrMap = tf.NamedAttrMap;

/**
 * Kernels delegated to tfjs-backend-cpu when the wasm backend lacks them. Chosen from the kernels
 * tfjs-backend-cpu 4.22 registers and tfjs-backend-wasm 4.22 does not: every one on real-valued
 * tensors. Left out: Complex, ComplexAbs, FFT, IFFT, Real, Imag (the wasm backend cannot hold
 * complex64 data), Draw (canvas), StaticRegexReplace (strings), RaggedGather, RaggedRange and
 * RaggedTensorToTensor (not used for training).
 */
export const DELEGATED_KERNELS = ['Einsum'] as const;

/** Kernels wasm lacks, implemented here natively (see the file's head). */
export const NATIVE_KERNELS = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
] as const;

/**
 * Kernels tfjs-backend-wasm 4.22 has but gets wrong, replaced by a native implementation.
 * MaxPoolGrad: for some shapes (e.g. x of shape [1, 6, 4, 1], 2x2 pool, stride 2) it drops the
 * gradient of whole pooling windows (found by comparing with tfjs-backend-cpu and finite
 * differences; see test/backend-ops.test.ts).
 * Identity: wasm's copies the tensor (one copy per gradient pass-through and clone, ~10% of a
 * training step); tfjs data is immutable, so qbnn's shares the buffer by reference count, as
 * tfjs-backend-cpu's Identity and wasm's own Reshape do.
 */
export const REPLACED_KERNELS = ['MaxPoolGrad', 'Identity'] as const;

/**
 * Wasm kernels wrapped so that a transposed operand is first transposed explicitly (wasm
 * Transpose kernel) and the product runs untransposed: wasm's BatchMatMul is ~10x slower with
 * transposeA or transposeB set (0.7 against 7-9 GFLOPS here), and tfjs-core's MatMul gradient
 * always sets one of them (dA = dy B^T, dB = A^T dy).
 */
export const UNTRANSPOSED_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;

/**
 * Wasm kernels qbnn computes through a faster wasm kernel, keeping the original for the cases it
 * does not cover. Conv2DBackpropInput (NHWC): wasm's runs ~30x slower than its Conv2D forward with
 * the same FLOPs; qbnn builds the stride-dilated, padded dy in JS and runs wasm's Conv2D with the
 * flipped filter.
 */
export const REROUTED_KERNELS = ['Conv2DBackpropInput'] as const;

/**
 * Kernels whose output is piecewise constant in their inputs (comparisons, logic) and which
 * tfjs-core gives no gradient, so that any use inside a differentiated function, e.g. the mask
 * `where(greater(x, 0), ...)`, throws "gradient function not found". Their gradient is zero almost
 * everywhere; tfjs-core itself registers exactly that for GreaterEqual.
 */
export const ZERO_GRADIENT_KERNELS = [
  'Equal',
  'NotEqual',
  'Greater',
  'Less',
  'LessEqual',
  'LogicalAnd',
  'LogicalOr',
  'LogicalXor',
  'BitwiseAnd',
  'LogicalNot',
  'All',
  'Any',
] as const;

/** Input names of each {@link ZERO_GRADIENT_KERNELS} kernel, as tfjs-core's ops name them. */
function inputNamesOf(kernel: string): string[] {
  return kernel === 'LogicalNot' || kernel === 'All' || kernel === 'Any' ? ['x'] : ['a', 'b'];
}

let privateCpu: MathBackendCPU | null = null;

/** A CPU backend owned by qbnn, not registered with the engine: only a data store for kernels. */
function cpuBackend(): MathBackendCPU {
  if (privateCpu === null) {
    privateCpu = new MathBackendCPU();
    // tfjs-backend-cpu logs a "use tfjs-node" hint on first write in Node; it does not apply here.
    (privateCpu as unknown as { firstUse: boolean }).firstUse = false;
  }
  return privateCpu;
}

function asWasm(backend: unknown, kernel: string): BackendWasm {
  const b = backend as Partial<BackendWasm>;
  if (typeof b.readSync !== 'function' || typeof b.makeOutput !== 'function') {
    throw new QbnnError(
      'ERR_BACKEND',
      `kernel ${kernel}: called with a backend that is not tfjs-backend-wasm`,
    );
  }
  return backend as BackendWasm;
}

/** A wasm kernel that copies its inputs to a private CPU backend and runs tfjs-backend-cpu's kernel. */
function delegatingKernel(kernelName: string): tf.KernelConfig {
  const cpuKernel = tf.getKernel(kernelName, 'cpu');
  if (cpuKernel === undefined) {
    throw new QbnnError(
      'ERR_BACKEND',
      `cannot add wasm kernel ${kernelName}: tfjs-backend-cpu registers no such kernel to delegate to`,
    );
  }
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = asWasm(backend, kernelName);
      const cpu = cpuBackend();
      const written: object[] = [];
      const toCpu = (info: TensorInfo): TensorInfo => {
        const values = wasm.readSync(info.dataId) as tf.backend_util.BackendValues;
        const dataId = cpu.write(values, info.shape, info.dtype);
        written.push(dataId);
        return { dataId, shape: info.shape, dtype: info.dtype };
      };
      try {
        // Most kernels take named inputs; a few (Einsum, Concat...) take an array.
        const cpuInputs = Array.isArray(inputs)
          ? (inputs as TensorInfo[]).map(toCpu)
          : Object.fromEntries(
              Object.entries(inputs)
                .filter((e): e is [string, TensorInfo] => e[1] != null)
                .map(([name, info]) => [name, toCpu(info)]),
            );
        const out = cpuKernel.kernelFunc({
          inputs: cpuInputs as tf.NamedTensorInfoMap,
          backend: cpu,
          attrs: attrs as NamedAttrMap,
        });
        const outs = Array.isArray(out) ? out : [out];
        const results = outs.map((o) => {
          const values = cpu.readSync(o.dataId) as tf.backend_util.BackendValues;
          cpu.disposeData(o.dataId, true);
          return wasm.makeOutput(o.shape, o.dtype, undefined, values);
        });
        return Array.isArray(out) ? results : results[0];
      } finally {
        for (const id of written) cpu.disposeData(id, true);
      }
    },
  };
}

/**
 * Conv2DBackpropFilter on wasm: dW[kh, kw, ci, co] = sum over (b, oh, ow) of
 * x[b, oh*sh + kh*dh - padTop, ow*sw + kw*dw - padLeft, ci] * dy[b, oh, ow, co].
 * The transposed patches matrix Pt[(kh, kw, ci), (b, oh, ow)] is built in JS (zeros where the window
 * falls in the padding), then dW = Pt dy by the wasm BatchMatMul kernel.
 */
function conv2DBackpropFilterKernel(): tf.KernelConfig {
  const kernelName = 'Conv2DBackpropFilter';
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = asWasm(backend, kernelName);
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
        strides: [number, number] | number;
        pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
        dataFormat: 'NHWC' | 'NCHW';
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
        filterShape: [number, number, number, number];
      };
      if (dataFormat === 'NCHW') {
        // Delegate the rare channels-first layout rather than duplicate the indexing.
        return delegatingKernel(kernelName).kernelFunc({ inputs, backend, attrs });
      }
      const conv = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
        false,
        'channelsLast',
      );
      const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = conv;
      const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = conv;
      const { dilationHeight: dh, dilationWidth: dw } = conv;
      const padTop = conv.padInfo.top;
      const padLeft = conv.padInfo.left;
      if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
        throw new QbnnError(
          'ERR_BACKEND',
          `Conv2DBackpropFilter on wasm needs float32 x and dy, got ${x.dtype}, ${dy.dtype}`,
        );
      }
      const rows = batchSize * outHeight * outWidth;
      const cols = fh * fw * inChannels;
      // Transposed patches Pt[(kh, kw, ci), (b, oh, ow)], written straight into the wasm heap.
      // (Pt dy runs on wasm's untransposed matmul path, ~7x faster here than P^T dy with transposeA.)
      const a = wasm.makeOutput([1, cols, rows], 'float32');
      // Heap views are taken after the allocation (which may grow, and so detach, the heap).
      const pt = wasm.typedArrayFromHeap(a) as Float32Array;
      const xv = wasm.typedArrayFromHeap(x) as Float32Array;
      pt.fill(0);
      const imageSize = inHeight * inWidth * inChannels;
      for (let kh = 0; kh < fh; kh++) {
        for (let kw = 0; kw < fw; kw++) {
          for (let ci = 0; ci < inChannels; ci++) {
            const colBase = ((kh * fw + kw) * inChannels + ci) * rows;
            let r = 0;
            for (let b = 0; b < batchSize; b++) {
              const xb = b * imageSize + ci;
              for (let oh = 0; oh < outHeight; oh++) {
                const ih = oh * sh + kh * dh - padTop;
                if (ih < 0 || ih >= inHeight) {
                  r += outWidth;
                  continue;
                }
                const xRow = xb + ih * inWidth * inChannels;
                for (let ow = 0; ow < outWidth; ow++, r++) {
                  const iw = ow * sw + kw * dw - padLeft;
                  if (iw >= 0 && iw < inWidth) pt[colBase + r] = xv[xRow + iw * inChannels];
                }
              }
            }
          }
        }
      }
      const dy3: TensorInfo = { dataId: dy.dataId, shape: [1, rows, outChannels], dtype: dy.dtype };
      const matMul = tf.getKernel('BatchMatMul', 'wasm');
      if (matMul === undefined) {
        wasm.disposeData(a.dataId);
        throw new QbnnError('ERR_BACKEND', 'Conv2DBackpropFilter on wasm needs the wasm BatchMatMul kernel');
      }
      let prod: TensorInfo;
      try {
        prod = matMul.kernelFunc({
          inputs: { a, b: dy3 },
          backend: wasm,
          attrs: { transposeA: false, transposeB: false },
        }) as TensorInfo;
      } finally {
        wasm.disposeData(a.dataId);
      }
      // The product [1, cols, outChannels] is already dW laid out as [fh, fw, inChannels, outChannels]:
      // hand back the same memory with the filter shape, as the wasm Reshape kernel does.
      return { dataId: prod.dataId, shape: [fh, fw, inChannels, outChannels], dtype: 'float32' };
    },
  };
}

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

function float32Of(kernel: string, ...infos: TensorInfo[]): void {
  for (const t of infos) {
    if (t.dtype !== 'float32')
      throw new QbnnError('ERR_BACKEND', `${kernel} on wasm: expected float32, got ${t.dtype}`);
  }
}

/**
 * Calls `tap(dyBase, xBase, wBase)` for every (batch, output pixel, kernel tap) of a depthwise
 * convolution whose input pixel lies inside the unpadded input (NHWC offsets of the dy pixel, the
 * x pixel and the filter tap; channel c, multiplier q sit at `+ c * M + q`, `+ c`, `+ c * M + q`).
 * Both depthwise backprops are this walk with a different inner loop.
 */
function forEachDepthwiseTap(
  ci: tf.backend_util.Conv2DInfo,
  tap: (dyBase: number, xBase: number, wBase: number) => void,
): void {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = ci;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = ci;
  const { dilationHeight: dh, dilationWidth: dw, outChannels: oc } = ci;
  const m = oc / c;
  const top = ci.padInfo.top;
  const left = ci.padInfo.left;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const dyBase = ((b * oh + i) * ow + j) * oc;
        for (let kh = 0; kh < fh; kh++) {
          const ih = i * sh + kh * dh - top;
          if (ih < 0 || ih >= h) continue;
          for (let kw = 0; kw < fw; kw++) {
            const iw = j * sw + kw * dw - left;
            if (iw < 0 || iw >= w) continue;
            tap(dyBase, ((b * h + ih) * w + iw) * c, (kh * fw + kw) * c * m);
          }
        }
      }
    }
  }
}

/**
 * DepthwiseConv2dNativeBackpropFilter: dW[kh, kw, c, m] = sum over (b, oh, ow) of
 * x[b, oh*sh + kh*dh - top, ow*sw + kw*dw - left, c] * dy[b, oh, ow, c*M + m].
 */
function depthwiseBackpropFilter({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const name = 'DepthwiseConv2dNativeBackpropFilter';
  const wasm = asWasm(backend, name);
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dilations, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: Pad;
    dilations: [number, number] | number;
    dimRoundingMode: Rounding;
    filterShape: [number, number, number, number];
  };
  float32Of(name, x, dy);
  const ci = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const { inChannels: c, filterHeight: fh, filterWidth: fw } = ci;
  const m = ci.outChannels / c;
  const out = wasm.makeOutput(filterShape, 'float32');
  const dwv = wasm.typedArrayFromHeap(out) as Float32Array;
  const xv = wasm.typedArrayFromHeap(x) as Float32Array;
  const dyv = wasm.typedArrayFromHeap(dy) as Float32Array;
  const acc = new Float64Array(fh * fw * c * m);
  forEachDepthwiseTap(ci, (dyBase, xBase, wBase) => {
    for (let ch = 0; ch < c; ch++) {
      const xval = xv[xBase + ch];
      for (let q = 0; q < m; q++) acc[wBase + ch * m + q] += xval * dyv[dyBase + ch * m + q];
    }
  });
  dwv.set(acc);
  return out;
}

/**
 * DepthwiseConv2dNativeBackpropInput: dx[b, ih, iw, c] = sum of dy[b, oh, ow, c*M + m] * W[kh, kw, c, m]
 * over the (oh, ow, kh, kw, m) with ih = oh*sh + kh*dh - top and iw = ow*sw + kw*dw - left.
 */
function depthwiseBackpropInput({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const name = 'DepthwiseConv2dNativeBackpropInput';
  const wasm = asWasm(backend, name);
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dilations, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: Pad;
    dilations: [number, number] | number;
    dimRoundingMode: Rounding;
    inputShape: [number, number, number, number];
  };
  float32Of(name, dy, filter);
  const ci = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c } = ci;
  const m = ci.outChannels / c;
  const out = wasm.makeOutput(inputShape, 'float32');
  const dxv = wasm.typedArrayFromHeap(out) as Float32Array;
  const dyv = wasm.typedArrayFromHeap(dy) as Float32Array;
  const wv = wasm.typedArrayFromHeap(filter) as Float32Array;
  const acc = new Float64Array(n * h * w * c);
  forEachDepthwiseTap(ci, (dyBase, xBase, wBase) => {
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let q = 0; q < m; q++) sum += dyv[dyBase + ch * m + q] * wv[wBase + ch * m + q];
      acc[xBase + ch] += sum;
    }
  });
  dxv.set(acc);
  return out;
}

/**
 * UnsortedSegmentSum: out[s, ...] = sum of x[i, ...] over the i with segmentIds[i] = s. segmentIds
 * indexes the leading dimensions of x (its shape is a prefix of x's); ids outside
 * [0, numSegments) are dropped, as TensorFlow does.
 */
function unsortedSegmentSum({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const name = 'UnsortedSegmentSum';
  const wasm = asWasm(backend, name);
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new QbnnError('ERR_BACKEND', `${name} on wasm: expected float32 or int32 x, got ${x.dtype}`);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new QbnnError('ERR_BACKEND', `${name} on wasm: segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  const rows = tf.util.sizeFromShape(segmentIds.shape);
  const inner = rows === 0 ? 0 : tf.util.sizeFromShape(x.shape) / rows;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = wasm.makeOutput(outShape, x.dtype);
  const o = wasm.typedArrayFromHeap(out);
  const xv = wasm.typedArrayFromHeap(x);
  const ids = wasm.typedArrayFromHeap(segmentIds) as Int32Array;
  if (x.dtype === 'float32') {
    const acc = new Float64Array(numSegments * inner);
    for (let r = 0; r < rows; r++) {
      const s = ids[r];
      if (s < 0 || s >= numSegments) continue;
      const src = r * inner;
      const dst = s * inner;
      for (let k = 0; k < inner; k++) acc[dst + k] += xv[src + k];
    }
    o.set(acc);
  } else {
    o.fill(0);
    for (let r = 0; r < rows; r++) {
      const s = ids[r];
      if (s < 0 || s >= numSegments) continue;
      for (let k = 0; k < inner; k++) o[s * inner + k] = (o[s * inner + k] + xv[r * inner + k]) | 0;
    }
  }
  return out;
}

/**
 * MaxPoolGrad: dy of each pooling window goes to the window's first maximum in row-major order
 * (strictly greater comparison, as tfjs-backend-cpu); a window with no finite maximum gets none.
 */
function maxPoolGrad({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const name = 'MaxPoolGrad';
  const wasm = asWasm(backend, name);
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: [number, number] | number;
    strides: [number, number] | number;
    pad: Pad;
    dimRoundingMode: Rounding;
  };
  float32Of(name, dy, input);
  const pi = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = pi;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, strideHeight: sh, strideWidth: sw } = pi;
  const top = pi.padInfo.top;
  const left = pi.padInfo.left;
  const out = wasm.makeOutput(input.shape, 'float32');
  const dxv = wasm.typedArrayFromHeap(out) as Float32Array;
  const xv = wasm.typedArrayFromHeap(input) as Float32Array;
  const dyv = wasm.typedArrayFromHeap(dy) as Float32Array;
  const acc = new Float64Array(dxv.length);
  // Channels innermost: each window position is one contiguous run of c values.
  const best = new Float64Array(c);
  const at = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const r0 = Math.max(0, i * sh - top);
      const r1 = Math.min(h, i * sh - top + fh);
      for (let j = 0; j < ow; j++) {
        const c0 = Math.max(0, j * sw - left);
        const c1 = Math.min(w, j * sw - left + fw);
        best.fill(Number.NEGATIVE_INFINITY);
        at.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let q = c0; q < c1; q++) {
            const base = ((b * h + r) * w + q) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = xv[base + ch];
              if (v > best[ch]) {
                best[ch] = v;
                at[ch] = base + ch;
              }
            }
          }
        }
        const dyBase = ((b * oh + i) * ow + j) * c;
        for (let ch = 0; ch < c; ch++) if (at[ch] >= 0) acc[at[ch]] += dyv[dyBase + ch];
      }
    }
  }
  dxv.set(acc);
  return out;
}

/** Identity without a copy: the output shares x's buffer (reference counted). */
function identity({ inputs, backend }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const wasm = asWasm(backend, 'Identity');
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return wasm.makeOutput(x.shape, x.dtype, undefined, wasm.readSync(x.dataId));
  wasm.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Wraps a wasm matmul kernel (BatchMatMul, _FusedMatMul): see {@link UNTRANSPOSED_KERNELS}. */
function untransposing(original: tf.KernelConfig): tf.KernelConfig {
  return {
    ...original,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as { transposeA?: boolean; transposeB?: boolean };
      if (!transposeA && !transposeB) return original.kernelFunc({ inputs, backend, attrs });
      const wasm = asWasm(backend, original.kernelName);
      const transpose = tf.getKernel('Transpose', 'wasm');
      if (transpose === undefined) return original.kernelFunc({ inputs, backend, attrs });
      const temps: TensorInfo[] = [];
      const transposed = (info: TensorInfo): TensorInfo => {
        const rank = info.shape.length;
        const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
        const out = transpose.kernelFunc({ inputs: { x: info }, backend, attrs: { perm } }) as TensorInfo;
        temps.push(out);
        return out;
      };
      const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
      try {
        return original.kernelFunc({
          inputs: { ...inputs, a: transposeA ? transposed(a) : a, b: transposeB ? transposed(b) : b },
          backend,
          attrs: { ...attrs, transposeA: false, transposeB: false },
        });
      } finally {
        for (const t of temps) wasm.disposeData(t.dataId);
      }
    },
  };
}

/**
 * Conv2DBackpropInput (NHWC) through wasm's Conv2D: with dyd the output gradient spread out by
 * the strides and shifted by the padding, dydPad[b, t, u, co] = dy[b, (t - pl) / sh, (u - pw) / sw, co]
 * where those are integers in range (zero elsewhere), pl = fh - 1 - top and pw = fw - 1 - left,
 * dx = validConv(dydPad, Wr) with Wr[j, k, co, ci] = W[fh-1-j, fw-1-k, ci, co].
 */
function conv2DBackpropInputViaConv(original: tf.KernelConfig): tf.KernelConfig {
  return {
    ...original,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as {
        strides: [number, number] | number;
        pad: Pad;
        dataFormat: 'NHWC' | 'NCHW';
        dimRoundingMode: Rounding;
        inputShape: [number, number, number, number];
      };
      const conv2d = tf.getKernel('Conv2D', 'wasm');
      if (
        dataFormat === 'NCHW' ||
        dy.dtype !== 'float32' ||
        filter.dtype !== 'float32' ||
        conv2d === undefined
      ) {
        return original.kernelFunc({ inputs, backend, attrs });
      }
      const wasm = asWasm(backend, 'Conv2DBackpropInput');
      const ci = tf.backend_util.computeConv2DInfo(
        inputShape,
        filter.shape as [number, number, number, number],
        strides,
        1,
        pad,
        dimRoundingMode,
        false,
        'channelsLast',
      );
      const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outHeight: oh, outWidth: ow } = ci;
      const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, outChannels: cout } = ci;
      const pl = fh - 1 - ci.padInfo.top;
      const pw = fw - 1 - ci.padInfo.left;
      const ph = h + fh - 1;
      const pwid = w + fw - 1;
      const padded = wasm.makeOutput([n, ph, pwid, cout], 'float32');
      const flipped = wasm.makeOutput([fh, fw, cout, cin], 'float32');
      // Views after both allocations (an allocation may grow, and so detach, the heap).
      const pv = wasm.typedArrayFromHeap(padded) as Float32Array;
      const fv = wasm.typedArrayFromHeap(flipped) as Float32Array;
      const dyv = wasm.typedArrayFromHeap(dy) as Float32Array;
      const wv = wasm.typedArrayFromHeap(filter) as Float32Array;
      pv.fill(0);
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < oh; i++) {
          const t = i * sh + pl;
          if (t < 0 || t >= ph) continue;
          for (let j = 0; j < ow; j++) {
            const u = j * sw + pw;
            if (u < 0 || u >= pwid) continue;
            const src = ((b * oh + i) * ow + j) * cout;
            pv.set(dyv.subarray(src, src + cout), ((b * ph + t) * pwid + u) * cout);
          }
        }
      }
      for (let kh = 0; kh < fh; kh++)
        for (let kw = 0; kw < fw; kw++)
          for (let c = 0; c < cin; c++)
            for (let o = 0; o < cout; o++)
              fv[(((fh - 1 - kh) * fw + (fw - 1 - kw)) * cout + o) * cin + c] =
                wv[((kh * fw + kw) * cin + c) * cout + o];
      try {
        return conv2d.kernelFunc({
          inputs: { x: padded, filter: flipped },
          backend,
          attrs: { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] },
        });
      } finally {
        wasm.disposeData(padded.dataId);
        wasm.disposeData(flipped.dataId);
      }
    },
  };
}

/** The native kernel functions, by kernel name. */
const nativeKernels: Record<
  (typeof NATIVE_KERNELS)[number] | (typeof REPLACED_KERNELS)[number],
  tf.KernelFunc
> = {
  Conv2DBackpropFilter: conv2DBackpropFilterKernel().kernelFunc,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  UnsortedSegmentSum: unsortedSegmentSum,
  MaxPoolGrad: maxPoolGrad,
  Identity: identity,
};

/** What {@link registerWasmTrainingSupport} changed. */
export interface WasmTrainingSupport {
  kernelsAdded: string[];
  kernelsReplaced: string[];
  gradientsAdded: string[];
}

const qbnnKernels = new WeakSet<tf.KernelFunc>();

function register(config: tf.KernelConfig): void {
  qbnnKernels.add(config.kernelFunc);
  tf.registerKernel(config);
}

/**
 * Registers, for the 'wasm' backend, every kernel of {@link NATIVE_KERNELS} and
 * {@link DELEGATED_KERNELS} that no one has registered yet, replaces {@link REPLACED_KERNELS},
 * and registers zero gradients for {@link ZERO_GRADIENT_KERNELS} that have none. Must run before
 * the wasm backend is made active (kernel setup functions run on activation).
 */
export function registerWasmTrainingSupport(): WasmTrainingSupport {
  const kernelsAdded: string[] = [];
  const kernelsReplaced: string[] = [];
  const gradientsAdded: string[] = [];
  for (const name of NATIVE_KERNELS) {
    if (tf.getKernel(name, 'wasm') !== undefined) continue;
    register({ kernelName: name, backendName: 'wasm', kernelFunc: nativeKernels[name] });
    kernelsAdded.push(name);
  }
  for (const name of DELEGATED_KERNELS) {
    if (tf.getKernel(name, 'wasm') !== undefined) continue;
    register(delegatingKernel(name));
    kernelsAdded.push(name);
  }
  for (const name of REPLACED_KERNELS) {
    const existing = tf.getKernel(name, 'wasm');
    if (existing !== undefined && qbnnKernels.has(existing.kernelFunc)) continue;
    if (existing !== undefined) tf.unregisterKernel(name, 'wasm');
    register({ kernelName: name, backendName: 'wasm', kernelFunc: nativeKernels[name] });
    kernelsReplaced.push(name);
  }
  for (const name of UNTRANSPOSED_KERNELS) {
    const existing = tf.getKernel(name, 'wasm');
    if (existing === undefined || qbnnKernels.has(existing.kernelFunc)) continue;
    tf.unregisterKernel(name, 'wasm');
    register(untransposing(existing));
    kernelsReplaced.push(name);
  }
  for (const name of REROUTED_KERNELS) {
    const existing = tf.getKernel(name, 'wasm');
    if (existing === undefined || qbnnKernels.has(existing.kernelFunc)) continue;
    tf.unregisterKernel(name, 'wasm');
    register(conv2DBackpropInputViaConv(existing));
    kernelsReplaced.push(name);
  }
  for (const name of ZERO_GRADIENT_KERNELS) {
    if (tf.getGradient(name) !== undefined) continue;
    const inputNames = inputNamesOf(name);
    tf.registerGradient({
      kernelName: name,
      inputsToSave: inputNames,
      gradFunc: (_dy, saved) =>
        Object.fromEntries(inputNames.map((input, i) => [input, () => tf.zerosLike(saved[i])])),
    });
    gradientsAdded.push(name);
  }
  return { kernelsAdded, kernelsReplaced, gradientsAdded };
}
