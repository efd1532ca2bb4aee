// See reduce.h.
#include "reduce.h"

#include <algorithm>

#include "parallel.h"

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
  parallel((kept + per - 1) / per, work, [&](int64_t t) {
    for (int64_t k = t * per, end = std::min(kept, k + per); k < end; ++k) {
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
