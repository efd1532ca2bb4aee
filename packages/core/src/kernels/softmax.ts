// The Monte Carlo predictive: the mean over samples of each sample's softmax, computed so that
// every implementation gives the same bits. The exponential is a fixed polynomial evaluated in
// float64 with IEEE basic operations only, after an exact range reduction (Math.exp differs
// between engines and glibc in the last bit; this does not). Execution plans of
// @qbnn/native-amx (native/src/plan.cc) evaluate the same expressions in the same order.

/** Terms of exp(r) = sum_n r^n / n! on |r| <= ln(2) / 2: the first omitted one is below 5e-18. */
const EXP_TERMS = 15;
/** ln 2 split so that k LN2_HI is exact for |k| < 2^21 (the classic Cody-Waite pair). */
const LN2_HI = 0.6931471803691238;
const LN2_LO = 1.9082149292705877e-10;
/** Below this exp(x) is 0 in float64 (it is below half the smallest subnormal). */
const EXP_MIN = -746;
/** The scale 2^-k is applied in two steps beyond this (the second may round to a subnormal). */
const SCALE_SPLIT = 1000;

/** 1 / n! by successive division (the native code builds the same table the same way). */
const INV_FACTORIAL = (() => {
  const f = new Float64Array(EXP_TERMS);
  f[0] = 1;
  for (let i = 1; i < EXP_TERMS; i++) f[i] = f[i - 1] / i;
  return f;
})();

/** 2^-i for i = 0..SCALE_SPLIT by successive halving (exact). */
const INV_POW2 = (() => {
  const t = new Float64Array(SCALE_SPLIT + 1);
  t[0] = 1;
  for (let i = 1; i <= SCALE_SPLIT; i++) t[i] = t[i - 1] * 0.5;
  return t;
})();

/**
 * exp(x) for x <= 0 (a logit minus the largest of its row), the same bits on every engine:
 * x = k ln 2 + r with k = floor(x log2(e) + 1/2), r = (x - k LN2_HI) - k LN2_LO, exp(r) by its
 * Taylor polynomial (Horner), times 2^k. Within 2 ulp of exp.
 */
export function expNonPositive(x: number): number {
  if (x < EXP_MIN) return 0;
  const k = Math.floor(x * Math.LOG2E + 0.5);
  const r = x - k * LN2_HI - k * LN2_LO;
  let p = INV_FACTORIAL[EXP_TERMS - 1];
  for (let n = EXP_TERMS - 2; n >= 0; n--) p = p * r + INV_FACTORIAL[n];
  // k in [-1077, 0]
  return k < -SCALE_SPLIT ? p * INV_POW2[-k - SCALE_SPLIT] * INV_POW2[SCALE_SPLIT] : p * INV_POW2[-k];
}

/**
 * The mean over L samples of the softmax of each sample's logits: logits [L, B, C] (float32),
 * result [B, C] as float32 of the float64 sums. Per row: e_c = expNonPositive(l_c - max),
 * s = sum_c e_c (c ascending), then p[b, c] += e_c / s / L over l ascending.
 */
export function meanSoftmax(logits: Float32Array, L: number, B: number, C: number): Float32Array {
  const p = new Float64Array(B * C);
  const e = new Float64Array(C);
  for (let l = 0; l < L; l++) {
    for (let b = 0; b < B; b++) {
      const off = (l * B + b) * C;
      let m = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < C; c++) m = Math.max(m, logits[off + c]);
      let s = 0;
      for (let c = 0; c < C; c++) {
        e[c] = expNonPositive(logits[off + c] - m);
        s += e[c];
      }
      for (let c = 0; c < C; c++) p[b * C + c] += e[c] / s / L;
    }
  }
  return Float32Array.from(p);
}
