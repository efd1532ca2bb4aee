// AVX-512 float32 exp / log / log1p / softplus / sigmoid polynomials shared by the element-wise
// kernels. exp: 2^n e^r with |r| <= ln2/2 and a degree-7 Taylor polynomial; log(1 + t),
// 0 < t <= 1: log of the mantissa m in [0.75, 1.5) as 2 atanh((m - 1) / (m + 1)) to s^11, plus the
// exponent times ln 2, plus the rounding correction of 1 + t. Both are within a few ulp of the
// float64 result over the ranges used. Include only inside an AVX-512 target region (after
// `#pragma GCC target(...)`); every function is static inline, private to that unit.
#pragma once

#include <immintrin.h>

#include <cmath>

namespace qbnn {
namespace fp32 {
namespace avx512 {

static inline __m512 expPs(__m512 x) {
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
static inline __m512 logPs(__m512 x) {
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
static inline __m512 log1pUnit(__m512 t) {
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 u = _mm512_add_ps(one, t);
  const __m512 corr = _mm512_div_ps(_mm512_sub_ps(t, _mm512_sub_ps(u, one)), u);
  return _mm512_add_ps(logPs(u), corr);
}

static inline __m512 expNan(__m512 x) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), expPs(x), x); }

// exp(x) below lo is exp(-|x|) there: one exp serves both branches.
static inline __m512 softplus(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-13.942385152878742f);
  const __m512 e = expPs(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
  const __m512 mid = _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), log1pUnit(e));
  __m512 y = mid;
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), y, e);
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_sub_ps(_mm512_setzero_ps(), lo), _CMP_GT_OQ), y, x);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);  // NaN stays NaN
}

static inline __m512 sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 y = _mm512_div_ps(one, _mm512_add_ps(one, expPs(_mm512_sub_ps(_mm512_setzero_ps(), x))));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}


// softplus(x) exactly as `softplus`, and sigmoid(x), from one exp(-|x|) = e: 1 / (1 + e) for
// x >= 0, e / (1 + e) below (no overflow, full relative accuracy for very negative x).
static inline void softplusSigmoid(__m512 x, __m512& sp, __m512& sg) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f);
  const __m512 lo = _mm512_set1_ps(-13.942385152878742f);
  const __m512 e = expPs(_mm512_sub_ps(zero, _mm512_abs_ps(x)));
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  __m512 y = _mm512_add_ps(_mm512_max_ps(x, zero), log1pUnit(e));
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), y, e);
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_sub_ps(zero, lo), _CMP_GT_OQ), y, x);
  sp = _mm512_mask_blend_ps(nan, y, x);
  const __m512 inv = _mm512_div_ps(one, _mm512_add_ps(one, e));
  const __m512 s = _mm512_mask_mul_ps(inv, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), e, inv);
  sg = _mm512_mask_blend_ps(nan, s, x);
}

}  // namespace avx512
}  // namespace fp32
}  // namespace qbnn
