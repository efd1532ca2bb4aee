import { roundHalfEven } from '../quant/round.js';
import { qconv2d } from './conv.js';
import type { KernelProvider, QConv2dPoolArgs, QPool2dArgs } from './types.js';
import { type CheckedPool2d, checkQConv2dPoolArgs, checkQPool2dArgs } from './validate.js';

/**
 * Pools planes [planes, h, w] of `x` into `out` [planes, ho, wo] (Pool2dSpec in types.ts).
 * Windows are clipped to the input; an avg window divides by the whole kernel area.
 */
export function poolPlanes(
  x: Uint8Array,
  planes: number,
  h: number,
  w: number,
  zeroPoint: number,
  p: CheckedPool2d,
  out: Uint8Array,
): Uint8Array {
  const area = p.kh * p.kw;
  let o = 0;
  for (let pl = 0; pl < planes; pl++) {
    const base = pl * h * w;
    for (let oy = 0; oy < p.ho; oy++) {
      const y0 = Math.max(0, oy * p.strideH - p.padH);
      const y1 = Math.min(h, oy * p.strideH - p.padH + p.kh);
      for (let ox = 0; ox < p.wo; ox++) {
        const x0 = Math.max(0, ox * p.strideW - p.padW);
        const x1 = Math.min(w, ox * p.strideW - p.padW + p.kw);
        let m = 0;
        let s = 0;
        for (let y = y0; y < y1; y++) {
          for (let i = base + y * w + x0, e = base + y * w + x1; i < e; i++) {
            const v = x[i];
            if (v > m) m = v;
            s += v - zeroPoint;
          }
        }
        out[o++] = p.kind === 'max' ? m : Math.min(255, Math.max(0, roundHalfEven(s / area) + zeroPoint));
      }
    }
  }
  return out;
}

/** The reference u8 pooling (QPool2dArgs in types.ts). */
export function qpool2d(args: QPool2dArgs): Uint8Array {
  const { batch, c, h, w, zeroPoint, pool, out } = checkQPool2dArgs(args);
  return poolPlanes(args.x, batch * c, h, w, zeroPoint, pool, out);
}

/**
 * Convolution then pooling (QConv2dPoolArgs in types.ts): `provider.qconv2dPool` when it has one,
 * else `provider.qconv2d` into a temporary and `provider.qpool2d` (or the reference pooling).
 * With the reference provider (the default) this is the contract's definition.
 */
export function qconv2dPool(args: QConv2dPoolArgs, provider?: KernelProvider): Uint8Array {
  if (provider?.qconv2dPool) return provider.qconv2dPool(args);
  const geo = checkQConv2dPoolArgs(args, (p) => p);
  const conv = (provider?.qconv2d ?? qconv2d)({ ...args, out: undefined }) as Uint8Array;
  const xShape = [geo.batch, geo.o, geo.ho, geo.wo] as const;
  const pooled = { x: conv, xShape, zeroPoint: args.output.zeroPoint, pool: args.pool, out: geo.out };
  if (provider?.qpool2d) return provider.qpool2d(pooled);
  return poolPlanes(conv, geo.batch * geo.o, geo.ho, geo.wo, args.output.zeroPoint, geo.pool, geo.out);
}
