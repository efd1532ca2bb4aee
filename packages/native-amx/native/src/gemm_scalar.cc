// Portable scalar GEMM over the packed layout (the path of last resort and of aarch64).
#include <cstring>

#include "common.h"

namespace qbnn {

void gemmScalar(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  const Packed& w = *c.w;
  const int32_t kg = w.kgroups;
  int32_t acc[16];
  for (int32_t m = m0; m < m1; ++m) {
    const uint8_t* arow = c.a + static_cast<size_t>(m) * c.lda;
    for (int32_t nb = nb0; nb < nb1; ++nb) {
      const int8_t* b = reinterpret_cast<const int8_t*>(w.data + static_cast<size_t>(nb) * w.blockBytes());
      std::memset(acc, 0, sizeof(acc));
      for (int32_t g = 0; g < kg; ++g) {
        const uint8_t* ag = arow + static_cast<size_t>(g) * 4;
        const int32_t a0 = ag[0], a1 = ag[1], a2 = ag[2], a3 = ag[3];
        const int8_t* bg = b + static_cast<size_t>(g) * 64;
        for (int j = 0; j < 16; ++j) {
          acc[j] += a0 * bg[4 * j] + a1 * bg[4 * j + 1] + a2 * bg[4 * j + 2] + a3 * bg[4 * j + 3];
        }
      }
      const int32_t nEnd = (nb + 1) * 16 < w.n ? (nb + 1) * 16 : w.n;
      for (int32_t n = nb * 16; n < nEnd; ++n) epilogueOne(c, m, n, acc[n - nb * 16]);
    }
  }
}

}  // namespace qbnn
