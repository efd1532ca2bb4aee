import { QbnnError } from '@qbnn/core';
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
 * QParams from JSON, for a form's `load`: checks the shape of the record (finite positive
 * scales, integer zero points, 1 or `channels` entries, bits 2..8) and throws ERR_FORMAT naming
 * `what` otherwise.
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
  if (!o.scale.every((s) => typeof s === 'number' && Number.isFinite(s) && s > 0))
    bad('scales must be finite and > 0');
  if (!o.zeroPoint.every((z) => Number.isInteger(z) && Math.abs(z as number) <= 255))
    bad('zero points must be integers in [-255, 255]');
  if (!Number.isInteger(o.bits) || (o.bits as number) < 2 || (o.bits as number) > 8) bad('bits must be 2..8');
  if (typeof o.signed !== 'boolean') bad('signed must be a boolean');
  return {
    scale: Float64Array.from(o.scale as number[]),
    zeroPoint: Int32Array.from(o.zeroPoint as number[]),
    bits: o.bits as number,
    signed: o.signed as boolean,
    axis: typeof o.axis === 'number' ? o.axis : undefined,
  };
}
