import { QbnnError } from '@qbnn/core';
import type { ConvGeometry } from './conv-nd.js';

/** The height each lifted hyper-parameter takes when a 1-D kind runs as 2-D over a height of 1. */
const HEIGHT = { stride: 1, padding: 0, outputPadding: 0, dilation: 1 } as const;

/**
 * A 1-D kind's kernel size and one-number hyper-parameters as its 2-D twin's `[height, width]`
 * pairs over a height of 1; each must be a number (errors name `layer`), absent ones stay absent.
 */
export function liftToWidth(
  layer: string,
  kernelSize: number,
  p: { groups?: number },
): { kernel: [number, number]; params: Record<string, [number, number] | number | undefined> } {
  const number = (what: string, v: unknown) => {
    if (typeof v !== 'number') throw new QbnnError('ERR_ARG', `${layer} ${what} must be a number, got ${v}`);
    return v;
  };
  const params: Record<string, [number, number] | number | undefined> = { groups: p.groups };
  for (const [k, h] of Object.entries(HEIGHT)) {
    const v = (p as Record<string, unknown>)[k];
    if (v !== undefined) params[k] = [h, number(k, v)];
  }
  return { kernel: [1, number('kernelSize', kernelSize)], params };
}

/** The width axis of a 2-D geometry over a height of 1: what its 1-D kind reports. */
export function widthGeometry<P>(
  g: ConvGeometry,
  kernelSize: number,
): { kernelSize: number; params: P; weightShape: [number, number, number]; fanIn: number } {
  const params = Object.fromEntries(
    Object.entries(g.params).map(([k, v]) => [k, Array.isArray(v) ? v[1] : v]),
  ) as P;
  return {
    kernelSize,
    params,
    weightShape: [g.weightShape[0], g.weightShape[1], kernelSize],
    fanIn: g.fanIn,
  };
}
