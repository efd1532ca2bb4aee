// Inverted dropout drawn and applied in one pass (the 'QbnnDropout' tfjs kernel of @qbnn/core's
// dropout.ts): the mask from the Philox stream exactly as Rng.uniform draws it, never stored.
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

// out[i] = x[i] * mask[i mod maskSize] (float32 products) for i < n, n a multiple of maskSize;
// mask[j] = keep if (top 24 bits of word j of blocks firstBlock, ... of key (k0, k1)) 2^-24 >= p,
// else 0. Split by mask positions; the result never depends on the thread count.
void dropoutApply(uint32_t k0, uint32_t k1, uint64_t firstBlock, double p, float keep, const float* x, int64_t n,
                  int64_t maskSize, float* out);

}  // namespace fp32
}  // namespace qbnn
