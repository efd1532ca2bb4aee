// See dropout.h.
#include "dropout.h"

#include <algorithm>

#include "../common.h"
#include "parallel.h"

namespace qbnn {
namespace fp32 {

void dropoutApply(uint32_t k0, uint32_t k1, uint64_t firstBlock, double p, float keep, const float* x, int64_t n,
                  int64_t maskSize, float* out) {
  // Tasks of 1024 blocks of the mask (4096 positions), each applied to every row of x.
  constexpr int64_t kBlocksPerTask = 1024;
  const int64_t blocks = (maskSize + 3) / 4;
  const int64_t rows = maskSize > 0 ? n / maskSize : 0;
  parallel((blocks + kBlocksPerTask - 1) / kBlocksPerTask, static_cast<double>(n) * 2 + maskSize * 8.0,
           [&](int64_t t) {
             const int64_t j0 = t * kBlocksPerTask * 4;
             const int64_t len = std::min<int64_t>(maskSize - j0, kBlocksPerTask * 4);
             float mask[kBlocksPerTask * 4];
             uint32_t w[4];
             for (int64_t j = 0; j < len; j += 4) {
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
