#include "unary.h"

#include <algorithm>
#include <cmath>

#include "../common.h"
#include "parallel.h"
#include "sgemm.h"

namespace qbnn {
namespace fp32 {
namespace {

// tfjs-backend-cpu's softplus thresholds: log(2^-23) + 2.
constexpr float kSoftplusLow = -13.942385152878742f;

float softplusScalar(float x) {
  if (x > -kSoftplusLow) return x;
  if (x < kSoftplusLow) return std::exp(x);
  return static_cast<float>(std::log1p(std::exp(static_cast<double>(x))));
}

float sigmoidScalar(float x) { return static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x)))); }

float scalar(int op, float x) {
  switch (op) {
    case UNARY_SOFTPLUS: return softplusScalar(x);
    case UNARY_SIGMOID: return sigmoidScalar(x);
    case UNARY_EXP: return static_cast<float>(std::exp(static_cast<double>(x)));
    case UNARY_LOG: return static_cast<float>(std::log(static_cast<double>(x)));
    default: return std::sqrt(x);
  }
}

}  // namespace

void unaryChunk(int op, const float* x, float* y, int64_t n) {
  if (usingAvx512() && unaryAvx512(op, x, y, n)) return;
  for (int64_t i = 0; i < n; ++i) y[i] = scalar(op, x[i]);
}

void unary(int op, const float* x, float* y, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t tasks = (n + kChunk - 1) / kChunk;
  parallel(tasks, static_cast<double>(n) * 16, [&](int64_t t) {
    const int64_t i0 = t * kChunk, len = std::min(kChunk, n - i0);
    unaryChunk(op, x + i0, y + i0, len);
  });
}

}  // namespace fp32
}  // namespace qbnn
