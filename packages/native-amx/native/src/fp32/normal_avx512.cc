// AVX-512 normals (see normal.h): 8 Philox blocks per iteration, the 16 word pairs as two
// vectors of 8 doubles, every operation the scalar reference's in the same order (mul and add
// separately, never fused), so each lane gives the scalar value bit for bit.
#include "../common.h"
#include "normal.h"

#if QBNN_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,avx512f,avx512bw,avx512vl,avx512dq")
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

// The normals of the pairs (w0[i], w1[i]), i < 8: cos results in c, sin results in s.
inline void normals8(const NormalCoefficients& k, __m256i w0, __m256i w1, __m256& c, __m256& s) {
  const __m512d one = _mm512_set1_pd(1.0);
  // log(m 2^-24), m = top24(w0) + 1: m = f 2^e exactly (getexp / getmant), f in [1, 2)
  const __m512d m = _mm512_cvtepu32_pd(_mm256_add_epi32(_mm256_srli_epi32(w0, 8), _mm256_set1_epi32(1)));
  __m512d e = _mm512_getexp_pd(m);
  __m512d f = _mm512_getmant_pd(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
  const __mmask8 big = _mm512_cmp_pd_mask(f, _mm512_set1_pd(kSqrt2), _CMP_GT_OQ);
  f = _mm512_mask_mul_pd(f, big, f, _mm512_set1_pd(0.5));
  e = _mm512_mask_add_pd(e, big, e, one);
  const __m512d sx = _mm512_div_pd(_mm512_sub_pd(f, one), _mm512_add_pd(f, one));
  const __m512d zx = _mm512_mul_pd(sx, sx);
  __m512d p = _mm512_set1_pd(k.log[NormalCoefficients::kLogTerms - 1]);
  for (int i = NormalCoefficients::kLogTerms - 2; i >= 0; --i)
    p = _mm512_add_pd(_mm512_mul_pd(p, zx), _mm512_set1_pd(k.log[i]));
  const __m512d lg = _mm512_add_pd(_mm512_mul_pd(_mm512_sub_pd(e, _mm512_set1_pd(24.0)), _mm512_set1_pd(kLn2)),
                                   _mm512_mul_pd(_mm512_add_pd(sx, sx), p));
  const __m512d r = _mm512_sqrt_pd(_mm512_mul_pd(_mm512_set1_pd(-2.0), lg));
  // sin and cos of q pi / 2 + a
  const __m256i t = _mm256_srli_epi32(w1, 8);
  const __m256i q = _mm256_srli_epi32(t, 22);
  const __m512d a =
      _mm512_mul_pd(_mm512_cvtepu32_pd(_mm256_and_si256(t, _mm256_set1_epi32(0x3fffff))), _mm512_set1_pd(kAngleUnit));
  const __m512d z = _mm512_mul_pd(a, a);
  __m512d ps = _mm512_set1_pd(k.sin[NormalCoefficients::kTrigTerms - 1]);
  __m512d pc = _mm512_set1_pd(k.cos[NormalCoefficients::kTrigTerms - 1]);
  for (int i = NormalCoefficients::kTrigTerms - 2; i >= 0; --i) {
    ps = _mm512_add_pd(_mm512_mul_pd(ps, z), _mm512_set1_pd(k.sin[i]));
    pc = _mm512_add_pd(_mm512_mul_pd(pc, z), _mm512_set1_pd(k.cos[i]));
  }
  const __m512d sa = _mm512_mul_pd(a, ps);
  const __mmask8 odd = _mm256_test_epi32_mask(q, _mm256_set1_epi32(1));
  const __mmask8 neg = _mm256_test_epi32_mask(q, _mm256_set1_epi32(2));
  const __mmask8 negCos = _mm256_test_epi32_mask(_mm256_xor_si256(q, _mm256_srli_epi32(q, 1)), _mm256_set1_epi32(1));
  const __m512d sn = negateIf(_mm512_mask_blend_pd(odd, sa, pc), neg);
  const __m512d cs = negateIf(_mm512_mask_blend_pd(odd, pc, sa), negCos);
  c = _mm512_cvtpd_ps(_mm512_mul_pd(r, cs));
  s = _mm512_cvtpd_ps(_mm512_mul_pd(r, sn));
}

}  // namespace

bool normalBlocksAvx512(uint32_t k0, uint32_t k1, uint64_t block, int64_t blocks, float* out) {
  const NormalCoefficients& k = normalCoefficients();
  alignas(32) float v[4][8];
  for (int64_t b = 0; b + 8 <= blocks; b += 8, out += 32) {
    __m256i w[4];
    philox8(k0, k1, block + static_cast<uint64_t>(b), w);
    __m256 c0, s0, c1, s1;
    normals8(k, w[0], w[1], c0, s0);  // words 0, 1 of each block
    normals8(k, w[2], w[3], c1, s1);  // words 2, 3
    _mm256_store_ps(v[0], c0);
    _mm256_store_ps(v[1], s0);
    _mm256_store_ps(v[2], c1);
    _mm256_store_ps(v[3], s1);
    // element 4 i + j of the output is word j of block i
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 4; ++j) out[4 * i + j] = v[j][i];
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
}  // namespace fp32
}  // namespace qbnn

#endif
