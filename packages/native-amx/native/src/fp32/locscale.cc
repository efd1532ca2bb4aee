// See locscale.h. Chunks of 4k elements over the pool: on AVX-512 one pass (unary_avx512.cc),
// else the transcendental into a chunk buffer by the unary kernels, then one vectorised loop.
#include "locscale.h"

#include <algorithm>

#include "parallel.h"
#include "sgemm.h"
#include "unary.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr int64_t kChunk = 4096;

template <typename Fn>
void chunks(int64_t n, Fn&& fn) {
  parallel((n + kChunk - 1) / kChunk, static_cast<double>(n) * 24, [&](int64_t t) {
    const int64_t i0 = t * kChunk;
    fn(i0, std::min(kChunk, n - i0));
  });
}

}  // namespace

void locScaleSample(const float* mu, const float* rho, const float* eps, float* w, int64_t n) {
  const bool vector = usingAvx512();
  chunks(n, [=](int64_t i0, int64_t len) {
    if (vector && locScaleAvx512(false, mu + i0, rho + i0, eps + i0, w + i0, len)) return;
    float sp[kChunk];
    unaryChunk(UNARY_SOFTPLUS, rho + i0, sp, len);
    const float* __restrict m = mu + i0;
    const float* __restrict e = eps + i0;
    float* __restrict out = w + i0;
    for (int64_t i = 0; i < len; ++i) out[i] = m[i] + sp[i] * e[i];
  });
}

void locScaleSampleGrad(const float* dw, const float* rho, const float* eps, float* drho, int64_t n) {
  const bool vector = usingAvx512();
  chunks(n, [=](int64_t i0, int64_t len) {
    if (vector && locScaleAvx512(true, dw + i0, rho + i0, eps + i0, drho + i0, len)) return;
    float sg[kChunk];
    unaryChunk(UNARY_SIGMOID, rho + i0, sg, len);
    const float* __restrict d = dw + i0;
    const float* __restrict e = eps + i0;
    float* __restrict out = drho + i0;
    for (int64_t i = 0; i < len; ++i) out[i] = (d[i] * e[i]) * sg[i];
  });
}

}  // namespace fp32
}  // namespace qbnn
