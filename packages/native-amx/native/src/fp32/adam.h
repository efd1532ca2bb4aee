// One Adam step over a parameter tensor in one pass (the 'QbnnAdam' tfjs kernel), with the
// float64 arithmetic of @qbnn/core's adamUpdate (packages/core/src/backend/fused-adam.ts) in the
// same order, so the results equal the JS reference bit for bit.
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

struct AdamStep {
  double learningRate, beta1, beta2, epsilon, correction1, correction2;
};

void adamUpdate(const float* p, const float* m, const float* v, const float* g, float* outP, float* outM,
                float* outV, int64_t n, const AdamStep& s);

// One tensor of adamUpdateMany: m, v rewritten in place from g, the new parameter written to outP.
struct AdamTensor {
  const float* p;
  float* m;
  float* v;
  const float* g;
  float* outP;
  int64_t n;
};

// adamUpdate of every tensor, in one split over the pool (fixed chunks of each tensor, so the
// values are those of adamUpdate on any thread count).
void adamUpdateMany(const AdamTensor* tensors, int64_t count, const AdamStep& s);

}  // namespace fp32
}  // namespace qbnn
