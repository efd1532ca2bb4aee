// Standard normals from the Philox stream, bit for bit the values of @qbnn/core's
// normalsFromWords (packages/core/src/rng/normal.ts): Box-Muller with a polynomial logarithm,
// sine and cosine evaluated in float64 with basic IEEE operations only, in the same order (the
// addon is built with -ffp-contract=off, so no multiply-add is fused).
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

// out[j], j < count: the normals of words 0 .. 2 ceil(count / 2) - 1 of blocks firstBlock,
// firstBlock + 1, ... of key (k0, k1). Split over the thread pool by blocks; the values never
// depend on the thread count.
void normalFill(uint32_t k0, uint32_t k1, uint64_t firstBlock, float* out, int64_t count);

// w[j] = mu[j] + sigma[j] * eps[j], j < count, with eps[j] the normal normalFill would write at j
// (float32 product, then float32 sum): the normals stay in registers (a small buffer for the scalar path).
void normalLocScale(uint32_t k0, uint32_t k1, uint64_t firstBlock, const float* mu, const float* sigma, float* w,
                    int64_t count);

// out[j], j < count: the float32 uniforms in [0, 1) of words 0 .. count - 1 of blocks firstBlock,
// firstBlock + 1, ... of key (k0, k1): top 24 bits times 2^-24, as @qbnn/core's Rng.uniform.
void uniformFill(uint32_t k0, uint32_t k1, uint64_t firstBlock, float* out, int64_t count);

// The polynomial coefficients in use (for the tests against the JS reference's).
struct NormalCoefficients {
  static constexpr int kLogTerms = 10;
  static constexpr int kTrigTerms = 11;
  double log[kLogTerms];
  double sin[kTrigTerms];
  double cos[kTrigTerms];
};
// The table, built at compile time by the JS's operations (1 / i! by successive division, 1 / (2 k + 1);
// constant folding rounds each as the hardware does), so the vector bodies take the coefficients
// as constants (broadcast from memory, not loaded and shuffled into registers every step).
constexpr NormalCoefficients makeNormalCoefficients() {
  NormalCoefficients c{};
  constexpr int kN = 2 * NormalCoefficients::kTrigTerms;
  double f[kN + 1] = {};
  f[0] = 1;
  for (int i = 1; i <= kN; ++i) f[i] = f[i - 1] / i;
  for (int k = 0; k < NormalCoefficients::kTrigTerms; ++k) {
    c.sin[k] = (k & 1) ? -f[2 * k + 1] : f[2 * k + 1];
    c.cos[k] = (k & 1) ? -f[2 * k] : f[2 * k];
  }
  for (int k = 0; k < NormalCoefficients::kLogTerms; ++k) c.log[k] = 1.0 / (2 * k + 1);
  return c;
}
inline constexpr NormalCoefficients kNormalCoefficients = makeNormalCoefficients();
const NormalCoefficients& normalCoefficients();

// The AVX-512 body: `blocks` whole blocks from `block` (4 normals each); false when not compiled in.
bool normalBlocksAvx512(uint32_t k0, uint32_t k1, uint64_t block, int64_t blocks, float* out);
// Tests: 0 the checked short evaluation (default), 1 the reference operations only, 2 the short
// evaluation always declared uncertain (every step recomputed by the reference operations).
void setNormalFastMode(int mode);
// Tests: the AVX-512 body on given words (4 a block, blocks a multiple of 16) instead of Philox's;
// false when not compiled in or the count does not fit.
bool normalsFromWordsAvx512(const uint32_t* words, int64_t blocks, float* out);
// w[i] = mu[i] + sigma[i] * eps[i] (product rounded, then the sum) for the normals eps of `blocks`
// whole blocks from `block` (blocks a multiple of 8), eps never stored; false when not compiled in.
bool normalLocScaleBlocksAvx512(uint32_t k0, uint32_t k1, uint64_t block, int64_t blocks, const float* mu,
                                const float* sigma, float* w);

}  // namespace fp32
}  // namespace qbnn
