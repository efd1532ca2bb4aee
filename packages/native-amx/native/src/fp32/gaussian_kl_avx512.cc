// AVX-512 bodies of the Gaussian KL kernels (see gaussian_kl.h): 16 elements a step, softplus,
// sigmoid and log by the polynomials of math_avx512.h (softplus and sigmoid from one exp), the
// per-element terms in float64 as the portable loop computes them, summed in 4 vector partials.
#include "../common.h"
#include "gaussian_kl.h"

#if QBNN_X86
#include "avx512_region.h"

QBNN_FP32_AVX512_BEGIN

#include "math_avx512.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr float kLinearBelow = -20.f;  // log softplus(rho) = rho below (LOG_SOFTPLUS_LINEAR_BELOW)

}  // namespace

bool gaussianKlChunkAvx512(const float* mu, const float* rho, int64_t n, double m0, double inv2s2, double* sum) {
  __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
  const __m512d vm0 = _mm512_set1_pd(m0), vInv = _mm512_set1_pd(inv2s2);
  for (int64_t i = 0, step = 0; i < n; i += 16, ++step) {
    const __mmask16 m = tailMask(n - i);
    const __m512 r = _mm512_maskz_loadu_ps(m, rho + i);
    const __m512 mv = _mm512_maskz_loadu_ps(m, mu + i);
    const __m512 sp = avx512::softplus(r);
    const __m512 logS = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r, _mm512_set1_ps(kLinearBelow), _CMP_LT_OQ),
                                             avx512::logPs(sp), r);
    for (int half = 0; half < 2; ++half) {
      const __mmask8 hm = static_cast<__mmask8>(m >> (8 * half));
      auto lo = [&](__m512 v) {
        return _mm512_cvtps_pd(half == 0 ? _mm512_castps512_ps256(v) : _mm512_extractf32x8_ps(v, 1));
      };
      const __m512d d = _mm512_sub_pd(lo(mv), vm0);
      const __m512d s = lo(sp);
      const __m512d t = _mm512_add_pd(_mm512_sub_pd(_mm512_setzero_pd(), lo(logS)),
                                      _mm512_mul_pd(_mm512_add_pd(_mm512_mul_pd(d, d), _mm512_mul_pd(s, s)), vInv));
      __m512d& a = acc[(2 * step + half) & 3];
      a = _mm512_mask_add_pd(a, hm, a, t);
    }
  }
  *sum += _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])));
  return true;
}

bool gaussianKlGradChunkAvx512(const float* mu, const float* rho, int64_t n, double m0, double scaleMu, float invS2,
                               float dy, float* dMu, float* dRho) {
  const __m512d vm0 = _mm512_set1_pd(m0), vScale = _mm512_set1_pd(scaleMu);
  const __m512 vInv = _mm512_set1_ps(invS2), vdy = _mm512_set1_ps(dy), one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    const __m512 r = _mm512_maskz_loadu_ps(m, rho + i);
    const __m512 mv = _mm512_maskz_loadu_ps(m, mu + i);
    __m512 sp, sg;
    avx512::softplusSigmoid(r, sp, sg);
    const __m512 dLogS = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r, _mm512_set1_ps(kLinearBelow), _CMP_LT_OQ),
                                              _mm512_div_ps(sg, sp), one);
    const __m512 g = _mm512_mul_ps(vdy, _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(sg, sp), vInv), dLogS));
    _mm512_mask_storeu_ps(dRho + i, m, g);
    const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(mv)), vm0), vScale));
    const __m256 hi =
        _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(mv, 1)), vm0), vScale));
    _mm512_mask_storeu_ps(dMu + i, m, _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
  }
  return true;
}

}  // namespace fp32
}  // namespace qbnn

QBNN_FP32_AVX512_END

#else

namespace qbnn {
namespace fp32 {
bool gaussianKlChunkAvx512(const float*, const float*, int64_t, double, double, double*) { return false; }
bool gaussianKlGradChunkAvx512(const float*, const float*, int64_t, double, double, float, float, float*, float*) {
  return false;
}
}  // namespace fp32
}  // namespace qbnn

#endif
