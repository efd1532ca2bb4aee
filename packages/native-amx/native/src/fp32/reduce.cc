// See reduce.h.
#include "reduce.h"

#include <algorithm>
#include <vector>

#include "../common.h"
#include "parallel.h"
#include "pooling.h"
#include "sgemm.h"

#if QBNN_X86
#include "avx512_region.h"

QBNN_FP32_AVX512_QUIET_BEGIN
// GCC 12 flags the deliberately undefined vectors of its own _mm512_reduce_add_pd.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qbnn {
namespace fp32 {

// Adds a run of `inner` floats to 32 float64 partial sums (lane l takes positions l mod 32): 32
// values a step into four vectors (a masked tail).
void addRunAvx512(const float* x, int64_t inner, double* lanes) {
  __m512d acc[4];
  for (int v = 0; v < 4; ++v) acc[v] = _mm512_loadu_pd(lanes + 8 * v);
  for (int64_t i = 0; i < inner; i += 32) {
    const __m512 a = _mm512_maskz_loadu_ps(tailMask(inner - i), x + i);
    const __m512 b = _mm512_maskz_loadu_ps(tailMask(inner - i - 16), x + i + 16);
    acc[0] = _mm512_add_pd(acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
    acc[1] = _mm512_add_pd(acc[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
    acc[2] = _mm512_add_pd(acc[2], _mm512_cvtps_pd(_mm512_castps512_ps256(b)));
    acc[3] = _mm512_add_pd(acc[3], _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)));
  }
  for (int v = 0; v < 4; ++v) _mm512_storeu_pd(lanes + 8 * v, acc[v]);
}

// The 32 partial sums added in a fixed order, rounded once.
float combineLanesAvx512(const double* lanes) {
  const __m512d a0 = _mm512_loadu_pd(lanes), a1 = _mm512_loadu_pd(lanes + 8);
  const __m512d a2 = _mm512_loadu_pd(lanes + 16), a3 = _mm512_loadu_pd(lanes + 24);
  return static_cast<float>(_mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3))));
}

}  // namespace fp32
}  // namespace qbnn

#pragma GCC diagnostic pop
QBNN_FP32_AVX512_QUIET_END
#endif

namespace qbnn {
namespace fp32 {

#if QBNN_X86
void addRunAvx512(const float* x, int64_t inner, double* lanes);
float combineLanesAvx512(const double* lanes);
#endif

namespace {

// Partial sums of runs: 32 float64 lanes (AVX-512, runs of 16 or more) or the scalar twin's four
// (positions i mod 4 up to the run's last multiple of 4, the tail into the first); a run is added
// lane by lane, so summing run after run equals one pass over them all.
struct Lanes {
  bool vector;
  double v[32];
  explicit Lanes(int64_t inner) : vector(QBNN_X86 && usingAvx512() && inner >= 16) { std::fill(v, v + 32, 0.0); }
  void add(const float* __restrict x, int64_t inner) {
#if QBNN_X86
    if (vector) {
      addRunAvx512(x, inner, v);
      return;
    }
#endif
    int64_t i = 0;
    for (; i + 4 <= inner; i += 4) {
      v[0] += x[i];
      v[1] += x[i + 1];
      v[2] += x[i + 2];
      v[3] += x[i + 3];
    }
    for (; i < inner; ++i) v[0] += x[i];
  }
  float sum() const {
#if QBNN_X86
    if (vector) return combineLanesAvx512(v);
#endif
    return static_cast<float>((v[0] + v[1]) + (v[2] + v[3]));
  }
};

}  // namespace

void sumOuterInner(const float* x, int64_t outer, int64_t kept, int64_t inner, float* out) {
  const double work = static_cast<double>(outer) * kept * inner;
  if (inner == 1) {
    // Rows of `kept` values: columns of one task summed together, row after row.
    constexpr int64_t kCols = 512;
    parallel((kept + kCols - 1) / kCols, work, [&](int64_t t) {
      const int64_t k0 = t * kCols, len = std::min(kCols, kept - k0);
      double acc[kCols];
      std::fill(acc, acc + len, 0.0);
      for (int64_t o = 0; o < outer; ++o) {
        const float* __restrict row = x + o * kept + k0;
        for (int64_t k = 0; k < len; ++k) acc[k] += row[k];
      }
      for (int64_t k = 0; k < len; ++k) out[k0 + k] = static_cast<float>(acc[k]);
    });
    return;
  }
  // Runs of `inner` values: float64 partial sums per output (Lanes).
  const int64_t per = std::max<int64_t>(1, static_cast<int64_t>(65536 / std::max<double>(1, work / std::max<int64_t>(1, kept))));
  parallel((kept + per - 1) / per, work, [&](int64_t t) {
    for (int64_t k = t * per, end = std::min(kept, k + per); k < end; ++k) {
      Lanes acc(inner);
      for (int64_t o = 0; o < outer; ++o) acc.add(x + (o * kept + k) * inner, inner);
      out[k] = acc.sum();
    }
  });
}

void reluMaxPoolBiasGrad(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, const uint8_t* at, float* out) {
  const int64_t inner = h * w, pooled = (h / 2) * (w / 2);
  // tasks: blocks of 8 channels; images in the outer loop, so dy is read in order
  constexpr int64_t kBlock = 8;
  parallel((c + kBlock - 1) / kBlock, static_cast<double>(n) * c * inner, [&](int64_t t) {
    const int64_t k0 = t * kBlock, count = std::min(kBlock, c - k0);
    thread_local std::vector<float> plane;
    plane.resize(static_cast<size_t>(std::max<int64_t>(1, inner)));
    std::vector<Lanes> acc(static_cast<size_t>(count), Lanes(inner));
    for (int64_t b = 0; b < n; ++b)
      for (int64_t k = 0; k < count; ++k) {
        const int64_t e = (b * c + k0 + k) * pooled;
        reluMaxPoolScatterPlane(dy + e, at + e, h, w, plane.data(), w);
        acc[static_cast<size_t>(k)].add(plane.data(), inner);
      }
    for (int64_t k = 0; k < count; ++k) out[k0 + k] = acc[static_cast<size_t>(k)].sum();
  });
}

}  // namespace fp32
}  // namespace qbnn
