import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { paramsFromRange } from './params.js';
import type { ObserverSpec, QParams } from './spec.js';

/** Values an observer accepts: a tfjs tensor, or a flat array with its shape. */
export type Observable = tf.Tensor | { data: ArrayLike<number>; shape: readonly number[] };

function toFlat(x: Observable): { data: ArrayLike<number>; shape: readonly number[] } {
  if (x instanceof tf.Tensor) return { data: x.dataSync() as Float32Array, shape: x.shape };
  return x;
}

/**
 * An observer watches the values a tensor takes (weights once, activations over calibration
 * batches) and turns the range it saw into affine quantisation parameters for its spec.
 * Per-channel observers (spec.axis set) keep one range per index along that axis.
 */
export abstract class Observer {
  readonly spec: ObserverSpec;
  /** Per-channel (or length-1) running minima and maxima; empty before the first observation. */
  protected min: Float64Array = new Float64Array(0);
  protected max: Float64Array = new Float64Array(0);

  constructor(spec: ObserverSpec) {
    this.spec = { ...spec };
  }

  /** Whether anything was observed. */
  get observed(): boolean {
    return this.min.length > 0;
  }

  /** The range seen so far, per channel (length 1 per tensor). */
  range(): { min: Float64Array; max: Float64Array } {
    return { min: this.min.slice(), max: this.max.slice() };
  }

  /** Records one tensor's values. Non-finite values are an error. */
  observe(x: Observable): void {
    const { data, shape } = toFlat(x);
    const { min, max } = channelMinMax(data, shape, this.spec.axis);
    this.update(min, max, data, shape);
  }

  protected abstract update(
    min: Float64Array,
    max: Float64Array,
    data: ArrayLike<number>,
    shape: readonly number[],
  ): void;

  /** Clipping range the params are computed from (the raw range for min/max observers). */
  protected effectiveRange(): { min: Float64Array; max: Float64Array } {
    return { min: this.min, max: this.max };
  }

  /** Quantisation parameters for the range observed (an error before any observation). */
  calculateQParams(): QParams {
    if (!this.observed) throw new QbnnError('ERR_ARG', 'observer has seen no values');
    const { min, max } = this.effectiveRange();
    return paramsFromRange(min, max, this.spec);
  }

  /** Forgets everything observed. */
  reset(): void {
    this.min = new Float64Array(0);
    this.max = new Float64Array(0);
  }

  protected checkChannels(n: number): void {
    if (this.min.length > 0 && this.min.length !== n) {
      throw new QbnnError('ERR_SHAPE', `observer saw ${this.min.length} channels before, now ${n}`);
    }
  }
}

/** Running minimum and maximum over everything observed (torch MinMaxObserver). */
export class MinMaxObserver extends Observer {
  protected update(min: Float64Array, max: Float64Array): void {
    this.checkChannels(min.length);
    if (this.min.length === 0) {
      this.min = min;
      this.max = max;
      return;
    }
    for (let c = 0; c < min.length; c++) {
      if (min[c] < this.min[c]) this.min[c] = min[c];
      if (max[c] > this.max[c]) this.max[c] = max[c];
    }
  }
}

/**
 * Exponential moving average of each batch's minimum and maximum (torch
 * MovingAverageMinMaxObserver): `r <- r + c (batch - r)`, the first batch taken as is.
 */
export class MovingAverageMinMaxObserver extends Observer {
  readonly averagingConstant: number;
  constructor(spec: ObserverSpec, averagingConstant = 0.01) {
    super(spec);
    if (!(averagingConstant > 0 && averagingConstant <= 1)) {
      throw new QbnnError('ERR_ARG', `averagingConstant must be in (0, 1], got ${averagingConstant}`);
    }
    this.averagingConstant = averagingConstant;
  }
  protected update(min: Float64Array, max: Float64Array): void {
    this.checkChannels(min.length);
    if (this.min.length === 0) {
      this.min = min;
      this.max = max;
      return;
    }
    const k = this.averagingConstant;
    for (let c = 0; c < min.length; c++) {
      this.min[c] += k * (min[c] - this.min[c]);
      this.max[c] += k * (max[c] - this.max[c]);
    }
  }
}

/**
 * Histogram observer: keeps a fixed-bin histogram per channel over the running range (re-binned
 * when the range grows) and clips at the `lower` and `upper` percentiles, so rare outliers do not
 * stretch the scale. Percentiles are interpolated linearly inside a bin.
 */
export class HistogramObserver extends Observer {
  readonly bins: number;
  readonly lower: number;
  readonly upper: number;
  private hist: Float64Array[] = [];
  private lo: Float64Array = new Float64Array(0);
  private hi: Float64Array = new Float64Array(0);

  /**
   * @param percentile - upper percentile in (50, 100]; the lower one is `100 - percentile`
   * @param bins - histogram bins per channel
   */
  constructor(spec: ObserverSpec, percentile = 99.99, bins = 2048) {
    super(spec);
    if (!(percentile > 50 && percentile <= 100)) {
      throw new QbnnError('ERR_ARG', `percentile must be in (50, 100], got ${percentile}`);
    }
    if (!Number.isInteger(bins) || bins < 16)
      throw new QbnnError('ERR_ARG', `bins must be >= 16, got ${bins}`);
    this.bins = bins;
    this.upper = percentile / 100;
    this.lower = 1 - this.upper;
  }

  override reset(): void {
    super.reset();
    this.hist = [];
    this.lo = new Float64Array(0);
    this.hi = new Float64Array(0);
  }

  protected update(
    min: Float64Array,
    max: Float64Array,
    data: ArrayLike<number>,
    shape: readonly number[],
  ): void {
    this.checkChannels(min.length);
    const C = min.length;
    if (this.min.length === 0) {
      this.min = min.slice();
      this.max = max.slice();
      this.lo = min.slice();
      this.hi = max.slice();
      this.hist = Array.from({ length: C }, () => new Float64Array(this.bins));
    } else {
      for (let c = 0; c < C; c++) {
        const nlo = Math.min(this.lo[c], min[c]);
        const nhi = Math.max(this.hi[c], max[c]);
        if (nlo < this.lo[c] || nhi > this.hi[c]) {
          this.hist[c] = rebin(this.hist[c], this.lo[c], this.hi[c], nlo, nhi);
          this.lo[c] = nlo;
          this.hi[c] = nhi;
        }
        this.min[c] = nlo;
        this.max[c] = nhi;
      }
    }
    const { inner, channels } = layout(shape, this.spec.axis);
    const B = this.bins;
    for (let i = 0; i < data.length; i++) {
      const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
      const w = this.hi[c] - this.lo[c];
      let b = w > 0 ? Math.floor(((data[i] - this.lo[c]) / w) * B) : 0;
      if (b >= B) b = B - 1;
      if (b < 0) b = 0;
      this.hist[c][b] += 1;
    }
  }

  protected override effectiveRange(): { min: Float64Array; max: Float64Array } {
    const C = this.hist.length;
    const min = new Float64Array(C);
    const max = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      min[c] = percentileOf(this.hist[c], this.lo[c], this.hi[c], this.lower);
      max[c] = percentileOf(this.hist[c], this.lo[c], this.hi[c], this.upper);
    }
    return { min, max };
  }
}

/** The value below which a fraction `p` of the histogram's mass lies. */
function percentileOf(h: Float64Array, lo: number, hi: number, p: number): number {
  let total = 0;
  for (let i = 0; i < h.length; i++) total += h[i];
  if (total === 0 || hi <= lo) return p < 0.5 ? lo : hi;
  if (p <= 0) return lo;
  if (p >= 1) return hi;
  const target = p * total;
  const w = (hi - lo) / h.length;
  let acc = 0;
  for (let i = 0; i < h.length; i++) {
    if (acc + h[i] >= target && h[i] > 0) {
      return lo + (i + (target - acc) / h[i]) * w;
    }
    acc += h[i];
  }
  return hi;
}

/** Spreads the counts of bins over [lo, hi] into a histogram over [nlo, nhi] (uniform within a bin). */
function rebin(h: Float64Array, lo: number, hi: number, nlo: number, nhi: number): Float64Array {
  const B = h.length;
  const out = new Float64Array(B);
  const w = (hi - lo) / B;
  const nw = (nhi - nlo) / B;
  if (w === 0) {
    let total = 0;
    for (let i = 0; i < B; i++) total += h[i];
    let b = Math.floor(((lo - nlo) / nw) * 1);
    b = Math.min(B - 1, Math.max(0, b));
    out[b] = total;
    return out;
  }
  for (let i = 0; i < B; i++) {
    if (h[i] === 0) continue;
    const a = lo + i * w;
    const b = a + w;
    let j = Math.max(0, Math.floor((a - nlo) / nw));
    while (j < B) {
      const ja = nlo + j * nw;
      const jb = ja + nw;
      if (ja >= b) break;
      const overlap = Math.min(b, jb) - Math.max(a, ja);
      if (overlap > 0) out[j] += (h[i] * overlap) / w;
      j++;
    }
  }
  return out;
}

function layout(shape: readonly number[], axis: number | undefined): { inner: number; channels: number } {
  if (axis === undefined) return { inner: 1, channels: 1 };
  const ax = axis < 0 ? shape.length + axis : axis;
  if (ax < 0 || ax >= shape.length) {
    throw new QbnnError('ERR_ARG', `channel axis ${axis} out of range for shape [${shape.join(', ')}]`);
  }
  let inner = 1;
  for (let d = ax + 1; d < shape.length; d++) inner *= shape[d];
  return { inner, channels: shape[ax] };
}

/** Minimum and maximum per channel along `axis` (one value when axis is undefined). */
export function channelMinMax(
  data: ArrayLike<number>,
  shape: readonly number[],
  axis: number | undefined,
): { min: Float64Array; max: Float64Array } {
  let size = 1;
  for (const d of shape) size *= d;
  if (size !== data.length) {
    throw new QbnnError(
      'ERR_SHAPE',
      `data has ${data.length} values, shape [${shape.join(', ')}] needs ${size}`,
    );
  }
  const { inner, channels } = layout(shape, axis);
  const min = new Float64Array(channels).fill(Number.POSITIVE_INFINITY);
  const max = new Float64Array(channels).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new QbnnError('ERR_NAN', `observer: non-finite value ${v} at index ${i}`);
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    if (v < min[c]) min[c] = v;
    if (v > max[c]) max[c] = v;
  }
  if (data.length === 0) {
    min.fill(0);
    max.fill(0);
  }
  return { min, max };
}

/** Observer kinds a QConfig names. */
export type ObserverKind = 'minmax' | 'ema' | 'histogram';

/** Options of the observer factory. */
export interface ObserverOptions {
  /** EMA constant of 'ema' (default 0.01). */
  averagingConstant?: number;
  /** Upper clipping percentile of 'histogram' (default 99.99). */
  percentile?: number;
  /** Bins of 'histogram' (default 2048). */
  bins?: number;
}

/** Builds an observer of a kind for a spec. */
export function createObserver(kind: ObserverKind, spec: ObserverSpec, opts: ObserverOptions = {}): Observer {
  switch (kind) {
    case 'minmax':
      return new MinMaxObserver(spec);
    case 'ema':
      return new MovingAverageMinMaxObserver(spec, opts.averagingConstant);
    case 'histogram':
      return new HistogramObserver(spec, opts.percentile, opts.bins);
    default:
      throw new QbnnError('ERR_UNKNOWN', `unknown observer kind '${kind as string}'`);
  }
}
