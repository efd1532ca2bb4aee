// K independent AVX-512 float vectors stepped together (Vec<K>): every operation is K
// instructions in a row, so K dependency chains overlap. One chain of exp / log / softplus alone
// is latency-bound (~130 cycles of dependent FMAs and divisions a vector on these cores); three
// interleaved ones ran the Gaussian KL 2-2.5x faster (four spilled registers). expK and logK are
// math_avx512.h's expPs and logPs operation for operation. Include only inside an AVX-512 target
// region, after <immintrin.h>.
#pragma once

#include <cmath>
#include <initializer_list>

// Forced: GCC otherwise keeps expK / logK / softplusK out of line and passes Vec<4> (256 bytes)
// through memory.
#define QBNN_VEC_INLINE inline __attribute__((always_inline))

namespace qbnn {
namespace fp32 {
namespace interleaved {

template <int K>
struct Vec {
  __m512 v[K];
};
template <int K>
struct Mask {
  __mmask16 m[K];
};

#define QBNN_VEC_MAP(expr)              \
  Vec<K> out;                          \
  _Pragma("GCC unroll 4") for (int k = 0; k < K; ++k) out.v[k] = (expr); \
  return out

template <int K> QBNN_VEC_INLINE Vec<K> splat(float x) { QBNN_VEC_MAP(_mm512_set1_ps(x)); }
template <int K> QBNN_VEC_INLINE Vec<K> operator+(Vec<K> a, Vec<K> b) { QBNN_VEC_MAP(_mm512_add_ps(a.v[k], b.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> operator-(Vec<K> a, Vec<K> b) { QBNN_VEC_MAP(_mm512_sub_ps(a.v[k], b.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> operator*(Vec<K> a, Vec<K> b) { QBNN_VEC_MAP(_mm512_mul_ps(a.v[k], b.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> operator/(Vec<K> a, Vec<K> b) { QBNN_VEC_MAP(_mm512_div_ps(a.v[k], b.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> fma(Vec<K> a, Vec<K> b, Vec<K> c) { QBNN_VEC_MAP(_mm512_fmadd_ps(a.v[k], b.v[k], c.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> fnma(Vec<K> a, Vec<K> b, Vec<K> c) { QBNN_VEC_MAP(_mm512_fnmadd_ps(a.v[k], b.v[k], c.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> max(Vec<K> a, Vec<K> b) { QBNN_VEC_MAP(_mm512_max_ps(a.v[k], b.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> min(Vec<K> a, Vec<K> b) { QBNN_VEC_MAP(_mm512_min_ps(a.v[k], b.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> negAbs(Vec<K> a) { QBNN_VEC_MAP(_mm512_or_ps(a.v[k], _mm512_set1_ps(-0.f))); }
template <int K> QBNN_VEC_INLINE Vec<K> roundInt(Vec<K> a) {
  QBNN_VEC_MAP(_mm512_roundscale_ps(a.v[k], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
template <int K> QBNN_VEC_INLINE Vec<K> scalef(Vec<K> a, Vec<K> b) { QBNN_VEC_MAP(_mm512_scalef_ps(a.v[k], b.v[k])); }
template <int K> QBNN_VEC_INLINE Vec<K> mantissa(Vec<K> a) { QBNN_VEC_MAP(_mm512_getmant_ps(a.v[k], _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src)); }
template <int K> QBNN_VEC_INLINE Vec<K> exponent(Vec<K> a) { QBNN_VEC_MAP(_mm512_getexp_ps(a.v[k])); }
// b where m is set, else a
template <int K> QBNN_VEC_INLINE Vec<K> where(Mask<K> m, Vec<K> b, Vec<K> a) { QBNN_VEC_MAP(_mm512_mask_blend_ps(m.m[k], a.v[k], b.v[k])); }
#undef QBNN_VEC_MAP

template <int Pred, int K>
QBNN_VEC_INLINE Mask<K> compare(Vec<K> a, Vec<K> b) {
  Mask<K> out;
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) out.m[k] = _mm512_cmp_ps_mask(a.v[k], b.v[k], Pred);
  return out;
}
template <int K> QBNN_VEC_INLINE Mask<K> lessThan(Vec<K> a, Vec<K> b) { return compare<_CMP_LT_OQ>(a, b); }
template <int K> QBNN_VEC_INLINE Mask<K> greaterThan(Vec<K> a, Vec<K> b) { return compare<_CMP_GT_OQ>(a, b); }
template <int K> QBNN_VEC_INLINE Mask<K> equal(Vec<K> a, Vec<K> b) { return compare<_CMP_EQ_OQ>(a, b); }
template <int K> QBNN_VEC_INLINE Mask<K> isNan(Vec<K> a) { return compare<_CMP_UNORD_Q>(a, a); }

// math_avx512.h's expPs, operation for operation.
template <int K>
QBNN_VEC_INLINE Vec<K> expK(Vec<K> x) {
  x = max(min(x, splat<K>(89.0f)), splat<K>(-110.0f));
  const Vec<K> n = roundInt(x * splat<K>(1.44269504088896341f));
  Vec<K> r = fnma(n, splat<K>(0.693359375f), x);
  r = fnma(n, splat<K>(-2.12194440e-4f), r);
  Vec<K> p = splat<K>(1.f / 5040);
  for (float c : {1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f}) p = fma(p, r, splat<K>(c));
  return scalef(p, n);
}

// math_avx512.h's logPs, operation for operation.
template <int K>
QBNN_VEC_INLINE Vec<K> logK(Vec<K> x) {
  const Vec<K> one = splat<K>(1.f);
  const Vec<K> m = mantissa(x);
  const Vec<K> e = exponent(x * splat<K>(1.f / 0.75f));
  const Vec<K> s = (m - one) / (m + one);
  const Vec<K> s2 = s * s;
  Vec<K> p = splat<K>(2.f / 11);
  for (float c : {2.f / 9, 2.f / 7, 2.f / 5, 2.f / 3, 2.f}) p = fma(p, s2, splat<K>(c));
  Vec<K> y = fma(e, splat<K>(0.693147180559945f), p * s);
  const Vec<K> zero = splat<K>(0.f);
  y = where(equal(x, zero), splat<K>(-INFINITY), y);
  y = where(lessThan(x, zero), splat<K>(NAN), y);
  y = where(equal(x, splat<K>(INFINITY)), x, y);
  return where(isNan(x), x, y);
}

// softplus(r) with unary.h's thresholds, from e = exp(-|r|) and one division:
// log(1 + e) = 2 atanh(s), s = e / (2 + e) in [0, 1/3], to s^13 (truncation < 2^-26 relative).
template <int K>
QBNN_VEC_INLINE Vec<K> softplusK(Vec<K> r, Vec<K> e) {
  const Vec<K> lo = splat<K>(-13.942385152878742f);
  const Vec<K> s = e / (e + splat<K>(2.f));
  const Vec<K> z = s * s;
  Vec<K> p = splat<K>(2.f / 13);
  for (float c : {2.f / 11, 2.f / 9, 2.f / 7, 2.f / 5, 2.f / 3, 2.f}) p = fma(p, z, splat<K>(c));
  Vec<K> y = fma(p, s, max(r, splat<K>(0.f)));
  y = where(lessThan(r, lo), e, y);
  y = where(greaterThan(r, splat<K>(13.942385152878742f)), r, y);
  return where(isNan(r), r, y);  // NaN stays NaN
}

}  // namespace interleaved
}  // namespace fp32
}  // namespace qbnn
