// AVX-512 softplus, sigmoid, exp, log and sqrt (see unary.h), with the polynomials of math_avx512.h.
#include "../common.h"
#include "unary.h"

#if QBNN_X86
#include <cmath>

#include "avx512_region.h"

QBNN_FP32_AVX512_BEGIN

#include "interleaved_avx512.h"
#include "math_avx512.h"

namespace qbnn {
namespace fp32 {
using namespace avx512;

namespace {

using interleaved::Vec;
using interleaved::splat;

// math_avx512.h's softplus and sigmoid operation for operation, on K interleaved vectors (one
// chain alone is latency-bound): the same values, bit for bit.
template <int K>
Vec<K> absK(Vec<K> a) {
  Vec<K> out;
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) out.v[k] = _mm512_abs_ps(a.v[k]);
  return out;
}

template <int K>
Vec<K> softplusK(Vec<K> x) {
  using namespace interleaved;
  const Vec<K> zero = splat<K>(0.f), one = splat<K>(1.f), lo = splat<K>(-13.942385152878742f);
  const Vec<K> e = expK(zero - absK(x));
  // log1pUnit(e): the log of the rounded 1 + e plus the part rounding lost
  const Vec<K> u = one + e;
  const Vec<K> log1p = logK(u) + (e - (u - one)) / u;
  Vec<K> y = max(x, zero) + log1p;
  y = where(lessThan(x, lo), e, y);
  y = where(greaterThan(x, zero - lo), x, y);
  return where(isNan(x), x, y);
}

template <int K>
Vec<K> sigmoidK(Vec<K> x) {
  using namespace interleaved;
  const Vec<K> one = splat<K>(1.f);
  return where(isNan(x), x, one / (one + expK(splat<K>(0.f) - x)));
}

// y = f(x) over [0, n), 16 K floats a step; everything f calls inlined (flatten), so the K
// vectors stay in registers.
template <int K, typename F>
__attribute__((flatten)) void mapK(const float* x, float* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; i += 16 * K) {
    __mmask16 m[K];
    Vec<K> v;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      m[k] = tailMask(n - i - 16 * k);
      v.v[k] = _mm512_maskz_loadu_ps(m[k], x + i + 16 * k);
    }
    const Vec<K> r = f(v);
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) _mm512_mask_storeu_ps(y + i + 16 * k, m[k], r.v[k]);
  }
}

// out = g(a, b, f(x)) over [0, n), 16 K floats a step (flattened, as mapK).
template <int K, typename F, typename G>
__attribute__((flatten)) void map3K(const float* x, const float* a, const float* b, float* out, int64_t n, F f,
                                    G g) {
  for (int64_t i = 0; i < n; i += 16 * K) {
    __mmask16 m[K];
    Vec<K> xv, av, bv;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      m[k] = tailMask(n - i - 16 * k);
      xv.v[k] = _mm512_maskz_loadu_ps(m[k], x + i + 16 * k);
      av.v[k] = _mm512_maskz_loadu_ps(m[k], a + i + 16 * k);
      bv.v[k] = _mm512_maskz_loadu_ps(m[k], b + i + 16 * k);
    }
    const Vec<K> r = g(av, bv, f(xv));
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) _mm512_mask_storeu_ps(out + i + 16 * k, m[k], r.v[k]);
  }
}

}  // namespace

bool locScaleAvx512(bool grad, const float* first, const float* rho, const float* eps, float* out, int64_t n) {
  using interleaved::operator+;
  using interleaved::operator*;
  if (grad)
    map3K<2>(rho, first, eps, out, n, [](Vec<2> v) { return sigmoidK(v); },
             [](Vec<2> d, Vec<2> e, Vec<2> sg) { return (d * e) * sg; });
  else
    map3K<2>(rho, first, eps, out, n, [](Vec<2> v) { return softplusK(v); },
             [](Vec<2> mu, Vec<2> e, Vec<2> sp) { return mu + sp * e; });
  return true;
}

bool unaryAvx512(int op, const float* x, float* y, int64_t n) {
  if (op == UNARY_SOFTPLUS) {
    mapK<4>(x, y, n, [](Vec<4> v) { return softplusK(v); });
    return true;
  }
  if (op == UNARY_SIGMOID) {
    mapK<4>(x, y, n, [](Vec<4> v) { return sigmoidK(v); });
    return true;
  }
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
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

QBNN_FP32_AVX512_END

#else

namespace qbnn {
namespace fp32 {
bool unaryAvx512(int, const float*, float*, int64_t) { return false; }
bool locScaleAvx512(bool, const float*, const float*, const float*, float*, int64_t) { return false; }
}  // namespace fp32
}  // namespace qbnn

#endif
