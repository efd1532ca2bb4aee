// The AMX GEMM, written once against a tile layer (EmuTiles or HwTiles). Tiles 0-3 hold a
// 32 x 32 int32 block of C, tiles 4-5 two 16 x 64 u8 A tiles, tiles 6-7 two 16-row x 64-byte
// B tiles taken straight from the packed layout (16 VNNI groups of one 16-channel block).
#pragma once

#include "common.h"

namespace qbnn {

using TileEpilogue = void (*)(const GemmCtx&, int32_t, int32_t, int32_t, const int32_t*, size_t);

template <class Tiles>
void gemmAmxWith(Tiles& tl, const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1, TileEpilogue epi) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const int32_t ktiles = w.kstride / 16;
  uint8_t rows[8];
  uint16_t colsb[8];
  for (int i = 0; i < 8; ++i) {
    rows[i] = 16;
    colsb[i] = 64;
  }
  tl.configure(rows, colsb);
  alignas(64) int32_t cbuf[4][16 * 16];
  for (int32_t m = m0; m < m1; m += 32) {
    const bool twoM = m + 16 < m1;
    for (int32_t nb = nb0; nb < nb1; nb += 2) {
      const bool twoN = nb + 1 < nb1;
      tl.template zero<0>();
      tl.template zero<1>();
      tl.template zero<2>();
      tl.template zero<3>();
      const uint8_t* a0 = c.a + static_cast<size_t>(m) * c.lda;
      const uint8_t* a1 = a0 + 16 * c.lda;
      const uint8_t* b0 = w.data + static_cast<size_t>(nb) * bs;
      const uint8_t* b1 = b0 + bs;
      for (int32_t kt = 0; kt < ktiles; ++kt) {
        const size_t ko = static_cast<size_t>(kt) * 64;
        tl.template load<4>(a0 + ko, c.lda);
        tl.template load<6>(b0 + ko * 16, 64);
        tl.template dpbusd<0, 4, 6>();
        if (twoN) {
          tl.template load<7>(b1 + ko * 16, 64);
          tl.template dpbusd<1, 4, 7>();
        }
        if (twoM) {
          tl.template load<5>(a1 + ko, c.lda);
          tl.template dpbusd<2, 5, 6>();
          if (twoN) tl.template dpbusd<3, 5, 7>();
        }
      }
      tl.template store<0>(cbuf[0], 64);
      if (twoN) tl.template store<1>(cbuf[1], 64);
      if (twoM) {
        tl.template store<2>(cbuf[2], 64);
        if (twoN) tl.template store<3>(cbuf[3], 64);
      }
      for (int t = 0; t < 4; ++t) {
        const int32_t mt = m + (t >> 1) * 16;
        const int32_t nbt = nb + (t & 1);
        if ((t & 1) && !twoN) continue;
        if ((t >> 1) && !twoM) continue;
        const int32_t rows = m1 - mt < 16 ? m1 - mt : 16;
        epi(c, mt, rows, nbt * 16, cbuf[t], 16);
      }
    }
  }
  tl.release();
}

}  // namespace qbnn
