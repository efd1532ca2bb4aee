// See dropout.h.
#include "dropout.h"

#include <algorithm>
#include <cmath>

#include "../common.h"
#include "parallel.h"
#include "sgemm.h"

#if QBNN_X86
#include "avx512_region.h"

QBNN_FP32_AVX512_QUIET_BEGIN
#include "../philox_avx512.h"

namespace qbnn {
namespace fp32 {
namespace {

// mask[j] for j < len rounded down to 32, from 8 Philox blocks a step (block firstBlock first):
// keep where the word's top 24 bits are >= threshold, else 0; in position order (word q of block
// i is position 4 i + q: a 4 x 8 transpose). Returns the positions written.
int64_t dropoutMaskAvx512(uint32_t k0, uint32_t k1, uint64_t firstBlock, uint32_t threshold, float keep, float* mask,
                          int64_t len) {
  const __m256i t = _mm256_set1_epi32(static_cast<int>(threshold));
  const __m256 kv = _mm256_set1_ps(keep);
  int64_t j = 0;
  for (; j + 32 <= len; j += 32) {
    __m256i w[4];
    philox8(k0, k1, firstBlock + static_cast<uint64_t>(j / 4), w);
    __m256 a[4];
    for (int q = 0; q < 4; ++q) {
      // drop where threshold > top 24 bits (both below 2^31: a signed compare)
      const __m256i drop = _mm256_cmpgt_epi32(t, _mm256_srli_epi32(w[q], 8));
      a[q] = _mm256_andnot_ps(_mm256_castsi256_ps(drop), kv);
    }
    const __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
    const __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    _mm256_storeu_ps(mask + j, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(mask + j + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
    _mm256_storeu_ps(mask + j + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(mask + j + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
  }
  return j;
}

}  // namespace
}  // namespace fp32
}  // namespace qbnn

QBNN_FP32_AVX512_QUIET_END
#endif

namespace qbnn {
namespace fp32 {

void dropoutApply(uint32_t k0, uint32_t k1, uint64_t firstBlock, double p, float keep, const float* x, int64_t n,
                  int64_t maskSize, float* out) {
  // Tasks of 1024 blocks of the mask (4096 positions), each applied to every row of x.
  constexpr int64_t kBlocksPerTask = 1024;
  const int64_t blocks = (maskSize + 3) / 4;
  const int64_t rows = maskSize > 0 ? n / maskSize : 0;
  const bool vector = QBNN_X86 && usingAvx512();
  // u = (word >> 8) 2^-24 >= p exactly when word >> 8 >= ceil(p 2^24) (p 2^24 is exact)
  const uint32_t threshold = static_cast<uint32_t>(std::max(0.0, std::ceil(p * 0x1p24)));
  parallel((blocks + kBlocksPerTask - 1) / kBlocksPerTask, static_cast<double>(n) * 2 + maskSize * 8.0,
           [&](int64_t t) {
             const int64_t j0 = t * kBlocksPerTask * 4;
             const int64_t len = std::min<int64_t>(maskSize - j0, kBlocksPerTask * 4);
             float mask[kBlocksPerTask * 4];
             uint32_t w[4];
             int64_t j = 0;
#if QBNN_X86
             if (vector) j = dropoutMaskAvx512(k0, k1, firstBlock + static_cast<uint64_t>(j0 / 4), threshold, keep, mask, len);
#endif
             for (; j < len; j += 4) {
               philoxBlock(k0, k1, firstBlock + static_cast<uint64_t>((j0 + j) / 4), w);
               for (int q = 0; q < 4 && j + q < len; ++q)
                 mask[j + q] = static_cast<double>(static_cast<float>(w[q] >> 8) * 0x1p-24f) >= p ? keep : 0.f;
             }
             for (int64_t r = 0; r < rows; ++r) {
               const float* __restrict xr = x + r * maskSize + j0;
               float* __restrict o = out + r * maskSize + j0;
               for (int64_t j = 0; j < len; ++j) o[j] = xr[j] * mask[j];
             }
           });
}

}  // namespace fp32
}  // namespace qbnn
