import { type GemmOut, gemmBlock, outputStage } from './gemm.js';
import { asJsPacked } from './pack.js';
import type { QConv2dArgs } from './types.js';
import { checkQConv2dArgs } from './validate.js';

export { convOutSize } from './validate.js';

/**
 * The reference quantised conv2d (QConv2dArgs in types.ts): im2col rows of the u8 input (padding
 * reads the input zero point), then the contract GEMM per batch element and group.
 */
export function qconv2d(args: QConv2dArgs): GemmOut {
  const geo = checkQConv2dArgs(args, asJsPacked);
  const { batch, c, h, w: wd, o, cg, kh, kw, groups, og, kg, ho, wo, packs, whole, bias, out } = geo;
  const { strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw } = geo;
  const za = geo.xZeroPoint;
  const stage = outputStage(geo.output, args.output, args.xScale, args.wScale, o);
  const hw = ho * wo;
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
      const p = packs[whole === undefined ? g : 0];
      const row = whole === undefined ? 0 : g * og;
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
        bias,
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
