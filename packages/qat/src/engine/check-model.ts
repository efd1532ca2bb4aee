import { checkQuantParams, MAX_BITS, MIN_BITS, QbnnError } from '@qbnn/core';
import { fail, int, isObject, show } from '../forms/checks.js';
import { getIntegerForm, listIntegerForms } from '../forms/registry.js';
import type { IntegerWeights } from '../forms/types.js';
import type { QuantParams } from '../spec.js';
import { convImage, convOutput, type QLayerSpec, type QOp } from './ir.js';

// Validation of a quantised model's ops (QuantizedModel's constructor runs it, so a converted
// model, a hand-built one and a loaded file are checked alike): every op kind, every
// quantisation parameter, the layer geometry against the input shape, every integer tensor
// against its parameters' range. The walk also yields the largest activation, which bounds the
// memory of a forward call (see validate-input.ts).

/** Deepest nesting of residual blocks a model may have (ResNets nest one level). */
export const MAX_RESIDUAL_NESTING = 16;
/** Largest per-example activation (elements) and largest dimension a model may have. */
export const MAX_ACTIVATION_ELEMENTS = 2 ** 28;

function pair(path: string, v: unknown, lo: number): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) fail(path, `must be a pair [h, w], got ${show(v)}`);
  return [
    int(`${path}[0]`, v[0], lo, MAX_ACTIVATION_ELEMENTS),
    int(`${path}[1]`, v[1], lo, MAX_ACTIVATION_ELEMENTS),
  ];
}

/** An activation's params: scale finite > 0, bits 2..8, zero point in [0, 2^bits - 1]. */
function checkAct(path: string, q: unknown): QuantParams {
  if (!isObject(q)) fail(path, `must be activation params { scale, zeroPoint, bits }, got ${show(q)}`);
  const bits = int(`${path}.bits`, q.bits, MIN_BITS, MAX_BITS);
  checkQuantParams(path, { scale: q.scale as number, zeroPoint: q.zeroPoint as number, bits, signed: false });
  return q as unknown as QuantParams;
}

function checkWeights(path: string, w: unknown, n: number, k: number): void {
  if (!isObject(w)) fail(path, `must be weights, got ${show(w)}`);
  if (typeof w.kind !== 'string') fail(`${path}.kind`, `must name an integer form, got ${show(w.kind)}`);
  const kind = w.kind;
  if (!listIntegerForms().includes(kind)) {
    throw new QbnnError(
      'ERR_UNKNOWN',
      `QuantizedModel: ${path}.kind '${kind}' is not a registered integer form (registered: ${listIntegerForms().join(', ')}); import the package that registers it (qbnn: --plugin)`,
    );
  }
  getIntegerForm(kind).validate?.(w as unknown as IntegerWeights, { n, k }, path);
}

interface Walk {
  /** Largest per-example activation seen, in elements. */
  max: number;
}

function size(path: string, shape: number[], walk: Walk): number[] {
  let e = 1;
  for (const d of shape) e *= d;
  if (!(e >= 1 && e <= MAX_ACTIVATION_ELEMENTS))
    fail(
      path,
      `gives an activation of [${shape}] = ${e} elements per example (limit ${MAX_ACTIVATION_ELEMENTS})`,
    );
  if (e > walk.max) walk.max = e;
  return shape;
}

function chw(path: string, shape: number[]): [number, number, number] {
  if (shape.length !== 3) fail(path, `needs a [channels, height, width] input, got [${shape}]`);
  return shape as [number, number, number];
}

function checkLayer(path: string, l: unknown, shape: number[], last: boolean, walk: Walk): number[] {
  if (!isObject(l)) fail(path, `must be a layer, got ${show(l)}`);
  if (typeof l.path !== 'string') fail(`${path}.path`, `must be a string, got ${show(l.path)}`);
  const n = int(`${path}.n`, l.n, 1, MAX_ACTIVATION_ELEMENTS);
  const k = int(`${path}.k`, l.k, 1, MAX_ACTIVATION_ELEMENTS);
  checkAct(`${path}.input`, l.input);
  if (last !== (l.output === null)) {
    fail(
      `${path}.output`,
      last ? 'must be null (the last layer returns float logits)' : 'must be activation params',
    );
  }
  if (l.output !== null) checkAct(`${path}.output`, l.output);
  if (typeof l.relu !== 'boolean') fail(`${path}.relu`, `must be a boolean, got ${show(l.relu)}`);
  if (l.dropout !== undefined) {
    if (!isObject(l.dropout)) fail(`${path}.dropout`, `must be { p, masked }, got ${show(l.dropout)}`);
    const p = l.dropout.p;
    if (typeof p !== 'number' || !(p >= 0 && p < 1))
      fail(`${path}.dropout.p`, `must be in [0, 1), got ${show(p)}`);
    checkAct(`${path}.dropout.masked`, l.dropout.masked);
  }
  let out: number[];
  if (l.op === 'linear') {
    let e = 1;
    for (const d of shape) e *= d;
    if (e !== k) fail(`${path}.k`, `= ${k} but the layer's input [${shape}] has ${e} values per example`);
    out = [n];
  } else if (l.op === 'conv2d' || l.op === 'convTranspose2d') {
    const image = convImage(shape);
    if (!image) fail(path, `needs a [channels, height, width] or [channels, length] input, got [${shape}]`);
    const [c, h, w] = image;
    if (!Array.isArray(l.wShape) || l.wShape.length !== 4)
      fail(`${path}.wShape`, `must be [O, C/groups, kh, kw]`);
    const [o, cg, kh, kw] = (l.wShape as unknown[]).map((d, i) =>
      int(`${path}.wShape[${i}]`, d, 1, MAX_ACTIVATION_ELEMENTS),
    );
    const groups = int(`${path}.groups`, l.groups ?? 1, 1, MAX_ACTIVATION_ELEMENTS);
    const stride = l.stride === undefined ? [1, 1] : pair(`${path}.stride`, l.stride, 1);
    pair(`${path}.padding`, l.padding ?? [0, 0], 0);
    const dilation = l.dilation === undefined ? [1, 1] : pair(`${path}.dilation`, l.dilation, 1);
    if (l.op === 'convTranspose2d') {
      const op = pair(`${path}.outputPadding`, l.outputPadding ?? [0, 0], 0);
      if (op.some((v, i) => v >= Math.max(stride[i], dilation[i])))
        fail(`${path}.outputPadding`, `[${op}] must be smaller than the stride or the dilation`);
    } else if (l.outputPadding !== undefined) fail(`${path}.outputPadding`, 'is for convTranspose2d only');
    if (o !== n) fail(`${path}.wShape[0]`, `= ${o} but n = ${n}`);
    if (cg * kh * kw !== k) fail(`${path}.k`, `= ${k} but wShape gives C/groups * kh * kw = ${cg * kh * kw}`);
    if (cg * groups !== c || o % groups !== 0)
      fail(`${path}.wShape`, `[${l.wShape}] with groups ${groups} does not fit an input of ${c} channels`);
    out = convOutput(l as unknown as QLayerSpec, shape);
    const [ho, wo] = out.length === 2 ? [1, out[1]] : [out[1], out[2]];
    if (!(ho >= 1 && wo >= 1)) fail(path, `gives an output of ${ho} x ${wo} from an input of ${h} x ${w}`);
  } else fail(`${path}.op`, `must be 'linear', 'conv2d' or 'convTranspose2d', got ${show(l.op)}`);
  checkWeights(`${path}.weights`, l.weights, n, k);
  return size(path, out, walk);
}

/** Checks a list of ops from a per-example input `shape`; returns the output shape. */
function checkOps(
  path: string,
  ops: unknown,
  shape: number[],
  top: boolean,
  depth: number,
  walk: Walk,
): number[] {
  if (depth > MAX_RESIDUAL_NESTING) fail(path, `nests residual blocks deeper than ${MAX_RESIDUAL_NESTING}`);
  if (!Array.isArray(ops)) fail(path, `must be an array of ops, got ${show(ops)}`);
  if (top && (ops.length === 0 || !isObject(ops[0]) || ops[0].op !== 'quantize'))
    fail(`${path}[0]`, 'must quantize the input');
  if (ops.length === 0) fail(path, 'must not be empty');
  let s = shape;
  ops.forEach((op: unknown, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(op)) fail(at, `must be an op object, got ${show(op)}`);
    const last = top && i === ops.length - 1;
    if (last && op.op !== 'layer') fail(at, 'must be a layer with float output (the last op)');
    switch (op.op) {
      case 'quantize':
        if (!top || i !== 0) fail(at, 'quantize may only be the first op');
        checkAct(`${at}.q`, op.q);
        break;
      case 'layer':
        s = checkLayer(`${at}.layer`, op.layer, s, last, walk);
        break;
      case 'relu':
        checkAct(`${at}.q`, op.q);
        break;
      case 'maxpool2d':
      case 'avgpool2d': {
        const [c, h, w] = chw(at, s);
        checkAct(`${at}.q`, op.q);
        const [kh, kw] = pair(`${at}.kernel`, op.kernel, 1);
        const [sh, sw] = pair(`${at}.stride`, op.stride, 1);
        const [ph, pw] = pair(`${at}.padding`, op.padding, 0);
        const ho = Math.floor((h + 2 * ph - kh) / sh) + 1;
        const wo = Math.floor((w + 2 * pw - kw) / sw) + 1;
        if (!(ho >= 1 && wo >= 1)) fail(at, `gives an output of ${ho} x ${wo} from an input of ${h} x ${w}`);
        s = size(at, [c, ho, wo], walk);
        break;
      }
      case 'globalavgpool2d':
        checkAct(`${at}.q`, op.q);
        s = [chw(at, s)[0]];
        break;
      case 'flatten':
        s = [s.reduce((a, b) => a * b, 1)];
        break;
      case 'lstm': {
        if (s.length !== 2) fail(at, `needs a [steps, features] input, got [${s}]`);
        const [steps, features] = s;
        if (typeof op.path !== 'string') fail(`${at}.path`, `must be a string, got ${show(op.path)}`);
        const hidden = int(`${at}.hidden`, op.hidden, 1, MAX_ACTIVATION_ELEMENTS);
        if (op.output !== 'sequence' && op.output !== 'last')
          fail(`${at}.output`, `must be 'sequence' or 'last', got ${show(op.output)}`);
        checkAct(`${at}.q`, op.q);
        // both maps: linear layers with float outputs (the gates' pre-activations), N = 4H
        for (const [name, input] of [
          ['ih', features],
          ['hh', hidden],
        ] as const) {
          const m = op[name];
          if (!isObject(m) || m.op !== 'linear') fail(`${at}.${name}.op`, `must be 'linear'`);
          const [n] = checkLayer(`${at}.${name}`, m, [input], true, walk);
          if (n !== 4 * hidden)
            fail(`${at}.${name}.n`, `= ${n} but an LSTM of hidden size ${hidden} needs ${4 * hidden}`);
        }
        s = size(at, op.output === 'last' ? [hidden] : [steps, hidden], walk);
        break;
      }
      case 'residual': {
        checkAct(`${at}.bodyQ`, op.bodyQ);
        checkAct(`${at}.shortcutQ`, op.shortcutQ);
        checkAct(`${at}.q`, op.q);
        if (typeof op.relu !== 'boolean') fail(`${at}.relu`, `must be a boolean, got ${show(op.relu)}`);
        const a = checkOps(`${at}.body`, op.body, s, false, depth + 1, walk);
        if (!Array.isArray(op.shortcut))
          fail(`${at}.shortcut`, `must be an array of ops, got ${show(op.shortcut)}`);
        const b =
          op.shortcut.length > 0 ? checkOps(`${at}.shortcut`, op.shortcut, s, false, depth + 1, walk) : s;
        if (a.length !== b.length || a.some((d, j) => d !== b[j]))
          fail(at, `adds a body of shape [${a}] to a shortcut of shape [${b}]`);
        s = a;
        break;
      }
      default:
        fail(
          `${at}.op`,
          `must be one of quantize, layer, relu, maxpool2d, avgpool2d, globalavgpool2d, flatten, residual, lstm; got ${show(op.op)}`,
        );
    }
  });
  return s;
}

/**
 * Checks a quantised model's ops against its per-example input shape (every op kind, every
 * quantisation parameter, geometry, integer tensors within their bit range, finite biases);
 * throws a QbnnError `ERR_ARG` naming the first bad field. Returns the largest per-example
 * activation in elements.
 */
export function checkQuantizedModel(ops: unknown, inputShape: unknown): { maxActivation: number } {
  if (!Array.isArray(inputShape) || inputShape.length === 0 || inputShape.length > 3)
    fail('inputShape', `must be an array of 1 to 3 dimensions, got ${show(inputShape)}`);
  const shape = inputShape.map((d, i) => int(`inputShape[${i}]`, d, 1, MAX_ACTIVATION_ELEMENTS));
  const walk: Walk = { max: 0 };
  size('inputShape', shape, walk);
  checkOps('ops', ops, shape, true, 0, walk);
  return { maxActivation: walk.max };
}

export type { QLayerSpec, QOp };
