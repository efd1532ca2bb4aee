import { type Conv2dParams, conv2d, linear } from '@qbnn/nn';
import type { LayerOp } from './types.js';

/** The linear op of @qbnn/nn: `x [N, in]`, weight `[out, in]`, bias `[out]`. */
export function linearOp(): LayerOp {
  return { kind: 'linear', apply: (x, w, b) => linear(x, w, b) };
}

/** The 2-D convolution of @qbnn/nn (NCHW, weight `[out, in/groups, kh, kw]`) with fixed hyper-parameters. */
export function conv2dOp(params: Conv2dParams): LayerOp {
  const p = { ...params };
  return { kind: 'conv2d', apply: (x, w, b) => conv2d(x, w, b, p) };
}
