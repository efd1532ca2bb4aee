import { QbnnError, Rng } from '@qbnn/core';
import type { ImageSet } from './types.js';
import { checkInt, checkNumber } from './util.js';

/** The dataset shifts of the paper (Ferianc et al. 2021), plus additive Gaussian noise. */
export type ShiftKind = 'rotation' | 'brightness' | 'shift' | 'noise';

/**
 * Intensity of each shift at levels 1 to 5 (index 0 to 4): rotation in degrees, brightness as a
 * multiplicative factor, horizontal shift as a fraction of the width, noise as a standard
 * deviation in pixel units. The first three are the paper's; the noise levels are qbnn's.
 */
export const SHIFT_LEVELS: Readonly<Record<ShiftKind, readonly number[]>> = {
  rotation: [15, 30, 45, 60, 75],
  brightness: [1.5, 2, 2.5, 3, 3.5],
  shift: [0.1, 0.2, 0.3, 0.4, 0.5],
  noise: [0.1, 0.2, 0.3, 0.4, 0.5],
};

/** How a source position between pixels is read. */
export type Interpolation = 'nearest' | 'bilinear';

function snap(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - r) < 1e-12 ? r : v;
}

/**
 * Rotates one H x W plane by `degrees` counter-clockwise (as seen with row 0 at the top) about
 * its centre ((W - 1) / 2, (H - 1) / 2), by inverse mapping: output pixel (x, y) at offset
 * (dx, dy) from the centre reads the source at (cx + cos t dx - sin t dy, cy + sin t dx + cos t dy).
 * Outside the source is 0 (zero fill).
 * - `nearest`: the source pixel at (floor(sx + 0.5), floor(sy + 0.5)); what the paper used.
 * - `bilinear`: the 2x2 neighbours weighted by (1 - fx)(1 - fy), fx(1 - fy), (1 - fx)fy, fx fy,
 *   neighbours outside the image counting as 0.
 * Multiples of 90 degrees permute pixels exactly (cos and sin are snapped to integers).
 */
export function rotatePlane(
  src: Float32Array,
  h: number,
  w: number,
  degrees: number,
  interpolation: Interpolation = 'nearest',
  out = new Float32Array(h * w),
): Float32Array {
  checkPlane(src, h, w, out);
  const t = (checkNumber('rotatePlane: degrees', degrees) * Math.PI) / 180;
  const c = snap(Math.cos(t));
  const s = snap(Math.sin(t));
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const at = (x: number, y: number): number => (x >= 0 && x < w && y >= 0 && y < h ? src[y * w + x] : 0);
  for (let y = 0; y < h; y++) {
    const dy = y - cy;
    for (let x = 0; x < w; x++) {
      const dx = x - cx;
      const sx = cx + c * dx - s * dy;
      const sy = cy + s * dx + c * dy;
      if (interpolation === 'nearest') {
        out[y * w + x] = at(Math.floor(sx + 0.5), Math.floor(sy + 0.5));
      } else {
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        out[y * w + x] =
          (1 - fx) * (1 - fy) * at(x0, y0) +
          fx * (1 - fy) * at(x0 + 1, y0) +
          (1 - fx) * fy * at(x0, y0 + 1) +
          fx * fy * at(x0 + 1, y0 + 1);
      }
    }
  }
  return out;
}

/** Multiplies every value by `factor` and clips to [0, 1] (brightness of a [0, 1] image). */
export function scaleBrightness(
  src: Float32Array,
  factor: number,
  out = new Float32Array(src.length),
): Float32Array {
  checkNumber('scaleBrightness: factor', factor, 0);
  if (out.length !== src.length)
    throw new QbnnError('ERR_SHAPE', 'scaleBrightness: out length differs from src');
  for (let i = 0; i < src.length; i++) out[i] = Math.min(1, Math.max(0, src[i] * factor));
  return out;
}

/**
 * Shifts one H x W plane by `pixels` columns, to the right when positive: out[y][x] =
 * src[y][x - pixels], 0 where that column is outside the image. Integer shifts need no interpolation.
 */
export function shiftPlane(
  src: Float32Array,
  h: number,
  w: number,
  pixels: number,
  out = new Float32Array(h * w),
): Float32Array {
  checkPlane(src, h, w, out);
  checkInt('shiftPlane: pixels', pixels, -Number.MAX_SAFE_INTEGER);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = x - pixels;
      out[y * w + x] = sx >= 0 && sx < w ? src[y * w + sx] : 0;
    }
  }
  return out;
}

/** Adds `std * N(0, 1)` noise (from `rng.normal`) to every value and clips to [0, 1]. */
export function addGaussianNoise(
  src: Float32Array,
  std: number,
  rng: Rng,
  out = new Float32Array(src.length),
): Float32Array {
  checkNumber('addGaussianNoise: std', std, 0);
  if (out.length !== src.length)
    throw new QbnnError('ERR_SHAPE', 'addGaussianNoise: out length differs from src');
  const z = rng.normal(src.length);
  for (let i = 0; i < src.length; i++) out[i] = Math.min(1, Math.max(0, src[i] + std * z[i]));
  return out;
}

/** Round half to even, as Python's round() used by the paper's shift. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * How the intensity varies between images.
 * - `fixed` (default, the paper): every image gets exactly the level's value: rotation by +L
 *   degrees, brightness factor L, shift right by roundHalfEven(L * W) pixels.
 * - `random-sign`: rotation or shift direction drawn per image (+L or -L); not for brightness.
 * - `uniform`: drawn per image uniformly: angle in [-L, L], brightness factor in
 *   [max(0, 1 - L), 1 + L] (torchvision's ColorJitter(L)), shift fraction in [-L, L].
 * Noise is random whatever the mode (std = L).
 */
export type ShiftSampling = 'fixed' | 'random-sign' | 'uniform';

/** Options of {@link applyShift}. */
export interface ShiftOptions {
  kind: ShiftKind;
  /** Intensity level 1 to 5 of {@link SHIFT_LEVELS}; ignored when `value` is given. */
  level?: number;
  /** An explicit intensity instead of a level (degrees, factor, width fraction or std). */
  value?: number;
  /** Default 'fixed'. */
  sampling?: ShiftSampling;
  /** Seed of the random draws, default 0. Image i uses `new Rng(seed).fork(i)`, so the result
   *  of an image does not depend on the others. */
  seed?: number;
  /** Rotation only, default 'nearest' (as the paper). */
  interpolation?: Interpolation;
}

/** A shifted image set and the intensity applied to each image. */
export interface ShiftedImageSet extends ImageSet {
  /** Per image: degrees, brightness factor, shift in pixels, or noise std. */
  applied: Float32Array;
}

/**
 * Applies one shift of the paper to every image (every channel alike) of `set`, returning a new
 * set (labels copied). Deterministic by `seed`.
 *
 * @throws QbnnError ERR_ARG on an unknown kind, a level outside 1..5, or `random-sign` brightness
 */
export function applyShift(set: ImageSet, options: ShiftOptions): ShiftedImageSet {
  const { kind } = options;
  if (!(kind in SHIFT_LEVELS)) {
    throw new QbnnError(
      'ERR_ARG',
      `applyShift: kind must be 'rotation', 'brightness', 'shift' or 'noise', got ${String(kind)}`,
    );
  }
  const value =
    options.value !== undefined
      ? checkNumber('applyShift: value', options.value)
      : SHIFT_LEVELS[kind][checkInt('applyShift: level', options.level, 1, 5) - 1];
  const sampling = options.sampling ?? 'fixed';
  if (sampling !== 'fixed' && sampling !== 'random-sign' && sampling !== 'uniform') {
    throw new QbnnError('ERR_ARG', `applyShift: sampling must be 'fixed', 'random-sign' or 'uniform'`);
  }
  if (kind === 'brightness' && sampling === 'random-sign') {
    throw new QbnnError('ERR_ARG', `applyShift: sampling 'random-sign' does not apply to brightness`);
  }
  const interpolation = options.interpolation ?? 'nearest';
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') {
    throw new QbnnError('ERR_ARG', `applyShift: interpolation must be 'nearest' or 'bilinear'`);
  }
  const [n, ch, h, w] = set.shape;
  const plane = h * w;
  const size = ch * plane;
  if (set.images.length !== n * size || set.labels.length !== n) {
    throw new QbnnError(
      'ERR_SHAPE',
      `applyShift: images must hold ${n * size} values and labels ${n} for shape [${set.shape.join(', ')}]`,
    );
  }
  const base = new Rng(options.seed ?? 0);
  const images = new Float32Array(set.images.length);
  const applied = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const img = set.images.subarray(i * size, (i + 1) * size);
    const dst = images.subarray(i * size, (i + 1) * size);
    const needsRng = kind === 'noise' || sampling !== 'fixed';
    const rng = needsRng ? base.fork(i) : undefined;
    let v = value;
    if (kind !== 'noise' && rng) {
      const u = rng.uniform(1)[0];
      if (sampling === 'random-sign') v = u < 0.5 ? -value : value;
      else if (kind === 'brightness') v = Math.max(0, 1 - value) + u * (1 + value - Math.max(0, 1 - value));
      else v = (2 * u - 1) * value;
    }
    if (kind === 'shift') v = roundHalfEven(v * w);
    applied[i] = v;
    if (kind === 'brightness') scaleBrightness(img, v, dst);
    else if (kind === 'noise') addGaussianNoise(img, v, rng!, dst);
    else {
      for (let c = 0; c < ch; c++) {
        const s = img.subarray(c * plane, (c + 1) * plane);
        const d = dst.subarray(c * plane, (c + 1) * plane);
        if (kind === 'rotation') rotatePlane(s, h, w, v, interpolation, d);
        else shiftPlane(s, h, w, v, d);
      }
    }
  }
  return { images, labels: set.labels.slice(), shape: [...set.shape], classNames: set.classNames, applied };
}

function checkPlane(src: Float32Array, h: number, w: number, out: Float32Array): void {
  checkInt('h', h, 1);
  checkInt('w', w, 1);
  if (src.length !== h * w || out.length !== h * w) {
    throw new QbnnError(
      'ERR_SHAPE',
      `plane of ${h} x ${w} needs ${h * w} values, got src ${src.length} and out ${out.length}`,
    );
  }
  if (src === out)
    throw new QbnnError('ERR_ARG', 'src and out must be different arrays (no in-place transform)');
}
