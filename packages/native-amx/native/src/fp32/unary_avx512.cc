// AVX-512 softplus and sigmoid (see unary.h). exp: 2^n e^r with |r| <= ln2/2 and a degree-7
// Taylor polynomial; log(1 + t), 0 < t <= 1: log of the mantissa m in [0.75, 1.5) as
// 2 atanh((m - 1) / (m + 1)) to s^11, plus the exponent times ln 2, plus the rounding correction
// of 1 + t. Both are within a few ulp of the float64 result over the ranges used.
#include "../common.h"
#include "unary.h"

#if QBNN_X86
#include <immintrin.h>

#include <cmath>

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")

namespace qbnn {
namespace fp32 {
namespace {

inline __m512 expPs(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.0f)), _mm512_set1_ps(-110.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

// log(x): mantissa in [0.75, 1.5) and exponent (getmant / getexp handle subnormals), the
// mantissa's log as 2 atanh(s), s = (m - 1) / (m + 1), to s^11; 0 -> -inf, negative -> NaN, inf and NaN pass.
inline __m512 logPs(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
  const __m512 e = _mm512_getexp_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.f / 0.75f)));
  const __m512 s = _mm512_div_ps(_mm512_sub_ps(m, one), _mm512_add_ps(m, one));
  const __m512 s2 = _mm512_mul_ps(s, s);
  __m512 p = _mm512_set1_ps(2.f / 11);
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.f / 9));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.f / 7));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.f / 5));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.f / 3));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.f));
  __m512 y = _mm512_fmadd_ps(e, _mm512_set1_ps(0.693147180559945f), _mm512_mul_ps(p, s));
  const __m512 zero = _mm512_setzero_ps();
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ), y, _mm512_set1_ps(-INFINITY));
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), y, _mm512_set1_ps(NAN));
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ), y, x);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

// log(1 + t) for t in [0, 1]: log of the rounded 1 + t, plus the part of t that rounding lost.
inline __m512 log1pUnit(__m512 t) {
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 u = _mm512_add_ps(one, t);
  const __m512 corr = _mm512_div_ps(_mm512_sub_ps(t, _mm512_sub_ps(u, one)), u);
  return _mm512_add_ps(logPs(u), corr);
}

inline __m512 expNan(__m512 x) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), expPs(x), x); }

inline __m512 softplus(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-13.942385152878742f);
  const __m512 ex = expPs(_mm512_min_ps(x, _mm512_setzero_ps()));  // exp(x) where x < lo
  const __m512 enx = expPs(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
  const __m512 mid = _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), log1pUnit(enx));
  __m512 y = mid;
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), y, ex);
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_sub_ps(_mm512_setzero_ps(), lo), _CMP_GT_OQ), y, x);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);  // NaN stays NaN
}

inline __m512 sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 y = _mm512_div_ps(one, _mm512_add_ps(one, expPs(_mm512_sub_ps(_mm512_setzero_ps(), x))));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

}  // namespace

bool unaryAvx512(int op, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 r;
    switch (op) {
      case UNARY_SOFTPLUS: r = softplus(v); break;
      case UNARY_SIGMOID: r = sigmoid(v); break;
      case UNARY_EXP: r = expNan(v); break;
      case UNARY_LOG: r = logPs(v); break;
      default: r = _mm512_sqrt_ps(v); break;
    }
    _mm512_mask_storeu_ps(y + i, m, r);
  }
  return true;
}

}  // namespace fp32
}  // namespace qbnn

#pragma GCC pop_options

#else

namespace qbnn {
namespace fp32 {
bool unaryAvx512(int, const float*, float*, int64_t) { return false; }
}  // namespace fp32
}  // namespace qbnn

#endif
