import { checkQuantParams, QbnnError, type QuantParamsLike } from '@qbnn/core';
import type { QParams } from '../spec.js';

/** {@link QParams} as JSON (a saved model's metadata). */
export interface QParamsJson {
  scale: number[];
  zeroPoint: number[];
  bits: number;
  signed: boolean;
  axis?: number;
}

/** QParams to JSON, for a form's `save`. */
export function qparamsToJson(p: QParams): QParamsJson {
  return {
    scale: Array.from(p.scale),
    zeroPoint: Array.from(p.zeroPoint),
    bits: p.bits,
    signed: p.signed,
    ...(p.axis !== undefined ? { axis: p.axis } : {}),
  };
}

/**
 * QParams from JSON, for a form's `load`: scale and zero point arrays of 1 or `channels` entries
 * (as many of each), then core's `checkQuantParams` (bits 2..8, signed a boolean, finite scales
 * > 0, zero points inside the range of bits and signedness); throws ERR_FORMAT naming `what`.
 */
export function qparamsFromJson(j: unknown, what: string, channels: number): QParams {
  const bad = (why: string): never => {
    throw new QbnnError('ERR_FORMAT', `quantised model: ${what}: ${why}`);
  };
  if (typeof j !== 'object' || j === null) return bad('missing quantisation parameters');
  const o = j as Record<string, unknown>;
  if (!Array.isArray(o.scale) || !Array.isArray(o.zeroPoint))
    return bad('scale and zeroPoint must be arrays');
  const len = o.scale.length;
  if ((len !== 1 && len !== channels) || o.zeroPoint.length !== len) {
    bad(`expected 1 or ${channels} (scale, zero point) pairs, got ${len} and ${o.zeroPoint.length}`);
  }
  const p = { scale: o.scale, zeroPoint: o.zeroPoint, bits: o.bits, signed: o.signed } as QuantParamsLike;
  try {
    checkQuantParams('params', p, channels);
  } catch (e) {
    if (e instanceof QbnnError) bad(e.message);
    throw e;
  }
  return {
    scale: Float64Array.from(o.scale as number[]),
    zeroPoint: Int32Array.from(o.zeroPoint as number[]),
    bits: o.bits as number,
    signed: o.signed as boolean,
    axis: typeof o.axis === 'number' ? o.axis : undefined,
  };
}
