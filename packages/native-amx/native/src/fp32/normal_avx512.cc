// AVX-512 normals (see normal.h): 8 Philox blocks a vector, their 16 word pairs as two vectors of
// 8 doubles. A checked short route (normals8Fast) proves each float32 result equal to the
// reference's; where it cannot, the step runs every operation of the scalar reference in the same
// order (normals8: mul and add separately, never fused), so each lane gives the scalar value bit
// for bit either way.
#include "../common.h"
#include "normal.h"

#if QBNN_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12 flags the deliberately undefined vectors of its own AVX-512 headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "../philox_avx512.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr double kLn2 = 0.6931471805599453;
constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kAngleUnit = (2 * 3.141592653589793) / 16777216;

inline __m512d negateIf(__m512d x, __mmask8 m) {
  return _mm512_mask_xor_pd(x, m, x, _mm512_set1_pd(-0.0));
}

// The normals of the pairs (w0[g][i], w1[g][i]), g < G, i < 8: cos results in c[g], sin results
// in s[g]. Each operation runs on the G groups in a row, so G dependency chains overlap (one
// alone is latency-bound); every group's operations are the scalar reference's, in its order.
template <int G>
__attribute__((always_inline)) inline void normals8(const NormalCoefficients& k, const __m256i* w0,
                                                    const __m256i* w1, __m256* c, __m256* s) {
  const __m512d one = _mm512_set1_pd(1.0);
  __m512d e[G], f[G], sx[G], zx[G], p[G], r[G], a[G], z[G], ps[G], pc[G];
  __m256i q[G];
  // log(m 2^-24), m = top24(w0) + 1: m = f 2^e exactly (getexp / getmant), f in [1, 2)
  for (int g = 0; g < G; ++g) {
    const __m512d m = _mm512_cvtepu32_pd(_mm256_add_epi32(_mm256_srli_epi32(w0[g], 8), _mm256_set1_epi32(1)));
    e[g] = _mm512_getexp_pd(m);
    f[g] = _mm512_getmant_pd(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    const __mmask8 big = _mm512_cmp_pd_mask(f[g], _mm512_set1_pd(kSqrt2), _CMP_GT_OQ);
    f[g] = _mm512_mask_mul_pd(f[g], big, f[g], _mm512_set1_pd(0.5));
    e[g] = _mm512_mask_add_pd(e[g], big, e[g], one);
  }
  for (int g = 0; g < G; ++g) sx[g] = _mm512_div_pd(_mm512_sub_pd(f[g], one), _mm512_add_pd(f[g], one));
  for (int g = 0; g < G; ++g) {
    zx[g] = _mm512_mul_pd(sx[g], sx[g]);
    p[g] = _mm512_set1_pd(k.log[NormalCoefficients::kLogTerms - 1]);
  }
  for (int i = NormalCoefficients::kLogTerms - 2; i >= 0; --i)
    for (int g = 0; g < G; ++g) p[g] = _mm512_add_pd(_mm512_mul_pd(p[g], zx[g]), _mm512_set1_pd(k.log[i]));
  for (int g = 0; g < G; ++g) {
    const __m512d lg = _mm512_add_pd(_mm512_mul_pd(_mm512_sub_pd(e[g], _mm512_set1_pd(24.0)), _mm512_set1_pd(kLn2)),
                                     _mm512_mul_pd(_mm512_add_pd(sx[g], sx[g]), p[g]));
    r[g] = _mm512_sqrt_pd(_mm512_mul_pd(_mm512_set1_pd(-2.0), lg));
  }
  // sin and cos of q pi / 2 + a
  for (int g = 0; g < G; ++g) {
    const __m256i t = _mm256_srli_epi32(w1[g], 8);
    q[g] = _mm256_srli_epi32(t, 22);
    a[g] = _mm512_mul_pd(_mm512_cvtepu32_pd(_mm256_and_si256(t, _mm256_set1_epi32(0x3fffff))),
                         _mm512_set1_pd(kAngleUnit));
    z[g] = _mm512_mul_pd(a[g], a[g]);
    ps[g] = _mm512_set1_pd(k.sin[NormalCoefficients::kTrigTerms - 1]);
    pc[g] = _mm512_set1_pd(k.cos[NormalCoefficients::kTrigTerms - 1]);
  }
  for (int i = NormalCoefficients::kTrigTerms - 2; i >= 0; --i)
    for (int g = 0; g < G; ++g) {
      ps[g] = _mm512_add_pd(_mm512_mul_pd(ps[g], z[g]), _mm512_set1_pd(k.sin[i]));
      pc[g] = _mm512_add_pd(_mm512_mul_pd(pc[g], z[g]), _mm512_set1_pd(k.cos[i]));
    }
  for (int g = 0; g < G; ++g) {
    const __m512d sa = _mm512_mul_pd(a[g], ps[g]);
    const __mmask8 odd = _mm256_test_epi32_mask(q[g], _mm256_set1_epi32(1));
    const __mmask8 neg = _mm256_test_epi32_mask(q[g], _mm256_set1_epi32(2));
    const __mmask8 negCos =
        _mm256_test_epi32_mask(_mm256_xor_si256(q[g], _mm256_srli_epi32(q[g], 1)), _mm256_set1_epi32(1));
    const __m512d sn = negateIf(_mm512_mask_blend_pd(odd, sa, pc[g]), neg);
    const __m512d cs = negateIf(_mm512_mask_blend_pd(odd, pc[g], sa), negCos);
    c[g] = _mm512_cvtpd_ps(_mm512_mul_pd(r[g], cs));
    s[g] = _mm512_cvtpd_ps(_mm512_mul_pd(r[g], sn));
  }
}

// The same normals by a shorter route, with a proof that the float32 results are the reference's:
// fewer terms (log 8 of 10; sine 7 and cosine 8 of 11 after reducing the angle to [0, pi / 4] by
// the exact complement 2^22 - t), evaluated with fused multiply-adds. The bound, term by term:
// the log series' tail 2 s sum_{k >= 8} s^2k / (2k + 1), |s| <= 0.1716, is < 2^-44.8 of L (|L| >=
// 0.346 unless e = 24, where L = 2 s p and the tail is relative anyway), so r is within 2^-45.8 r;
// the sine's first omitted term a^15 / 15! < 2^-45.5 and the cosine's a^16 / 16! < 2^-49.8 on
// [0, pi / 4]; the complement's angle differs from pi / 2 - a by < 2^-52; both evaluations' own
// rounding (Horner, the products) stays below 2^-49 r. So |v - v_ref| < r 2^-44.4, and a lane whose
// interval v +- r 2^-40 (16 times that) does not round to one float32 is uncertain. Zeros need no
// care: |v| >= 3.5e-4 * 3.7e-7 unless r or the angle is exactly 0, and there both routes compute
// the same signed zero (r = sqrt(-0) = -0; sin 0 = a * p = +0). Returns false when any lane of the G groups is (1.7% of 24-block steps): the caller
// then runs the reference operations (a margin of 2^-38 redid 5.7%).
constexpr double kMargin = 0x1p-40;
// Tests: 0 checked fast path, 1 reference operations only, 2 fast path always declared uncertain.
int fastMode = 0;

template <int G>
__attribute__((always_inline)) inline bool normals8Fast(const NormalCoefficients& k, const __m256i* w0,
                                                        const __m256i* w1, __m256* c, __m256* s) {
  const __m512d one = _mm512_set1_pd(1.0);
  __m512d e[G], sx[G], zx[G], p[G], r[G], z[G], ps[G], pc[G], a[G];
  __mmask8 flip[G];
  __m256i q[G];
  // each step on the G groups in a row, so G dependency chains overlap
  for (int g = 0; g < G; ++g) {
    const __m512d m = _mm512_cvtepu32_pd(_mm256_add_epi32(_mm256_srli_epi32(w0[g], 8), _mm256_set1_epi32(1)));
    e[g] = _mm512_getexp_pd(m);
    __m512d f = _mm512_getmant_pd(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    const __mmask8 big = _mm512_cmp_pd_mask(f, _mm512_set1_pd(kSqrt2), _CMP_GT_OQ);
    f = _mm512_mask_mul_pd(f, big, f, _mm512_set1_pd(0.5));
    e[g] = _mm512_mask_add_pd(e[g], big, e[g], one);
    sx[g] = _mm512_div_pd(_mm512_sub_pd(f, one), _mm512_add_pd(f, one));
  }
  for (int g = 0; g < G; ++g) {
    const __m256i t = _mm256_srli_epi32(w1[g], 8);
    q[g] = _mm256_srli_epi32(t, 22);
    const __m256i u = _mm256_and_si256(t, _mm256_set1_epi32(0x3fffff));
    flip[g] = _mm256_cmpgt_epi32_mask(u, _mm256_set1_epi32(1 << 21));
    const __m256i v = _mm256_mask_sub_epi32(u, flip[g], _mm256_set1_epi32(1 << 22), u);
    a[g] = _mm512_mul_pd(_mm512_cvtepu32_pd(v), _mm512_set1_pd(kAngleUnit));
    z[g] = _mm512_mul_pd(a[g], a[g]);
    zx[g] = _mm512_mul_pd(sx[g], sx[g]);
    p[g] = _mm512_set1_pd(k.log[7]);
    ps[g] = _mm512_set1_pd(k.sin[6]);
    pc[g] = _mm512_set1_pd(k.cos[7]);
  }
  for (int i = 6; i >= 0; --i)
    for (int g = 0; g < G; ++g) {
      p[g] = _mm512_fmadd_pd(p[g], zx[g], _mm512_set1_pd(k.log[i]));
      pc[g] = _mm512_fmadd_pd(pc[g], z[g], _mm512_set1_pd(k.cos[i]));
      if (i < 6) ps[g] = _mm512_fmadd_pd(ps[g], z[g], _mm512_set1_pd(k.sin[i]));
    }
  for (int g = 0; g < G; ++g) {
    const __m512d lg = _mm512_fmadd_pd(_mm512_sub_pd(e[g], _mm512_set1_pd(24.0)), _mm512_set1_pd(kLn2),
                                       _mm512_mul_pd(_mm512_add_pd(sx[g], sx[g]), p[g]));
    r[g] = _mm512_sqrt_pd(_mm512_mul_pd(_mm512_set1_pd(-2.0), lg));
  }
  __mmask8 uncertain = fastMode == 2 ? 0xff : 0;
  for (int g = 0; g < G; ++g) {
    const __m512d sa = _mm512_mul_pd(a[g], ps[g]);
    // sin and cos of the reference's angle t pi / 2^23: swapped where it was complemented
    const __m512d sinA = _mm512_mask_blend_pd(flip[g], sa, pc[g]);
    const __m512d cosA = _mm512_mask_blend_pd(flip[g], pc[g], sa);
    const __mmask8 odd = _mm256_test_epi32_mask(q[g], _mm256_set1_epi32(1));
    const __mmask8 neg = _mm256_test_epi32_mask(q[g], _mm256_set1_epi32(2));
    const __mmask8 negCos =
        _mm256_test_epi32_mask(_mm256_xor_si256(q[g], _mm256_srli_epi32(q[g], 1)), _mm256_set1_epi32(1));
    const __m512d sn = _mm512_mul_pd(r[g], negateIf(_mm512_mask_blend_pd(odd, sinA, cosA), neg));
    const __m512d cs = _mm512_mul_pd(r[g], negateIf(_mm512_mask_blend_pd(odd, cosA, sinA), negCos));
    // Where both ends of v +- b round to one float32, v and the reference's value (inside the
    // interval) round to it too (rounding is monotonic): that float is the result, no third
    // rounding. b >= 3e-16 unless r = -0 (u1 = 1); there b = +0, so v - b is v with its sign.
    const __m512d b = _mm512_abs_pd(_mm512_mul_pd(r[g], _mm512_set1_pd(kMargin)));
    c[g] = _mm512_cvtpd_ps(_mm512_sub_pd(cs, b));
    s[g] = _mm512_cvtpd_ps(_mm512_sub_pd(sn, b));
    uncertain |= _mm256_cmp_ps_mask(c[g], _mm512_cvtpd_ps(_mm512_add_pd(cs, b)), _CMP_NEQ_UQ);
    uncertain |= _mm256_cmp_ps_mask(s[g], _mm512_cvtpd_ps(_mm512_add_pd(sn, b)), _CMP_NEQ_UQ);
  }
  return uncertain == 0;
}

// Where blocksOut puts 16 normals at element i: into out, or with loc-scale operands
// out = mu + sigma * eps (the float32 product rounded, then the sum: the build never fuses them).
template <bool kScale>
struct Sink {
  float* out;
  const float* mu;
  const float* sigma;
  __attribute__((always_inline)) inline void put(int64_t i, __m512 e) const {
    if (kScale) e = _mm512_add_ps(_mm512_loadu_ps(mu + i), _mm512_mul_ps(_mm512_loadu_ps(sigma + i), e));
    _mm512_storeu_ps(out + i, e);
  }
  Sink advanced(int64_t n) const { return {out + n, kScale ? mu + n : mu, kScale ? sigma + n : sigma}; }
};

// 8 B blocks' normals from their Philox words w[4 B]: element 4 i + j of the sink is word j of block i.
template <int B, bool kScale>
__attribute__((always_inline)) inline void blocksOut(const NormalCoefficients& k, const __m256i* w,
                                                     const Sink<kScale>& sink) {
  // groups: words (0, 1) and (2, 3) of each run of 8 blocks
  __m256i w0[2 * B], w1[2 * B];
  for (int b = 0; b < B; ++b) {
    w0[2 * b] = w[4 * b];
    w1[2 * b] = w[4 * b + 1];
    w0[2 * b + 1] = w[4 * b + 2];
    w1[2 * b + 1] = w[4 * b + 3];
  }
  __m256 c[2 * B], s[2 * B];
  if (fastMode == 1 || !normals8Fast<2 * B>(k, w0, w1, c, s)) normals8<2 * B>(k, w0, w1, c, s);
  // block i's four normals (c0[i], s0[i], c1[i], s1[i]) side by side: from p = (c0, s0) and
  // q = (c1, s1), elements 4 i + j of the 32 are p[i], p[8 + i], q[i], q[8 + i] (two permutes;
  // the 4 x 8 transpose in 256-bit unpacks took 12 shuffles, and 1.01-1.015x the time)
  const __m512i lo = _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(4));
  for (int b = 0; b < B; ++b) {
    const __m512 p = _mm512_insertf32x8(_mm512_castps256_ps512(c[2 * b]), s[2 * b], 1);
    const __m512 q = _mm512_insertf32x8(_mm512_castps256_ps512(c[2 * b + 1]), s[2 * b + 1], 1);
    sink.put(32 * b, _mm512_permutex2var_ps(p, lo, q));
    sink.put(32 * b + 16, _mm512_permutex2var_ps(p, hi, q));
  }
}

// `blocks` whole blocks' normals from `block` into the sink, 8 blocks at a time (blocks % 8 left).
template <bool kScale>
void blocksFrom(uint32_t k0, uint32_t k1, uint64_t block, int64_t blocks, Sink<kScale> sink) {
  const NormalCoefficients& k = kNormalCoefficients;
  int64_t b = 0;
  // 24 blocks a step: six chains of 8 pairs in flight (four: 0.93-0.95x slower; eight: 1.1x)
  for (; b + 24 <= blocks; b += 24, sink = sink.advanced(96)) {
    __m256i w[12];
    philox8(k0, k1, block + static_cast<uint64_t>(b), w);
    philox8(k0, k1, block + static_cast<uint64_t>(b) + 8, w + 4);
    philox8(k0, k1, block + static_cast<uint64_t>(b) + 16, w + 8);
    blocksOut<3>(k, w, sink);
  }
  for (; b + 16 <= blocks; b += 16, sink = sink.advanced(64)) {
    __m256i w[8];
    philox8(k0, k1, block + static_cast<uint64_t>(b), w);
    philox8(k0, k1, block + static_cast<uint64_t>(b) + 8, w + 4);
    blocksOut<2>(k, w, sink);
  }
  for (; b + 8 <= blocks; b += 8, sink = sink.advanced(32)) {
    __m256i w[4];
    philox8(k0, k1, block + static_cast<uint64_t>(b), w);
    blocksOut<1>(k, w, sink);
  }
}

}  // namespace

bool normalBlocksAvx512(uint32_t k0, uint32_t k1, uint64_t block, int64_t blocks, float* out) {
  blocksFrom<false>(k0, k1, block, blocks, {out, nullptr, nullptr});
  return true;
}

bool normalLocScaleBlocksAvx512(uint32_t k0, uint32_t k1, uint64_t block, int64_t blocks, const float* mu,
                                const float* sigma, float* w) {
  blocksFrom<true>(k0, k1, block, blocks, {w, mu, sigma});
  return true;
}

void setNormalFastMode(int mode) { fastMode = mode; }

bool normalsFromWordsAvx512(const uint32_t* words, int64_t blocks, float* out) {
  if (blocks % 16 != 0) return false;
  const NormalCoefficients& k = kNormalCoefficients;
  // lane i of vector j: word j of block i, as philox8 lays them out
  const __m256i idx = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  for (int64_t b = 0; b < blocks; b += 16, out += 64, words += 64) {
    __m256i w[8];
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        w[4 * h + j] = _mm256_i32gather_epi32(reinterpret_cast<const int*>(words + 32 * h + j), idx, 4);
    blocksOut<2>(k, w, Sink<false>{out, nullptr, nullptr});
  }
  return true;
}

}  // namespace fp32
}  // namespace qbnn

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

namespace qbnn {
namespace fp32 {
bool normalBlocksAvx512(uint32_t, uint32_t, uint64_t, int64_t, float*) { return false; }
bool normalLocScaleBlocksAvx512(uint32_t, uint32_t, uint64_t, int64_t, const float*, const float*, float*) {
  return false;
}
void setNormalFastMode(int) {}
bool normalsFromWordsAvx512(const uint32_t*, int64_t, float*) { return false; }
}  // namespace fp32
}  // namespace qbnn

#endif
