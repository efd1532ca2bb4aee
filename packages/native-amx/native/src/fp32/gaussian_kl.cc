// See gaussian_kl.h.
#include "gaussian_kl.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"
#include "sgemm.h"
#include "unary.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr int64_t kChunk = 4096;
constexpr float kLinearBelow = -20.f;  // log softplus(rho) = rho below (LOG_SOFTPLUS_LINEAR_BELOW)

int64_t chunks(int64_t n) { return (n + kChunk - 1) / kChunk; }

}  // namespace

double gaussianSampleKl(const float* mu, const float* rho, const float* eps, float* w, int64_t n, double m0,
                        double s0) {
  std::vector<double> part(static_cast<size_t>(chunks(n)), 0.0);
  const double inv2s2 = 1 / (2 * s0 * s0);
  parallel(chunks(n), static_cast<double>(n) * (eps ? 40 : 32), [&](int64_t t) {
    const int64_t i0 = t * kChunk, len = std::min(kChunk, n - i0);
    const float* e = eps ? eps + i0 : nullptr;
    float* out = w ? w + i0 : nullptr;
    double vec = 0;
    if (usingAvx512() && gaussianKlChunkAvx512(mu + i0, rho + i0, e, out, len, m0, inv2s2, &vec)) {
      part[static_cast<size_t>(t)] = vec;
      return;
    }
    float sp[kChunk], logSp[kChunk];
    unaryChunk(UNARY_SOFTPLUS, rho + i0, sp, len);
    unaryChunk(UNARY_LOG, sp, logSp, len);
    double acc = 0;
    for (int64_t i = 0; i < len; ++i) {
      const float r = rho[i0 + i];
      if (e) out[i] = mu[i0 + i] + sp[i] * e[i];
      const double logS = r < kLinearBelow ? r : logSp[i];
      const double d = static_cast<double>(mu[i0 + i]) - m0;
      const double s = sp[i];
      acc += -logS + (d * d + s * s) * inv2s2;
    }
    part[static_cast<size_t>(t)] = acc;
  });
  double sum = 0;
  for (double p : part) sum += p;
  return sum + static_cast<double>(n) * (std::log(s0) - 0.5);
}

double gaussianKlSum(const float* mu, const float* rho, int64_t n, double m0, double s0) {
  return gaussianSampleKl(mu, rho, nullptr, nullptr, n, m0, s0);
}

void gaussianSampleKlGrad(const float* mu, const float* rho, const float* eps, const float* dw, int64_t n, double m0,
                          double s0, double dkl, float* dMu, float* dRho) {
  const float invS2 = static_cast<float>(1 / (s0 * s0));
  const double scaleMu = dkl / (s0 * s0);
  const float fdkl = static_cast<float>(dkl);
  parallel(chunks(n), static_cast<double>(n) * (dw ? 40 : 32), [&](int64_t t) {
    const int64_t i0 = t * kChunk, len = std::min(kChunk, n - i0);
    const float* e = dw ? eps + i0 : nullptr;
    const float* d = dw ? dw + i0 : nullptr;
    if (usingAvx512() &&
        gaussianKlGradChunkAvx512(mu + i0, rho + i0, e, d, len, m0, scaleMu, invS2, fdkl, dMu + i0, dRho + i0))
      return;
    float sp[kChunk], sg[kChunk];
    unaryChunk(UNARY_SOFTPLUS, rho + i0, sp, len);
    unaryChunk(UNARY_SIGMOID, rho + i0, sg, len);
    for (int64_t i = 0; i < len; ++i) {
      const float dLogS = rho[i0 + i] < kLinearBelow ? 1.f : sg[i] / sp[i];
      const float klMu = static_cast<float>((static_cast<double>(mu[i0 + i]) - m0) * scaleMu);
      const float klRho = fdkl * (sg[i] * sp[i] * invS2 - dLogS);
      dMu[i0 + i] = d ? d[i] + klMu : klMu;
      dRho[i0 + i] = d ? (d[i] * e[i]) * sg[i] + klRho : klRho;
    }
  });
}

void gaussianKlGrad(const float* mu, const float* rho, int64_t n, double m0, double s0, double dy, float* dMu,
                    float* dRho) {
  gaussianSampleKlGrad(mu, rho, nullptr, nullptr, n, m0, s0, dy, dMu, dRho);
}

}  // namespace fp32
}  // namespace qbnn
