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

// The float64 sum of `outer` runs of `inner` floats (run o at run(ctx, o)): 32 values a step into
// four vectors of 8 float64 partial sums (a masked tail), added in a fixed order.
float runsSumAvx512(int64_t outer, int64_t inner, RunFn run, const void* ctx) {
  __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
  for (int64_t o = 0; o < outer; ++o) {
    const float* x = run(ctx, o);
    for (int64_t i = 0; i < inner; i += 32) {
      const __m512 a = _mm512_maskz_loadu_ps(tailMask(inner - i), x + i);
      const __m512 b = _mm512_maskz_loadu_ps(tailMask(inner - i - 16), x + i + 16);
      acc[0] = _mm512_add_pd(acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
      acc[1] = _mm512_add_pd(acc[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
      acc[2] = _mm512_add_pd(acc[2], _mm512_cvtps_pd(_mm512_castps512_ps256(b)));
      acc[3] = _mm512_add_pd(acc[3], _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)));
    }
  }
  return static_cast<float>(
      _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3]))));
}

}  // namespace fp32
}  // namespace qbnn

#pragma GCC diagnostic pop
QBNN_FP32_AVX512_QUIET_END
#endif

namespace qbnn {
namespace fp32 {

#if QBNN_X86
float runsSumAvx512(int64_t outer, int64_t inner, RunFn run, const void* ctx);
#endif

namespace {

// The scalar twin: four interleaved float64 partial sums, the tail of a run into the first.
float runsSum(int64_t outer, int64_t inner, RunFn run, const void* ctx) {
  double s[4] = {0, 0, 0, 0};
  for (int64_t o = 0; o < outer; ++o) {
    const float* __restrict x = run(ctx, o);
    int64_t i = 0;
    for (; i + 4 <= inner; i += 4) {
      s[0] += x[i];
      s[1] += x[i + 1];
      s[2] += x[i + 2];
      s[3] += x[i + 3];
    }
    for (; i < inner; ++i) s[0] += x[i];
  }
  return static_cast<float>((s[0] + s[1]) + (s[2] + s[3]));
}

// Output k of sumOuterInner: runs of `inner` values `kept * inner` apart.
struct StridedRuns {
  const float* x;
  int64_t k, kept, inner;
  static const float* run(const void* ctx, int64_t o) {
    const auto* c = static_cast<const StridedRuns*>(ctx);
    return c->x + (o * c->kept + c->k) * c->inner;
  }
};

// Channel k of the gradient through a 2 x 2 ReLU max pool, image o's plane scattered into `plane`.
struct ScatteredRuns {
  const float* dy;
  const uint8_t* at;
  int64_t c, k, h, w;
  float* plane;
  static const float* run(const void* ctx, int64_t o) {
    const auto* s = static_cast<const ScatteredRuns*>(ctx);
    const int64_t e = (o * s->c + s->k) * (s->h / 2) * (s->w / 2);
    reluMaxPoolScatterPlane(s->dy + e, s->at + e, s->h, s->w, s->plane, s->w);
    return s->plane;
  }
};

float sumRuns(int64_t outer, int64_t inner, RunFn run, const void* ctx) {
#if QBNN_X86
  if (usingAvx512() && inner >= 16) return runsSumAvx512(outer, inner, run, ctx);
#endif
  return runsSum(outer, inner, run, ctx);
}

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
  // Runs of `inner` values: float64 partial sums per output (sumRuns).
  const int64_t per = std::max<int64_t>(1, static_cast<int64_t>(65536 / std::max<double>(1, work / std::max<int64_t>(1, kept))));
  parallel((kept + per - 1) / per, work, [&](int64_t t) {
    for (int64_t k = t * per, end = std::min(kept, k + per); k < end; ++k) {
      const StridedRuns runs{x, k, kept, inner};
      out[k] = sumRuns(outer, inner, StridedRuns::run, &runs);
    }
  });
}

void reluMaxPoolBiasGrad(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, const uint8_t* at, float* out) {
  const int64_t inner = h * w;
  const double work = static_cast<double>(n) * c * inner;
  const int64_t per = std::max<int64_t>(1, static_cast<int64_t>(65536 / std::max<double>(1, work / std::max<int64_t>(1, c))));
  parallel((c + per - 1) / per, work, [&](int64_t t) {
    thread_local std::vector<float> plane;
    plane.resize(static_cast<size_t>(std::max<int64_t>(1, inner)));
    for (int64_t k = t * per, end = std::min(c, k + per); k < end; ++k) {
      const ScatteredRuns runs{dy, at, c, k, h, w, plane.data()};
      out[k] = sumRuns(n, inner, ScatteredRuns::run, &runs);
    }
  });
}

}  // namespace fp32
}  // namespace qbnn
