import { QbnnError } from '../errors.js';
import { checkInt, checkPositiveScale } from '../quant/checks.js';
import { checkBias, checkK, type GemmOut, gemmBlock, outputBuffer, outputStage } from './gemm.js';
import { asJsPacked, type JsPackedWeights } from './pack.js';
import type { PackedWeights, QConv2dArgs } from './types.js';

/** Output size of a convolution along one axis. */
export function convOutSize(
  size: number,
  kernel: number,
  stride: number,
  pad: number,
  dilation: number,
): number {
  return Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

function pair(
  name: string,
  v: readonly [number, number] | undefined,
  dflt: number,
  min: number,
): [number, number] {
  if (v === undefined) return [dflt, dflt];
  if (!Array.isArray(v) || v.length !== 2)
    throw new QbnnError('ERR_ARG', `qconv2d: ${name} must be a pair [h, w]`);
  return [
    checkInt(`qconv2d: ${name}[0]`, v[0], min, 2 ** 31 - 1),
    checkInt(`qconv2d: ${name}[1]`, v[1], min, 2 ** 31 - 1),
  ];
}

function dims(name: string, v: readonly number[]): [number, number, number, number] {
  if (!Array.isArray(v) || v.length !== 4)
    throw new QbnnError('ERR_SHAPE', `qconv2d: ${name} must have 4 dimensions`);
  return v.map((d, i) => checkInt(`qconv2d: ${name}[${i}]`, d, 1, 2 ** 31 - 1)) as [
    number,
    number,
    number,
    number,
  ];
}

/**
 * Resolves the weight packs to one per group: either one pack per group ([O/groups, Kg] each)
 * or a single pack of all O rows (group g uses rows g*O/groups onwards).
 */
function groupPacks(w: PackedWeights | readonly PackedWeights[], groups: number, o: number, kg: number) {
  const og = o / groups;
  const list = Array.isArray(w) ? (w as readonly PackedWeights[]) : [w as PackedWeights];
  const packs: { p: JsPackedWeights; row: number }[] = [];
  if (list.length === 1 && (groups === 1 || list[0].n === o)) {
    const p = asJsPacked(list[0], 'qconv2d: w');
    if (p.n !== o || p.k !== kg) {
      throw new QbnnError(
        'ERR_SHAPE',
        `qconv2d: w is packed [${p.n}, ${p.k}], expected [${o}, ${kg}] from wShape`,
      );
    }
    for (let g = 0; g < groups; g++) packs.push({ p, row: g * og });
    return packs;
  }
  if (list.length !== groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: expected ${groups} weight packs (one per group) or one of ${o} rows, got ${list.length}`,
    );
  }
  for (let g = 0; g < groups; g++) {
    const p = asJsPacked(list[g], `qconv2d: w[${g}]`);
    if (p.n !== og || p.k !== kg) {
      throw new QbnnError(
        'ERR_SHAPE',
        `qconv2d: w[${g}] is packed [${p.n}, ${p.k}], expected [${og}, ${kg}]`,
      );
    }
    packs.push({ p, row: 0 });
  }
  return packs;
}

/**
 * The reference quantised conv2d (QConv2dArgs in types.ts): im2col rows of the u8 input (padding
 * reads the input zero point), then the contract GEMM per batch element and group.
 */
export function qconv2d(args: QConv2dArgs): GemmOut {
  if (args == null || typeof args !== 'object')
    throw new QbnnError('ERR_ARG', 'qconv2d: args must be an object');
  const [batch, c, h, wd] = dims('xShape', args.xShape);
  const [o, cg, kh, kw] = dims('wShape', args.wShape);
  const groups = checkInt('qconv2d: groups', args.groups ?? 1, 1, 2 ** 31 - 1);
  if (c !== cg * groups) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: input has ${c} channels; wShape[1] * groups = ${cg} * ${groups} = ${cg * groups}`,
    );
  }
  if (o % groups !== 0)
    throw new QbnnError('ERR_SHAPE', `qconv2d: ${o} output channels are not divisible by groups ${groups}`);
  const [sh, sw] = pair('stride', args.stride, 1, 1);
  const [ph, pw] = pair('padding', args.padding, 0, 0);
  const [dh, dw] = pair('dilation', args.dilation, 1, 1);
  if (!(args.x instanceof Uint8Array))
    throw new QbnnError('ERR_ARG', 'qconv2d: x must be a Uint8Array (u8 input)');
  const xLen = batch * c * h * wd;
  if (args.x.length !== xLen)
    throw new QbnnError('ERR_SHAPE', `qconv2d: x has length ${args.x.length}, xShape says ${xLen}`);
  checkPositiveScale('qconv2d: xScale', args.xScale);
  const za = checkInt('qconv2d: xZeroPoint', args.xZeroPoint, 0, 255);
  const ho = convOutSize(h, kh, sh, ph, dh);
  const wo = convOutSize(wd, kw, sw, pw, dw);
  if (ho < 1 || wo < 1) {
    throw new QbnnError(
      'ERR_SHAPE',
      `qconv2d: output would be ${ho} x ${wo}; the dilated kernel exceeds the padded input`,
    );
  }
  const kg = cg * kh * kw;
  checkK(kg);
  const og = o / groups;
  const packs = groupPacks(args.w, groups, o, kg);
  checkBias(args.bias, o);
  const stage = outputStage(args.output, args.xScale, args.wScale, o);
  const hw = ho * wo;
  const out = outputBuffer(stage, args.out, batch * o * hw);
  const cols = new Uint8Array(hw * kg);
  const x = args.x;
  for (let b = 0; b < batch; b++) {
    for (let g = 0; g < groups; g++) {
      // im2col: row (oh, ow), column (ci, i, j) in the weight's [C/groups, kh, kw] order.
      let col = 0;
      for (let ci = 0; ci < cg; ci++) {
        const plane = (b * c + g * cg + ci) * h * wd;
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++, col++) {
            for (let oh = 0; oh < ho; oh++) {
              const ih = oh * sh - ph + i * dh;
              const rowOk = ih >= 0 && ih < h;
              let dst = oh * wo * kg + col;
              for (let ow = 0; ow < wo; ow++, dst += kg) {
                const iw = ow * sw - pw + j * dw;
                cols[dst] = rowOk && iw >= 0 && iw < wd ? x[plane + ih * wd + iw] : za;
              }
            }
          }
        }
      }
      const { p, row } = packs[g];
      gemmBlock({
        a: cols,
        aOff: 0,
        m: hw,
        k: kg,
        aZero: za,
        w: p.data,
        wRow: row,
        n: og,
        wRowSums: p.rowSums,
        wZero: p.zeroPoint,
        chan: g * og,
        bias: args.bias,
        stage,
        out,
        outOff: (b * o + g * og) * hw,
        outRowStride: 1,
        outColStride: hw,
      });
    }
  }
  return out;
}
