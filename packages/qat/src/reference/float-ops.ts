/**
 * Float64 brute-force linear and convolution, the independent reference the simulated twin of
 * the integer engine uses (no kernels, no integer tricks).
 */

/** y[m, n] = sum_k x[m, k] w[n, k] + b[n]. */
export function linearF64(
  x: Float64Array,
  m: number,
  w: Float64Array,
  n: number,
  k: number,
  bias?: Float64Array,
): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const xo = i * k;
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      const wo = j * k;
      for (let t = 0; t < k; t++) s += x[xo + t] * w[wo + t];
      y[i * n + j] = s;
    }
  }
  return y;
}

/** NCHW convolution, torch semantics (zero padding, stride, dilation, groups). */
export function conv2dF64(
  x: Float64Array,
  xShape: readonly [number, number, number, number],
  w: Float64Array,
  wShape: readonly [number, number, number, number],
  stride: readonly [number, number],
  padding: readonly [number, number],
  dilation: readonly [number, number],
  groups: number,
  bias?: Float64Array,
): { out: Float64Array; shape: [number, number, number, number] } {
  const [B, C, H, W] = xShape;
  const [O, Cg, kh, kw] = wShape;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  const [dh, dw] = dilation;
  const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const Og = O / groups;
  const out = new Float64Array(B * O * Ho * Wo);
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let oy = 0; oy < Ho; oy++) {
        for (let ox = 0; ox < Wo; ox++) {
          let s = bias ? bias[o] : 0;
          for (let c = 0; c < Cg; c++) {
            const ci = g * Cg + c;
            for (let dy = 0; dy < kh; dy++) {
              const iy = oy * sh - ph + dy * dh;
              if (iy < 0 || iy >= H) continue;
              for (let dx = 0; dx < kw; dx++) {
                const ix = ox * sw - pw + dx * dw;
                if (ix < 0 || ix >= W) continue;
                s += x[((b * C + ci) * H + iy) * W + ix] * w[((o * Cg + c) * kh + dy) * kw + dx];
              }
            }
          }
          out[((b * O + o) * Ho + oy) * Wo + ox] = s;
        }
      }
    }
  }
  void C;
  return { out, shape: [B, O, Ho, Wo] };
}

/**
 * NCHW transposed convolution by its definition, torch semantics: every input element scatters
 * `x * W` to `y[oy, ox]` with `oy = iy stride - padding + ky dilation` (taps outside the output
 * dropped), output size `(H - 1) stride - 2 padding + dilation (k - 1) + outputPadding + 1`. `w` is
 * the equivalent convolution's kernel `[O, C/g, kh, kw]` as the IR stores it: torch's
 * `W[g ig + c, j, ky, kx]` is `w[g og + j, c, kh - 1 - ky, kw - 1 - kx]`.
 */
export function convTranspose2dF64(
  x: Float64Array,
  xShape: readonly [number, number, number, number],
  w: Float64Array,
  wShape: readonly [number, number, number, number],
  stride: readonly [number, number],
  padding: readonly [number, number],
  outputPadding: readonly [number, number],
  dilation: readonly [number, number],
  groups: number,
  bias?: Float64Array,
): { out: Float64Array; shape: [number, number, number, number] } {
  const [B, C, H, W] = xShape;
  const [O, ig, kh, kw] = wShape;
  const og = O / groups;
  const Ho = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + outputPadding[0] + 1;
  const Wo = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + outputPadding[1] + 1;
  const out = new Float64Array(B * O * Ho * Wo);
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < O; o++) {
      const base = (b * O + o) * Ho * Wo;
      out.fill(bias ? bias[o] : 0, base, base + Ho * Wo);
    }
    for (let ci = 0; ci < C; ci++) {
      const g = Math.floor(ci / ig);
      const c = ci - g * ig;
      for (let iy = 0; iy < H; iy++) {
        for (let ix = 0; ix < W; ix++) {
          const v = x[((b * C + ci) * H + iy) * W + ix];
          for (let j = 0; j < og; j++) {
            const o = g * og + j;
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * stride[0] - padding[0] + ky * dilation[0];
              if (oy < 0 || oy >= Ho) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * stride[1] - padding[1] + kx * dilation[1];
                if (ox < 0 || ox >= Wo) continue;
                const wt = w[((o * ig + c) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)];
                out[((b * O + o) * Ho + oy) * Wo + ox] += v * wt;
              }
            }
          }
        }
      }
    }
  }
  return { out, shape: [B, O, Ho, Wo] };
}

/** Float64 twins of the pools, for the simulated model. */
export function poolF64(
  x: Float64Array,
  shape: readonly [number, number, number, number],
  kind: 'max' | 'avg',
  kernel: readonly [number, number],
  stride: readonly [number, number],
  padding: readonly [number, number],
): { out: Float64Array; shape: [number, number, number, number] } {
  const [B, C, H, W] = shape;
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  const out = new Float64Array(B * C * Ho * Wo);
  let o = 0;
  for (let bc = 0; bc < B * C; bc++) {
    const base = bc * H * W;
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        let m = Number.NEGATIVE_INFINITY;
        let s = 0;
        for (let dy = 0; dy < kh; dy++) {
          const iy = oy * sh - ph + dy;
          if (iy < 0 || iy >= H) continue;
          for (let dx = 0; dx < kw; dx++) {
            const ix = ox * sw - pw + dx;
            if (ix < 0 || ix >= W) continue;
            const v = x[base + iy * W + ix];
            if (v > m) m = v;
            s += v;
          }
        }
        out[o++] = kind === 'max' ? m : s / (kh * kw);
      }
    }
  }
  return { out, shape: [B, C, Ho, Wo] };
}
