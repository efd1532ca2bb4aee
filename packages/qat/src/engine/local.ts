import { QNORMAL_SCALE, roundHalfEven } from '@qbnn/core';
import type { LocalMoments } from '../forms/types.js';
import { channelScales, channelZeroPoints } from '../spec.js';
import type { QLayerSpec } from './ir.js';
import { qmaxOf, quantizeBias } from './requant.js';

/**
 * What local reparameterisation of a layer needs beyond its input, computed once per layer:
 * x^2 on an 8-bit grid derived from the input grid (`x2Scale`, `x2Div`), sigma^2 on a per-channel
 * 8-bit grid (`s2`, `s2Scale`), the int32 biases of both GEMMs, the per-channel output
 * multipliers, and the u8 -> x^2 table.
 */
export interface LocalConstants {
  mu: Int8Array;
  muZ: Int32Array;
  muScale: Float64Array;
  x2Scale: number;
  x2Div: number;
  s2: Int8Array;
  s2Scale: Float64Array;
  bMu?: Int32Array;
  bVar?: Int32Array;
  /** Per output channel: S_x S_mu[c] and S_x2 S_s2[c], rounded to float32 (the combine's form). */
  meanMult: Float32Array;
  varMult: Float32Array;
  /** u8 input value -> its square on the x^2 grid: round((q - Z)^2 / x2Div). */
  square: Uint8Array;
}

/** The integer grids of local reparameterisation for a layer whose weights have Gaussian moments `m`. */
export function localConstants(layer: QLayerSpec, m: LocalMoments): LocalConstants {
  const { n, k } = layer;
  const z = layer.input.zeroPoint;
  const qm = qmaxOf(layer.input);
  const maxDev = Math.max(z, qm - z);
  const maxSq = Math.max(1, maxDev * maxDev);
  const x2Div = maxSq / 255;
  const x2Scale = layer.input.scale * layer.input.scale * x2Div;
  const s2Scale = new Float64Array(n);
  const s2 = new Int8Array(n * k);
  for (let c = 0; c < n; c++) {
    let mx = 0;
    for (let i = 0; i < k; i++) {
      const s = m.sigma[c * k + i];
      if (s * s > mx) mx = s * s;
    }
    s2Scale[c] = mx > 0 ? mx / 127 : 1;
    for (let i = 0; i < k; i++) {
      const s = m.sigma[c * k + i];
      s2[c * k + i] = Math.min(127, roundHalfEven((s * s) / s2Scale[c]));
    }
  }
  const muScale = channelScales(m.muQ, n);
  const meanMult = new Float32Array(n);
  const varMult = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    meanMult[i] = layer.input.scale * muScale[i];
    varMult[i] = x2Scale * s2Scale[i];
  }
  const square = new Uint8Array(256);
  for (let q = 0; q < 256; q++) {
    const d = q - z;
    square[q] = Math.min(255, roundHalfEven((d * d) / x2Div));
  }
  return {
    mu: m.mu,
    muZ: channelZeroPoints(m.muQ, n),
    muScale,
    x2Scale,
    x2Div,
    s2,
    s2Scale,
    bMu: m.bias ? quantizeBias(m.bias.mu, layer.input.scale, muScale) : undefined,
    bVar: m.bias
      ? quantizeBias(
          Array.from(m.bias.sigma, (v) => v * v),
          x2Scale,
          s2Scale,
        )
      : undefined,
    meanMult,
    varMult,
    square,
  };
}

const f32 = Math.fround;
/** S_eps of the quantised normal, rounded to float32. */
export const LOCAL_EPS_SCALE = f32(QNORMAL_SCALE);

/**
 * The combine of local reparameterisation, in float32 (every step one float32 operation, rounded
 * to nearest even; the JS engine computes each in float64 and rounds with Math.fround, which is
 * the same for +, -, *, / and sqrt of float32 operands; native plans run it in AVX-512 float32):
 *
 *   mean = f32(acc_mu) * meanMult[c]            sd = sqrt(max(f32(acc_var) * varMult[c], +0))
 *   y    = mean + sd * (eps * f32(S_eps))       (float logits: y)
 *   q    = clamp(roundHalfEven(clamp(y / f32(S_out), -1024, 1024)) + Z_out, lo, qmax)
 *
 * Per output of one sample: the mean and the standard deviation (float32 values).
 */
export function localMoments(
  mu: Int32Array,
  va: Int32Array,
  src: number,
  B: number,
  n: number,
  inner: number,
  meanMult: Float32Array,
  varMult: Float32Array,
  mean: Float32Array,
  sd: Float32Array,
): void {
  let i = 0;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < n; c++) {
      const mm = meanMult[c];
      const vm = varMult[c];
      for (let j = 0; j < inner; j++, i++) {
        mean[i] = f32(mu[src + i]) * mm;
        const v = f32(f32(va[src + i]) * vm);
        sd[i] = Math.sqrt(Math.max(v, 0)); // Math.max(-0, 0) is +0, as the native form
      }
    }
  }
}

/** Float outputs of one local-reparameterisation sample: mean + sd (eps S_eps), in float32. */
export function localF32(
  mean: Float32Array,
  sd: Float32Array,
  eps: Int8Array,
  out: Float32Array,
  dst: number,
): void {
  const es = LOCAL_EPS_SCALE; // a local: an imported binding is re-read (and hole-checked) per use
  for (let i = 0; i < mean.length; i++) out[dst + i] = mean[i] + f32(sd[i] * f32(eps[i] * es));
}

/** 1.5 * 2^52: `(x + ROUND_MAGIC) - ROUND_MAGIC` rounds |x| < 2^51 to the nearest integer, ties to even. */
const ROUND_MAGIC = 6755399441055744;

/**
 * u8 outputs of one local-reparameterisation sample: (ReLU and) requantisation of
 * y = mean + sd (eps S_eps) in float32, `clamp(roundHalfEven(y / scale) + zero, lo, qmax)` with
 * lo = relu ? zero : 0 (ReLU as the clamp: y < 0 rounds to at most zero); `scale` is the
 * float32 output scale. The rounding is core's roundHalfEven done by the float64 adder; |y / scale|
 * is first limited to 1024, which changes no clamped result; the clamp is branch-free integer
 * arithmetic (outputs are about half negative, so compares mispredict). y is always finite here.
 */
export function localU8(
  mean: Float32Array,
  sd: Float32Array,
  eps: Int8Array,
  out: Uint8Array,
  dst: number,
  scale: number,
  zero: number,
  relu: boolean,
  qmax: number,
): void {
  const lo = relu ? zero : 0;
  const es = LOCAL_EPS_SCALE;
  const magic = ROUND_MAGIC;
  for (let i = 0; i < mean.length; i++) {
    const y = f32(mean[i] + f32(sd[i] * f32(eps[i] * es)));
    const v = f32(y / scale);
    let q = v > 1024 ? 1024 : v < -1024 ? -1024 : (v + magic - magic) | 0;
    q += zero;
    let t = q - lo;
    q = lo + (t & ~(t >> 31));
    t = q - qmax;
    out[dst + i] = qmax + (t & (t >> 31));
  }
}
