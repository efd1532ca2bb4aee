// See reduce.h.
#include "reduce.h"

#include <algorithm>

#include "../common.h"
#include "parallel.h"
#include "sgemm.h"

#if QBNN_X86
#include "avx512_region.h"

QBNN_FP32_AVX512_QUIET_BEGIN

namespace qbnn {
namespace fp32 {
namespace {

// The float64 sum of `outer` runs of `inner` floats, `stride` apart: 32 values a step into four
// vectors of 8 float64 partial sums (a masked tail), added in a fixed order.
float runsSumAvx512(const float* x, int64_t outer, int64_t stride, int64_t inner) {
  __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
  for (int64_t o = 0; o < outer; ++o) {
    const float* run = x + o * stride;
    for (int64_t i = 0; i < inner; i += 32) {
      const __m512 a = _mm512_maskz_loadu_ps(tailMask(inner - i), run + i);
      const __m512 b = _mm512_maskz_loadu_ps(tailMask(inner - i - 16), run + i + 16);
      acc[0] = _mm512_add_pd(acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
      acc[1] = _mm512_add_pd(acc[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
      acc[2] = _mm512_add_pd(acc[2], _mm512_cvtps_pd(_mm512_castps512_ps256(b)));
      acc[3] = _mm512_add_pd(acc[3], _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)));
    }
  }
  return static_cast<float>(
      _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3]))));
}

}  // namespace
}  // namespace fp32
}  // namespace qbnn

QBNN_FP32_AVX512_QUIET_END
#endif

namespace qbnn {
namespace fp32 {

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
  // Runs of `inner` values: four interleaved float64 partial sums per output.
  const int64_t per = std::max<int64_t>(1, static_cast<int64_t>(65536 / std::max<double>(1, work / std::max<int64_t>(1, kept))));
  const bool vector = QBNN_X86 && usingAvx512() && inner >= 16;
  parallel((kept + per - 1) / per, work, [&](int64_t t) {
    for (int64_t k = t * per, end = std::min(kept, k + per); k < end; ++k) {
#if QBNN_X86
      if (vector) {
        out[k] = runsSumAvx512(x + k * inner, outer, kept * inner, inner);
        continue;
      }
#endif
      double s[4] = {0, 0, 0, 0};
      for (int64_t o = 0; o < outer; ++o) {
        const float* __restrict run = x + (o * kept + k) * inner;
        int64_t i = 0;
        for (; i + 4 <= inner; i += 4) {
          s[0] += run[i];
          s[1] += run[i + 1];
          s[2] += run[i + 2];
          s[3] += run[i + 3];
        }
        for (; i < inner; ++i) s[0] += run[i];
      }
      out[k] = static_cast<float>((s[0] + s[1]) + (s[2] + s[3]));
    }
  });
}

}  // namespace fp32
}  // namespace qbnn
