// AVX-512 bodies of the Gaussian KL kernels (see gaussian_kl.h): 48 elements a step as three
// interleaved vectors (four spill registers in the gradient); exp and log by math_avx512.h's polynomials, softplus and sigmoid from one
// exp; each element's KL term in float32, summed in float64 (two vector partials).
#include "../common.h"
#include "gaussian_kl.h"

#if QBNN_X86
#include "avx512_region.h"

QBNN_FP32_AVX512_BEGIN
// GCC 12 flags the deliberately undefined vectors of its own AVX-512 headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "interleaved_avx512.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr float kLinearBelow = -20.f;  // log softplus(rho) = rho below (LOG_SOFTPLUS_LINEAR_BELOW)

using namespace interleaved;

template <int K>
QBNN_VEC_INLINE Vec<K> load(const float* p, int64_t left, Mask<K>& m) {
  Vec<K> out;
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    m.m[k] = tailMask(left - 16 * k);
    out.v[k] = _mm512_maskz_loadu_ps(m.m[k], p + 16 * k);
  }
  return out;
}

// Adds the KL terms (less log s0 - 1/2) of 16 K elements to acc, in float32 each; with Sample,
// also writes the weight sample w = mu + sp eps from the same sp = softplus(rho).
template <bool Sample, int K>
QBNN_VEC_INLINE void klStep(const float* mu, const float* rho, const float* eps, float* w, int64_t left, float m0,
                            float inv2s2, __m512d* acc) {
  Mask<K> m;
  const Vec<K> r = load<K>(rho, left, m);
  const Vec<K> mv = load<K>(mu, left, m);
  const Vec<K> sp = softplusK(r, expK(negAbs(r)));
  if constexpr (Sample) {
    const Vec<K> wv = mv + sp * load<K>(eps, left, m);
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) _mm512_mask_storeu_ps(w + 16 * k, m.m[k], wv.v[k]);
  }
  const Vec<K> d = mv - splat<K>(m0);
  const Vec<K> logS = where(lessThan(r, splat<K>(kLinearBelow)), r, logK(sp));
  const Vec<K> t = fma(d, d, sp * sp) * splat<K>(inv2s2) - logS;
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    const __m512 tk = _mm512_maskz_mov_ps(m.m[k], t.v[k]);  // lanes past the end add 0
    acc[0] = _mm512_add_pd(acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(tk)));
    acc[1] = _mm512_add_pd(acc[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(tk, 1)));
  }
}

// dy times the KL's gradient at 16 K elements; with Sample, plus the sample's gradient from dw
// (dMu = dw + .., dRho = (dw eps) sigmoid(rho) + ..).
template <bool Sample, int K>
QBNN_VEC_INLINE void klGradStep(const float* mu, const float* rho, const float* eps, const float* dw, int64_t left,
                                __m512d m0, __m512d scaleMu, float invS2, float dy, float* dMu, float* dRho) {
  Mask<K> m;
  const Vec<K> r = load<K>(rho, left, m);
  const Vec<K> one = splat<K>(1.f);
  const Vec<K> e = expK(negAbs(r));
  const Vec<K> sp = softplusK(r, e);
  // sigmoid: 1 / (1 + e) for r >= 0, e / (1 + e) below; NaN stays NaN
  const Vec<K> inv = one / (one + e);
  const Vec<K> sg = where(isNan(r), r, where(lessThan(r, splat<K>(0.f)), e * inv, inv));
  const Vec<K> dLogS = where(lessThan(r, splat<K>(kLinearBelow)), one, sg / sp);
  const Vec<K> kl = splat<K>(dy) * (sg * sp * splat<K>(invS2) - dLogS);
  Vec<K> dv;
  if constexpr (Sample) dv = load<K>(dw, left, m);
  Vec<K> g = kl;
  if constexpr (Sample) g = (dv * load<K>(eps, left, m)) * sg + kl;
  const Vec<K> mv = load<K>(mu, left, m);
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    _mm512_mask_storeu_ps(dRho + 16 * k, m.m[k], g.v[k]);
    const __m512 x = mv.v[k];
    const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), m0), scaleMu));
    const __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)), m0), scaleMu));
    __m512 gMu = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    if constexpr (Sample) gMu = _mm512_add_ps(dv.v[k], gMu);
    _mm512_mask_storeu_ps(dMu + 16 * k, m.m[k], gMu);
  }
}

#ifndef QBNN_KL_PREFETCH
#define QBNN_KL_PREFETCH 512
#endif
// Floats ahead of the step that each stream's lines are prefetched. The kernels' exp / log chains
// fill the out-of-order window, so few demand loads are in flight and the weights of a LeNet-5 fc1
// (5 MB a stream) came from memory at about half its bandwidth.
constexpr int64_t kAhead = QBNN_KL_PREFETCH;

// The three lines of 48 floats at p + kAhead, for reading (or, with Write, to be written).
template <bool Write = false>
QBNN_VEC_INLINE void prefetch48(const float* p) {
  const char* c = reinterpret_cast<const char*>(p + kAhead);
  constexpr int hint = Write ? _MM_HINT_ET0 : _MM_HINT_T0;
  _mm_prefetch(c, static_cast<_mm_hint>(hint));
  _mm_prefetch(c + 64, static_cast<_mm_hint>(hint));
  _mm_prefetch(c + 128, static_cast<_mm_hint>(hint));
}

template <bool Sample>
void klChunk(const float* mu, const float* rho, const float* eps, float* w, int64_t n, double m0, double inv2s2,
             double* sum) {
  __m512d acc[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
  const float fm0 = static_cast<float>(m0), finv = static_cast<float>(inv2s2);
  int64_t i = 0;
  for (; i + 48 <= n; i += 48) {
    prefetch48(mu + i);
    prefetch48(rho + i);
    if constexpr (Sample) {
      prefetch48(eps + i);
      prefetch48<true>(w + i);
    }
    klStep<Sample, 3>(mu + i, rho + i, eps + i, w + i, n - i, fm0, finv, acc);
  }
  for (; i < n; i += 16) klStep<Sample, 1>(mu + i, rho + i, eps + i, w + i, n - i, fm0, finv, acc);
  *sum += _mm512_reduce_add_pd(_mm512_add_pd(acc[0], acc[1]));
}

template <bool Sample>
void klGradChunk(const float* mu, const float* rho, const float* eps, const float* dw, int64_t n, double m0,
                 double scaleMu, float invS2, float dy, float* dMu, float* dRho) {
  const __m512d vm0 = _mm512_set1_pd(m0), vScale = _mm512_set1_pd(scaleMu);
  int64_t i = 0;
  for (; i + 48 <= n; i += 48) {
    prefetch48(mu + i);
    prefetch48(rho + i);
    if constexpr (Sample) {
      prefetch48(eps + i);
      prefetch48(dw + i);
    }
    prefetch48<true>(dMu + i);
    prefetch48<true>(dRho + i);
    klGradStep<Sample, 3>(mu + i, rho + i, eps + i, dw + i, n - i, vm0, vScale, invS2, dy, dMu + i, dRho + i);
  }
  for (; i < n; i += 16)
    klGradStep<Sample, 1>(mu + i, rho + i, eps + i, dw + i, n - i, vm0, vScale, invS2, dy, dMu + i, dRho + i);
}

}  // namespace

bool gaussianKlChunkAvx512(const float* mu, const float* rho, const float* eps, float* w, int64_t n, double m0,
                           double inv2s2, double* sum) {
  (eps != nullptr ? klChunk<true> : klChunk<false>)(mu, rho, eps, w, n, m0, inv2s2, sum);
  return true;
}

bool gaussianKlGradChunkAvx512(const float* mu, const float* rho, const float* eps, const float* dw, int64_t n,
                               double m0, double scaleMu, float invS2, float dy, float* dMu, float* dRho) {
  (dw != nullptr ? klGradChunk<true> : klGradChunk<false>)(mu, rho, eps, dw, n, m0, scaleMu, invS2, dy, dMu, dRho);
  return true;
}

}  // namespace fp32
}  // namespace qbnn

#pragma GCC diagnostic pop
QBNN_FP32_AVX512_END

#else

namespace qbnn {
namespace fp32 {
bool gaussianKlChunkAvx512(const float*, const float*, const float*, float*, int64_t, double, double, double*) {
  return false;
}
bool gaussianKlGradChunkAvx512(const float*, const float*, const float*, const float*, int64_t, double, double, float,
                               float, float*, float*) {
  return false;
}
}  // namespace fp32
}  // namespace qbnn

#endif
