// Portable scalar GEMM over the packed layout (the path of last resort and of aarch64).
#include <cstring>

#include "common.h"

namespace qbnn {

void gemmScalar(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  // Plain C++ the compiler can auto-vectorise with the baseline ISA (SSE2, NEON): 64
  // independent products per VNNI group, added in pairs at the end. Two rows at a time share
  // each weight load.
  const Packed& w = *c.w;
  const int32_t kg = w.kgroups;
  alignas(64) int32_t acc0[64];
  alignas(64) int32_t acc1[64];
  alignas(64) int16_t ap0[64];
  alignas(64) int16_t ap1[64];
  for (int32_t m = m0; m < m1; m += 2) {
    const bool two = m + 1 < m1;
    const uint8_t* r0 = c.a + static_cast<size_t>(m) * c.lda;
    const uint8_t* r1 = two ? r0 + c.lda : r0;
    for (int32_t nb = nb0; nb < nb1; ++nb) {
      const int8_t* b = reinterpret_cast<const int8_t*>(w.data + static_cast<size_t>(nb) * w.blockBytes());
      std::memset(acc0, 0, sizeof(acc0));
      std::memset(acc1, 0, sizeof(acc1));
      for (int32_t g = 0; g < kg; ++g) {
        const uint8_t* g0 = r0 + static_cast<size_t>(g) * 4;
        const uint8_t* g1 = r1 + static_cast<size_t>(g) * 4;
        const int16_t p0[4] = {g0[0], g0[1], g0[2], g0[3]};
        const int16_t p1[4] = {g1[0], g1[1], g1[2], g1[3]};
        for (int j = 0; j < 16; ++j) {
          std::memcpy(ap0 + 4 * j, p0, sizeof(p0));
          std::memcpy(ap1 + 4 * j, p1, sizeof(p1));
        }
        const int8_t* bg = b + static_cast<size_t>(g) * 64;
        for (int i = 0; i < 64; ++i) {
          acc0[i] += static_cast<int32_t>(ap0[i]) * bg[i];
          acc1[i] += static_cast<int32_t>(ap1[i]) * bg[i];
        }
      }
      const int32_t nEnd = (nb + 1) * 16 < w.n ? (nb + 1) * 16 : w.n;
      for (int32_t n = nb * 16; n < nEnd; ++n) {
        const int j = 4 * (n - nb * 16);
        epilogueOne(c, m, n, acc0[j] + acc0[j + 1] + acc0[j + 2] + acc0[j + 3]);
        if (two) epilogueOne(c, m + 1, n, acc1[j] + acc1[j + 1] + acc1[j + 2] + acc1[j + 3]);
      }
    }
  }
}

}  // namespace qbnn
