// See squared_distance.h. AVX-512: 8 doubles a step, the scalar loops' operations in the same
// order (no fused multiply-add), so both paths give the same bits.
#include "squared_distance.h"

#include <algorithm>
#include <vector>

#include "../common.h"
#include "parallel.h"
#include "sgemm.h"

#if QBNN_X86
#include "avx512_region.h"
#endif

namespace qbnn {
namespace fp32 {
namespace {

constexpr int64_t kChunk = 1 << 14;

int64_t chunks(int64_t n) { return (n + kChunk - 1) / kChunk; }

// Adds element i of x to lane i mod 8 of lanes[] from element `from`.
void sumScalar(const float* x, int64_t from, int64_t n, double c, double* lanes) {
  for (int64_t i = from; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - c;
    lanes[i & 7] += d * d;
  }
}

void gradScalar(const float* x, int64_t from, int64_t n, double c, double k, float* dx) {
  for (int64_t i = from; i < n; ++i) dx[i] = static_cast<float>(k * (static_cast<double>(x[i]) - c));
}

#if QBNN_X86
QBNN_FP32_AVX512_BEGIN
// GCC 12 flags the deliberately undefined vectors of its own AVX-512 headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Whole groups of 8; returns how many elements it covered.
int64_t sumAvx512(const float* x, int64_t n, double c, double* lanes) {
  __m512d acc = _mm512_loadu_pd(lanes);
  const __m512d vc = _mm512_set1_pd(c);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vc);
    acc = _mm512_add_pd(acc, _mm512_mul_pd(d, d));
  }
  _mm512_storeu_pd(lanes, acc);
  return i;
}

int64_t gradAvx512(const float* x, int64_t n, double c, double k, float* dx) {
  const __m512d vc = _mm512_set1_pd(c), vk = _mm512_set1_pd(k);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dx + i,
                     _mm512_cvtpd_ps(_mm512_mul_pd(vk, _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vc))));
  return i;
}
#pragma GCC diagnostic pop
QBNN_FP32_AVX512_END
#endif

}  // namespace

double squaredDistanceSum(const float* x, int64_t n, double c) {
  std::vector<double> part(static_cast<size_t>(chunks(n)), 0.0);
  [[maybe_unused]] const bool vec = QBNN_X86 && usingAvx512();
  parallel(chunks(n), static_cast<double>(n) * 2, [&](int64_t t) {
    const int64_t a = t * kChunk, len = std::min(kChunk, n - a);
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t done = 0;
#if QBNN_X86
    if (vec) done = sumAvx512(x + a, len, c, lanes);
#endif
    sumScalar(x + a, done, len, c, lanes);
    part[static_cast<size_t>(t)] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
                                   ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  });
  double sum = 0;
  for (double p : part) sum += p;
  return sum;
}

void squaredDistanceGrad(const float* x, int64_t n, double c, double k, float* dx) {
  [[maybe_unused]] const bool vec = QBNN_X86 && usingAvx512();
  parallel(chunks(n), static_cast<double>(n) * 2, [&](int64_t t) {
    const int64_t a = t * kChunk, len = std::min(kChunk, n - a);
    int64_t done = 0;
#if QBNN_X86
    if (vec) done = gradAvx512(x + a, len, c, k, dx + a);
#endif
    gradScalar(x + a, done, len, c, k, dx + a);
  });
}

}  // namespace fp32
}  // namespace qbnn
