// Turns a drawing or a photo of a digit into an MNIST-like input: white ink on black, the ink's
// bounding box scaled to fit 20 x 20 pixels, centred by its centre of mass in 28 x 28, values in [0, 1].

/** Ink intensity in [0, 1] of every pixel of an RGBA image (light backgrounds are inverted). */
export function inkOf(rgba: Uint8ClampedArray): Float32Array {
  const n = rgba.length / 4;
  const v = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const a = rgba[4 * i + 3] / 255;
    const lum = (0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255;
    v[i] = lum * a; // transparent pixels count as black
    sum += v[i];
  }
  if (sum / n > 0.5) for (let i = 0; i < n; i++) v[i] = 1 - v[i]; // dark ink on a light page
  return v;
}

/**
 * The 28 x 28 input of an ink image (`w` x `h`), or null when there is no ink. Box-filter
 * resampling of the ink's bounding box into at most 20 x 20, then a shift that puts the centre of
 * mass at the centre.
 */
export function mnistInput(ink: Float32Array, w: number, h: number): Float32Array | null {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (ink[y * w + x] > 0.05) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const scale = 20 / Math.max(bw, bh);
  const sw = Math.max(1, Math.round(bw * scale));
  const sh = Math.max(1, Math.round(bh * scale));
  const small = new Float32Array(sw * sh);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < sw; x++) {
      // average of the source pixels this target pixel covers
      const sx0 = x0 + Math.floor(x / scale);
      const sx1 = Math.max(sx0 + 1, x0 + Math.floor((x + 1) / scale));
      const sy0 = y0 + Math.floor(y / scale);
      const sy1 = Math.max(sy0 + 1, y0 + Math.floor((y + 1) / scale));
      let s = 0;
      let c = 0;
      for (let yy = sy0; yy < Math.min(sy1, y1 + 1); yy++)
        for (let xx = sx0; xx < Math.min(sx1, x1 + 1); xx++) {
          s += ink[yy * w + xx];
          c++;
        }
      small[y * sw + x] = c > 0 ? s / c : 0;
    }
  let m = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < sw; x++) {
      const v = small[y * sw + x];
      m += v;
      cx += v * x;
      cy += v * y;
    }
  const ox = Math.round(14 - (m > 0 ? cx / m : sw / 2));
  const oy = Math.round(14 - (m > 0 ? cy / m : sh / 2));
  const out = new Float32Array(28 * 28);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < sw; x++) {
      const tx = x + ox;
      const ty = y + oy;
      if (tx >= 0 && tx < 28 && ty >= 0 && ty < 28) out[ty * 28 + tx] = Math.min(1, small[y * sw + x]);
    }
  return out;
}
