// Philox4x32-10 (as packages/core/src/rng/philox.ts), the exact quantised normal (as
// rng/qnormal.ts, with its threshold table passed in at load) and the fused Gaussian weight
// sampler of the kernel contract, written straight into the packed layout.
#include "common.h"

#define M0 0xd2511f53u
#define M1 0xcd9e8d57u
#define W0 0x9e3779b9u
#define W1 0xbb67ae85u

static uint32_t thresholds[255];
// guide[b] = #{ j : t[j] <= b * 2^20 }: a lower bound on the count of any word in bucket b.
static uint8_t guide[4096];

// t: the 255 ascending QNORMAL_THRESHOLDS of @qbnn/core.
EXPORT("qbnn_set_thresholds")
void qbnn_set_thresholds(const uint32_t* t) {
  for (int j = 0; j < 255; j++) thresholds[j] = t[j];
  int c = 0;
  for (uint32_t b = 0; b < 4096; b++) {
    const uint64_t lo = (uint64_t)b << 20;
    while (c < 255 && thresholds[c] <= lo) c++;
    guide[b] = (uint8_t)c;
  }
}

static inline int8_t qnormal_of(uint32_t u) {
  int c = guide[u >> 20];
  while (c < 255 && u >= thresholds[c]) c++;
  return (int8_t)(c - 128);
}

// The Philox multipliers, read through volatile loads in every round: with a constant (or a
// hoisted) operand LLVM folds the zero extension and emits i64x2.mul, which V8 lowers to three
// pmuludq and shifts; a fresh load keeps mul(extend, extend) together, and that selects
// i64x2.extmul_*_i32x4_u (one pmuludq after an unpack).
static volatile v128_t philox_m0 = {(int32_t)M0, (int32_t)M0, (int32_t)M0, (int32_t)M0};
static volatile v128_t philox_m1 = {(int32_t)M1, (int32_t)M1, (int32_t)M1, (int32_t)M1};

// High and low halves of the four 32 x 32 -> 64-bit products x * m.
INLINE void mul_wide(v128_t x, const volatile v128_t* m, v128_t* hi, v128_t* lo) {
  const v128_t mv = *m;
  const v128_t p01 = wasm_u64x2_extmul_low_u32x4(x, mv);
  const v128_t p23 = wasm_u64x2_extmul_high_u32x4(x, mv);
  *hi = wasm_i32x4_shuffle(p01, p23, 1, 3, 5, 7);
  *lo = wasm_i32x4_shuffle(p01, p23, 0, 2, 4, 6);
}

// The 16 words of blocks first .. first + 3, in stream order.
static void philox_16(uint32_t k0, uint32_t k1, uint64_t first, uint32_t* words) {
  uint32_t c0[4], c1[4];
  for (int i = 0; i < 4; i++) {
    c0[i] = (uint32_t)(first + i);
    c1[i] = (uint32_t)((first + i) >> 32);
  }
  v128_t x0 = wasm_v128_load(c0), x1 = wasm_v128_load(c1);
  v128_t x2 = wasm_i32x4_splat(0), x3 = wasm_i32x4_splat(0);
  uint32_t a = k0, b = k1;
  for (int r = 0; r < 10; r++) {
    v128_t hi0, lo0, hi1, lo1;
    mul_wide(x0, &philox_m0, &hi0, &lo0);
    mul_wide(x2, &philox_m1, &hi1, &lo1);
    x0 = wasm_v128_xor(wasm_v128_xor(hi1, x1), wasm_i32x4_splat((int32_t)a));
    x1 = lo1;
    x2 = wasm_v128_xor(wasm_v128_xor(hi0, x3), wasm_i32x4_splat((int32_t)b));
    x3 = lo0;
    a += W0;
    b += W1;
  }
  // Transpose: lane i of x0..x3 is block first + i.
  const v128_t t0 = wasm_i32x4_shuffle(x0, x1, 0, 4, 1, 5);
  const v128_t t1 = wasm_i32x4_shuffle(x2, x3, 0, 4, 1, 5);
  const v128_t t2 = wasm_i32x4_shuffle(x0, x1, 2, 6, 3, 7);
  const v128_t t3 = wasm_i32x4_shuffle(x2, x3, 2, 6, 3, 7);
  wasm_v128_store(words, wasm_i64x2_shuffle(t0, t1, 0, 2));
  wasm_v128_store(words + 4, wasm_i64x2_shuffle(t0, t1, 1, 3));
  wasm_v128_store(words + 8, wasm_i64x2_shuffle(t2, t3, 0, 2));
  wasm_v128_store(words + 12, wasm_i64x2_shuffle(t2, t3, 1, 3));
}

// position: the first block (a double holding an integer < 2^53).
EXPORT("qbnn_philox")
void qbnn_philox(uint32_t k0, uint32_t k1, double position, uint32_t* out, int32_t count) {
  uint64_t block = (uint64_t)position;
  uint32_t words[16];
  for (int32_t i = 0; i < count; i += 16, block += 4) {
    philox_16(k0, k1, block, words);
    const int32_t n = count - i < 16 ? count - i : 16;
    for (int32_t j = 0; j < n; j++) out[i + j] = words[j];
  }
}

// Words are made a batch at a time before any is mapped: the Philox rounds of consecutive blocks
// then overlap in the pipeline instead of waiting behind the mapping's data-dependent branches.
#define FILL_WORDS 1024

void qnormal_fill(uint32_t k0, uint32_t k1, uint64_t position, int8_t* out, int32_t count) {
  uint32_t words[FILL_WORDS];
  for (int32_t i = 0; i < count; i += FILL_WORDS, position += FILL_WORDS / 4) {
    const int32_t n = count - i < FILL_WORDS ? count - i : FILL_WORDS;
    for (int32_t j = 0; j < n; j += 16) philox_16(k0, k1, position + j / 4, words + j);
    for (int32_t j = 0; j < n; j++) out[i + j] = qnormal_of(words[j]);
  }
}

EXPORT("qbnn_qnormal")
void qbnn_qnormal(uint32_t k0, uint32_t k1, double position, int8_t* out, int32_t count) {
  qnormal_fill(k0, k1, (uint64_t)position, out, count);
}

// Words -> quantised normals (for tests of the mapping at every threshold).
EXPORT("qbnn_qnormal_map")
void qbnn_qnormal_map(const uint32_t* words, int8_t* out, int32_t count) {
  for (int32_t i = 0; i < count; i++) out[i] = qnormal_of(words[i]);
}

// JavaScript's Math.min(Math.max(v, lo), hi) as far as the sampler can tell: pmax(v, lo) =
// v < lo ? lo : v and pmin(x, hi) = hi < x ? hi : x keep a NaN (as Math's do; a NaN stored into
// an Int8Array is 0 like i32.trunc_sat), and where they differ from min/max, the sign of a zero,
// only integer truncation follows. They are one vminpd / vmaxpd each, where f64x2.min/max cost
// V8 a sequence of seven for NaN and signed-zero rules the sampler does not need.
INLINE v128_t clamp2(v128_t v, v128_t lo, v128_t hi) { return wasm_f64x2_pmin(wasm_f64x2_pmax(v, lo), hi); }
INLINE double clamp1(double v, double lo, double hi) {
  return __builtin_wasm_min_f64(__builtin_wasm_max_f64(v, lo), hi);
}

// One row's constants of the sampler, as float64 lanes.
typedef struct {
  v128_t zn, zw, a, b, c, qmin, qmax;
} sample_row_t;

// Two samples: p = eps * (sigma - Zsig) and d = mu - Zmu in the low two int32 lanes.
INLINE v128_t sample2(v128_t p, v128_t d, const sample_row_t* k) {
  const v128_t nq = clamp2(wasm_f64x2_add(wasm_f64x2_nearest(wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(p), k->a)), k->zn),
                           k->qmin, k->qmax);
  const v128_t v = wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(d), k->b),
                                  wasm_f64x2_mul(wasm_f64x2_sub(nq, k->zn), k->c));
  return wasm_i32x4_trunc_sat_f64x2_zero(clamp2(wasm_f64x2_add(wasm_f64x2_nearest(v), k->zw), k->qmin, k->qmax));
}

// The fused Gaussian sample of GaussianSampleArgs (types.ts), per row r and element i:
//   nq = clamp(roundHalfEven(eps * (sigma - Zsig) * m1) + Zn, qmin, qmax)
//   wq = clamp(roundHalfEven((mu - Zmu) * m2 + (nq - Zn) * m3) + Zw, qmin, qmax)
// every product and sum in float64 in this order (built with -ffp-contract=off; f64.nearest
// rounds ties to even; the integer differences are exact in float64), four elements a step.
// Each step's four weights are one K group of the packed layout (common.h), so they are stored
// straight into the pack and summed into the row sum: no second pass packs them.
// zp: Zmu, Zsig, Zn, Zw (n each); m: m1, m2, m3 (n each); tmp: n * k bytes (the noise).
EXPORT("qbnn_sample_gaussian")
void qbnn_sample_gaussian(const int8_t* mu, const uint8_t* sigma, const int32_t* zp, const double* m, int32_t n,
                          int32_t k, int32_t qmin, int32_t qmax, uint32_t k0, uint32_t k1, double position,
                          int8_t* tmp, int8_t* packed, int32_t* row_sums) {
  qnormal_fill(k0, k1, (uint64_t)position, tmp, n * k);
  const int32_t kg = k_groups(k);
  const int32_t panel_bytes = kg * PANEL * 4;
  for (int32_t r = 0; r < n; r++) {
    const int32_t zmu = zp[r], zs = zp[n + r], zn = zp[2 * n + r], zw = zp[3 * n + r];
    const double a = m[r], b = m[n + r], c = m[2 * n + r];
    const sample_row_t kr = {wasm_f64x2_splat(zn), wasm_f64x2_splat(zw),  wasm_f64x2_splat(a),
                             wasm_f64x2_splat(b),  wasm_f64x2_splat(c),   wasm_f64x2_splat(qmin),
                             wasm_f64x2_splat(qmax)};
    const v128_t zsv = wasm_i32x4_splat(zs), zmuv = wasm_i32x4_splat(zmu);
    const int8_t* e = tmp + r * k;
    const uint8_t* s = sigma + r * k;
    const int8_t* u = mu + r * k;
    int8_t* dst = packed + (r / PANEL) * panel_bytes + (r % PANEL) * 4;
    v128_t sum = wasm_i32x4_splat(0);
    int32_t i = 0;
    for (; i + 4 <= k; i += 4, dst += PANEL * 4) {
      const v128_t ev = wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(wasm_v128_load32_zero(e + i)));
      const v128_t sv = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(s + i)));
      const v128_t uv = wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(wasm_v128_load32_zero(u + i)));
      const v128_t p = wasm_i32x4_mul(ev, wasm_i32x4_sub(sv, zsv));  // |p| <= 128 * 255: exact
      const v128_t d = wasm_i32x4_sub(uv, zmuv);
      const v128_t lo = sample2(p, d, &kr);
      const v128_t hi = sample2(wasm_i32x4_shuffle(p, p, 2, 3, 2, 3), wasm_i32x4_shuffle(d, d, 2, 3, 2, 3), &kr);
      const v128_t w4 = wasm_i32x4_shuffle(lo, hi, 0, 1, 4, 5);
      sum = wasm_i32x4_add(sum, w4);
      const v128_t w16 = wasm_i16x8_narrow_i32x4(w4, wasm_i32x4_splat(0));
      wasm_v128_store32_lane(dst, wasm_i8x16_narrow_i16x8(w16, w16), 0);
    }
    int32_t total = wasm_i32x4_extract_lane(sum, 0) + wasm_i32x4_extract_lane(sum, 1) +
                    wasm_i32x4_extract_lane(sum, 2) + wasm_i32x4_extract_lane(sum, 3);
    if (i < k) {
      // The last, partial K group: zero weights pad it.
      int8_t last[4] = {0, 0, 0, 0};
      for (int32_t j = 0; i + j < k; j++) {
        const int32_t x = i + j;
        const double nq = clamp1(__builtin_rint((double)(e[x] * ((int32_t)s[x] - zs)) * a) + zn, qmin, qmax);
        const double v = __builtin_rint((double)(u[x] - zmu) * b + (nq - zn) * c) + zw;
        last[j] = (int8_t)__builtin_wasm_trunc_saturate_s_i32_f64(clamp1(v, qmin, qmax));
        total += last[j];
      }
      for (int32_t j = 0; j < 4; j++) dst[j] = last[j];
    }
    row_sums[r] = total;
  }
  // The channels that pad the last panel hold zero weights.
  for (int32_t r = n; r < panels(n) * PANEL; r++) {
    int8_t* dst = packed + (r / PANEL) * panel_bytes + (r % PANEL) * 4;
    for (int32_t g = 0; g < kg; g++) *(int32_t*)(dst + g * PANEL * 4) = 0;
  }
}
