// Box-Muller standard normals from Philox words, computed so that every implementation gives
// the same float32 values: the logarithm, sine and cosine are fixed polynomials evaluated in
// float64 with IEEE basic operations only (+, -, *, /, sqrt are correctly rounded everywhere),
// after exact range reductions on the words' integer values. Math.log / Math.sin / Math.cos
// differ between engines (and glibc) in the last bit; these do not. The native fill in
// @qbnn/native-amx (native/src/fp32/normal.cc) evaluates the same expressions in the same order.

/** Quarter turns of the angle: 2 pi / 2^24, the angle of one unit of a 24-bit word. */
const ANGLE_UNIT = (2 * Math.PI) / 16777216;
/** Terms of log(f) = 2 s sum_k s^(2k) / (2k + 1), |s| <= 0.1716: relative error < 1e-16. */
const LOG_TERMS = 10;
/** Terms of sin and cos on [0, pi / 2): the first omitted one is below 2e-18. */
const TRIG_TERMS = 11;

/** 1 / n! by successive division (the native code builds the same table the same way). */
function inverseFactorials(n: number): Float64Array {
  const f = new Float64Array(n + 1);
  f[0] = 1;
  for (let i = 1; i <= n; i++) f[i] = f[i - 1] / i;
  return f;
}

const F = inverseFactorials(2 * TRIG_TERMS);
/** sin(a) = a sum_k SIN[k] a^(2k); cos(a) = sum_k COS[k] a^(2k). */
const SIN = Float64Array.from({ length: TRIG_TERMS }, (_, k) => (k & 1 ? -F[2 * k + 1] : F[2 * k + 1]));
const COS = Float64Array.from({ length: TRIG_TERMS }, (_, k) => (k & 1 ? -F[2 * k] : F[2 * k]));
const LOG = Float64Array.from({ length: LOG_TERMS }, (_, k) => 1 / (2 * k + 1));
/** 2^-e for e = 0..24 (exact). */
const INV_POW2 = Float64Array.from({ length: 25 }, (_, e) => 2 ** -e);

/**
 * The polynomial coefficients, in evaluation order, for the native implementation's tests:
 * it must use these exact doubles.
 */
export const NORMAL_COEFFICIENTS = { sin: SIN, cos: COS, log: LOG } as const;

/**
 * log(M 2^-24) for an integer M in [1, 2^24]: M = f 2^e exactly with f in [sqrt(1/2), sqrt(2)),
 * log f = 2 atanh(s) with s = (f - 1) / (f + 1).
 */
function logUnit(m: number): number {
  let e = 31 - Math.clz32(m);
  let f = m * INV_POW2[e];
  if (f > Math.SQRT2) {
    f *= 0.5;
    e += 1;
  }
  const s = (f - 1) / (f + 1);
  const z = s * s;
  let p = LOG[LOG_TERMS - 1];
  for (let k = LOG_TERMS - 2; k >= 0; k--) p = p * z + LOG[k];
  return (e - 24) * Math.LN2 + (s + s) * p;
}

/**
 * Standard normals from uint32 words by Box-Muller on pairs (2j, 2j + 1):
 * u1 = (top24(w0) + 1) 2^-24 in (0, 1], u2 = top24(w1) 2^-24, r = sqrt(-2 log u1),
 * out[2j] = r cos(2 pi u2), out[2j + 1] = r sin(2 pi u2) (rounded to float32).
 * `words` holds at least `out.length` rounded up to even words.
 */
export function normalsFromWords(words: Uint32Array, out: Float32Array): void {
  const len = out.length;
  for (let i = 0; i < len; i += 2) {
    const r = Math.sqrt(-2 * logUnit((words[i] >>> 8) + 1));
    const t = words[i + 1] >>> 8;
    // the quarter turn q exactly, then the angle a in [0, pi / 2) inside it
    const q = t >>> 22;
    const a = (t & 0x3fffff) * ANGLE_UNIT;
    const z = a * a;
    let ps = SIN[TRIG_TERMS - 1];
    let pc = COS[TRIG_TERMS - 1];
    for (let k = TRIG_TERMS - 2; k >= 0; k--) {
      ps = ps * z + SIN[k];
      pc = pc * z + COS[k];
    }
    const s = a * ps;
    // sin and cos of q pi / 2 + a: swapped on odd quarters, negated per quarter
    let sin = q & 1 ? pc : s;
    let cos = q & 1 ? s : pc;
    if (q & 2) sin = -sin;
    if ((q ^ (q >>> 1)) & 1) cos = -cos;
    out[i] = r * cos;
    if (i + 1 < len) out[i + 1] = r * sin;
  }
}

/**
 * A faster implementation of {@link normalsFromWords} over a stream's blocks: fills `out` with
 * the normals of the words of blocks firstBlock, firstBlock + 1, ... of key (k0, k1), bit for bit
 * what the reference gives. @qbnn/native-amx registers one.
 */
export type NormalFill = (k0: number, k1: number, firstBlock: number, out: Float32Array) => void;

/** Below this many normals the reference runs (a native call costs more than it saves). */
export const NORMAL_FILL_MIN = 512;

let registeredFill: NormalFill | null = null;

/** Registers (or with null removes) the fill `Rng.normal` uses for large draws. */
export function setNormalFill(fill: NormalFill | null): void {
  registeredFill = fill;
}

/** The registered fill, or null when `Rng.normal` computes in JS. */
export function normalFill(): NormalFill | null {
  return registeredFill;
}
