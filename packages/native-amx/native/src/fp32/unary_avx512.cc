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

// The lanes of one step of K vectors: all of them (plain loads and stores) or the tail's.
template <int K, bool kWhole>
struct Lanes {
  __mmask16 m[K];
  __attribute__((always_inline)) inline __m512 load(const float* p, int k) const {
    return kWhole ? _mm512_loadu_ps(p + 16 * k) : _mm512_maskz_loadu_ps(m[k], p + 16 * k);
  }
  __attribute__((always_inline)) inline void store(float* p, int k, __m512 v) const {
    if (kWhole)
      _mm512_storeu_ps(p + 16 * k, v);
    else
      _mm512_mask_storeu_ps(p + 16 * k, m[k], v);
  }
};

// step(i, lanes) over [0, n) in steps of 16 K floats: whole steps with plain loads and stores, the
// last partial one with tail masks. Tail masks computed and applied in every step took 1.6-2.6x
// the time on this Zen 5 over 1.26 M floats (softplus 0.68 vs 0.89-1.8 ms, sigmoid 0.23 vs 0.40,
// exp 0.21 vs 0.38, log 0.25 vs 0.39, sqrt 0.18 vs 0.28), though a masked load or store alone
// costs about what a plain one does.
template <int K, typename Step>
__attribute__((always_inline)) inline void forSteps(int64_t n, Step step) {
  int64_t i = 0;
  for (; i + 16 * K <= n; i += 16 * K) step(i, Lanes<K, true>{});
  if (i == n) return;
  Lanes<K, false> tail;
  for (int k = 0; k < K; ++k) tail.m[k] = tailMask(n - i - 16 * k);
  step(i, tail);
}

// y = f(x) over [0, n), 16 K floats a step; everything f calls inlined (flatten), so the K
// vectors stay in registers.
template <int K, typename F>
__attribute__((flatten)) void mapK(const float* x, float* y, int64_t n, F f) {
  forSteps<K>(n, [&](int64_t i, const auto& lanes) {
    Vec<K> v;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) v.v[k] = lanes.load(x + i, k);
    const Vec<K> r = f(v);
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) lanes.store(y + i, k, r.v[k]);
  });
}

// out = g(a, b, f(x)) over [0, n), 16 K floats a step (flattened, as mapK).
template <int K, typename F, typename G>
__attribute__((flatten)) void map3K(const float* x, const float* a, const float* b, float* out, int64_t n, F f,
                                    G g) {
  forSteps<K>(n, [&](int64_t i, const auto& lanes) {
    Vec<K> xv, av, bv;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      xv.v[k] = lanes.load(x + i, k);
      av.v[k] = lanes.load(a + i, k);
      bv.v[k] = lanes.load(b + i, k);
    }
    const Vec<K> r = g(av, bv, f(xv));
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) lanes.store(out + i, k, r.v[k]);
  });
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
  const auto each = [&](auto fn) {
    forSteps<1>(n, [&](int64_t i, const auto& lanes) { lanes.store(y + i, 0, fn(lanes.load(x + i, 0))); });
  };
  switch (op) {
    case UNARY_EXP: each([](__m512 v) { return expNan(v); }); break;
    case UNARY_LOG: each([](__m512 v) { return logPs(v); }); break;
    default: each([](__m512 v) { return _mm512_sqrt_ps(v); }); break;
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
