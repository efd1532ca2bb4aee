// Adam step (see adam.h): AVX-512 on 8 doubles at a time where present, scalar otherwise; split
// over the thread pool by fixed chunks (each element is independent).
#include "adam.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common.h"
#include "parallel.h"
#include "sgemm.h"

#if QBNN_X86
#include <immintrin.h>
#endif

namespace qbnn {
namespace fp32 {
namespace {

void adamScalar(const float* p, const float* m, const float* v, const float* g, float* outP, float* outM,
                float* outV, int64_t n, const AdamStep& s) {
  const double nb1 = 1 - s.beta1, nb2 = 1 - s.beta2;
  const double lrOverC1 = s.learningRate / s.correction1, invSqrtC2 = 1 / std::sqrt(s.correction2);
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i];
    const double mi = static_cast<double>(m[i]) * s.beta1 + gi * nb1;
    const double vi = static_cast<double>(v[i]) * s.beta2 + gi * gi * nb2;
    outM[i] = static_cast<float>(mi);
    outV[i] = static_cast<float>(vi);
    outP[i] = static_cast<float>(static_cast<double>(p[i]) - (lrOverC1 * mi) / (std::sqrt(vi) * invSqrtC2 + s.epsilon));
  }
}

#if QBNN_X86
#pragma GCC push_options
#pragma GCC target("avx2,avx512f,avx512vl,avx512dq")
// GCC 12 flags the deliberately undefined vectors of its own AVX-512 headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The scalar expression on 8 lanes: separate multiplies and adds (no FMA contraction), IEEE division and square root.
int64_t adamAvx512(const float* p, const float* m, const float* v, const float* g, float* outP, float* outM,
                   float* outV, int64_t n, const AdamStep& s) {
  const __m512d b1 = _mm512_set1_pd(s.beta1), nb1 = _mm512_set1_pd(1 - s.beta1);
  const __m512d b2 = _mm512_set1_pd(s.beta2), nb2 = _mm512_set1_pd(1 - s.beta2);
  const __m512d a = _mm512_set1_pd(s.learningRate / s.correction1), b = _mm512_set1_pd(1 / std::sqrt(s.correction2));
  const __m512d eps = _mm512_set1_pd(s.epsilon);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d gi = _mm512_cvtps_pd(_mm256_loadu_ps(g + i));
    const __m512d mi = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(m + i)), b1), _mm512_mul_pd(gi, nb1));
    const __m512d vi =
        _mm512_add_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(v + i)), b2), _mm512_mul_pd(_mm512_mul_pd(gi, gi), nb2));
    const __m512d step = _mm512_div_pd(_mm512_mul_pd(a, mi), _mm512_add_pd(_mm512_mul_pd(_mm512_sqrt_pd(vi), b), eps));
    _mm256_storeu_ps(outM + i, _mm512_cvtpd_ps(mi));
    _mm256_storeu_ps(outV + i, _mm512_cvtpd_ps(vi));
    _mm256_storeu_ps(outP + i, _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(p + i)), step)));
  }
  return i;
}
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

constexpr int64_t kChunk = 1 << 14;

// Elements [a, a + len) of one tensor.
void adamRange(const float* p, const float* m, const float* v, const float* g, float* outP, float* outM, float* outV,
               int64_t a, int64_t len, const AdamStep& s) {
  int64_t done = 0;
#if QBNN_X86
  if (usingAvx512()) done = adamAvx512(p + a, m + a, v + a, g + a, outP + a, outM + a, outV + a, len, s);
#endif
  adamScalar(p + a + done, m + a + done, v + a + done, g + a + done, outP + a + done, outM + a + done,
             outV + a + done, len - done, s);
}

}  // namespace

void adamUpdate(const float* p, const float* m, const float* v, const float* g, float* outP, float* outM,
                float* outV, int64_t n, const AdamStep& s) {
  parallel((n + kChunk - 1) / kChunk, static_cast<double>(n) * 8, [&](int64_t t) {
    const int64_t a = t * kChunk;
    adamRange(p, m, v, g, outP, outM, outV, a, std::min(n - a, kChunk), s);
  });
}

void adamUpdateMany(const AdamTensor* tensors, int64_t count, const AdamStep& s) {
  // every tensor's chunks in one list: (tensor, first element)
  std::vector<std::pair<int64_t, int64_t>> chunks;
  double work = 0;
  for (int64_t k = 0; k < count; ++k) {
    for (int64_t a = 0; a < tensors[k].n; a += kChunk) chunks.emplace_back(k, a);
    work += static_cast<double>(tensors[k].n) * 8;
  }
  parallel(static_cast<int64_t>(chunks.size()), work, [&](int64_t t) {
    const auto [k, a] = chunks[static_cast<size_t>(t)];
    const AdamTensor& x = tensors[k];
    adamRange(x.p, x.m, x.v, x.g, x.outP, x.m, x.v, a, std::min(x.n - a, kChunk), s);
  });
}

}  // namespace fp32
}  // namespace qbnn
