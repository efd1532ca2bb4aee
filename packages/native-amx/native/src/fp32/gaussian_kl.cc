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

double gaussianKlSum(const float* mu, const float* rho, int64_t n, double m0, double s0) {
  std::vector<double> part(static_cast<size_t>(chunks(n)), 0.0);
  const double inv2s2 = 1 / (2 * s0 * s0);
  parallel(chunks(n), static_cast<double>(n) * 32, [&](int64_t t) {
    const int64_t i0 = t * kChunk, len = std::min(kChunk, n - i0);
    double vec = 0;
    if (usingAvx512() && gaussianKlChunkAvx512(mu + i0, rho + i0, len, m0, inv2s2, &vec)) {
      part[static_cast<size_t>(t)] = vec;
      return;
    }
    float sp[kChunk], logSp[kChunk];
    unaryChunk(UNARY_SOFTPLUS, rho + i0, sp, len);
    unaryChunk(UNARY_LOG, sp, logSp, len);
    double acc = 0;
    for (int64_t i = 0; i < len; ++i) {
      const float r = rho[i0 + i];
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

void gaussianKlGrad(const float* mu, const float* rho, int64_t n, double m0, double s0, double dy, float* dMu,
                    float* dRho) {
  const float invS2 = static_cast<float>(1 / (s0 * s0));
  const double scaleMu = dy / (s0 * s0);
  const float fdy = static_cast<float>(dy);
  parallel(chunks(n), static_cast<double>(n) * 32, [&](int64_t t) {
    const int64_t i0 = t * kChunk, len = std::min(kChunk, n - i0);
    if (usingAvx512() &&
        gaussianKlGradChunkAvx512(mu + i0, rho + i0, len, m0, scaleMu, invS2, fdy, dMu + i0, dRho + i0))
      return;
    float sp[kChunk], sg[kChunk];
    unaryChunk(UNARY_SOFTPLUS, rho + i0, sp, len);
    unaryChunk(UNARY_SIGMOID, rho + i0, sg, len);
    for (int64_t i = 0; i < len; ++i) {
      const float dLogS = rho[i0 + i] < kLinearBelow ? 1.f : sg[i] / sp[i];
      dMu[i0 + i] = static_cast<float>((static_cast<double>(mu[i0 + i]) - m0) * scaleMu);
      dRho[i0 + i] = fdy * (sg[i] * sp[i] * invS2 - dLogS);
    }
  });
}

double gaussianSampleKl(const float* mu, const float* rho, const float* eps, float* w, int64_t n, double m0,
                        double s0) {
  std::vector<double> part(static_cast<size_t>(chunks(n)), 0.0);
  const double inv2s2 = 1 / (2 * s0 * s0);
  parallel(chunks(n), static_cast<double>(n) * 40, [&](int64_t t) {
    const int64_t i0 = t * kChunk, len = std::min(kChunk, n - i0);
    double vec = 0;
    if (usingAvx512() && gaussianSampleKlChunkAvx512(mu + i0, rho + i0, eps + i0, w + i0, len, m0, inv2s2, &vec)) {
      part[static_cast<size_t>(t)] = vec;
      return;
    }
    float sp[kChunk], logSp[kChunk];
    unaryChunk(UNARY_SOFTPLUS, rho + i0, sp, len);
    unaryChunk(UNARY_LOG, sp, logSp, len);
    double acc = 0;
    for (int64_t i = 0; i < len; ++i) {
      const float r = rho[i0 + i];
      w[i0 + i] = mu[i0 + i] + sp[i] * eps[i0 + i];
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

void gaussianSampleKlGrad(const float* mu, const float* rho, const float* eps, const float* dw, int64_t n, double m0,
                          double s0, double dkl, float* dMu, float* dRho) {
  const float invS2 = static_cast<float>(1 / (s0 * s0));
  const double scaleMu = dkl / (s0 * s0);
  const float fdkl = static_cast<float>(dkl);
  parallel(chunks(n), static_cast<double>(n) * 40, [&](int64_t t) {
    const int64_t i0 = t * kChunk, len = std::min(kChunk, n - i0);
    if (usingAvx512() && gaussianSampleKlGradChunkAvx512(mu + i0, rho + i0, eps + i0, dw + i0, len, m0, scaleMu, invS2,
                                                         fdkl, dMu + i0, dRho + i0))
      return;
    float sp[kChunk], sg[kChunk];
    unaryChunk(UNARY_SOFTPLUS, rho + i0, sp, len);
    unaryChunk(UNARY_SIGMOID, rho + i0, sg, len);
    for (int64_t i = 0; i < len; ++i) {
      const float dLogS = rho[i0 + i] < kLinearBelow ? 1.f : sg[i] / sp[i];
      const float d = dw[i0 + i];
      dMu[i0 + i] = d + static_cast<float>((static_cast<double>(mu[i0 + i]) - m0) * scaleMu);
      dRho[i0 + i] = (d * eps[i0 + i]) * sg[i] + fdkl * (sg[i] * sp[i] * invS2 - dLogS);
    }
  });
}

}  // namespace fp32
}  // namespace qbnn
