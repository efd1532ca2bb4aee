// The AMX kernel over the real tile instructions. Only ever called when CPUID reports
// AMX-TILE + AMX-INT8, the OS enables tile state and arch_prctl granted XTILEDATA.
// UNTESTED ON REAL AMX HARDWARE until the test suite runs on such a CPU.
#include "common.h"

#if QBNN_X86
#include <immintrin.h>

#include <cstring>

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,amx-tile,amx-int8")

#include "amx_kernel.h"

namespace qbnn {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

struct HwTiles {
  void configure(const uint8_t rows[8], const uint16_t colsb[8]) {
    TileConfig cfg;
    for (int i = 0; i < 8; ++i) {
      cfg.rows[i] = rows[i];
      cfg.colsb[i] = colsb[i];
    }
    _tile_loadconfig(&cfg);
  }
  void release() { _tile_release(); }
  // GCC's tile intrinsics stringify the tile number into inline assembly, so each tile
  // register needs a literal: dispatch the template argument with `if constexpr`.
#define QBNN_TILE_SWITCH(T, OP) \
  if constexpr (T == 0) { OP(0); } \
  else if constexpr (T == 1) { OP(1); } \
  else if constexpr (T == 2) { OP(2); } \
  else if constexpr (T == 3) { OP(3); } \
  else if constexpr (T == 4) { OP(4); } \
  else if constexpr (T == 5) { OP(5); } \
  else if constexpr (T == 6) { OP(6); } \
  else { OP(7); }
  template <int T>
  void zero() {
#define QBNN_OP(t) _tile_zero(t)
    QBNN_TILE_SWITCH(T, QBNN_OP)
#undef QBNN_OP
  }
  template <int T>
  void load(const void* p, size_t stride) {
#define QBNN_OP(t) _tile_loadd(t, p, static_cast<long>(stride))
    QBNN_TILE_SWITCH(T, QBNN_OP)
#undef QBNN_OP
  }
  template <int T>
  void store(void* p, size_t stride) const {
#define QBNN_OP(t) _tile_stored(t, p, static_cast<long>(stride))
    QBNN_TILE_SWITCH(T, QBNN_OP)
#undef QBNN_OP
  }
#undef QBNN_TILE_SWITCH
  // The accumulator/operand combinations the kernel uses.
  template <int C, int A, int B>
  void dpbusd() {
    static_assert((C == 0 && A == 4 && B == 6) || (C == 1 && A == 4 && B == 7) || (C == 2 && A == 5 && B == 6) ||
                      (C == 3 && A == 5 && B == 7),
                  "unsupported tile combination");
    if constexpr (C == 0) {
      _tile_dpbusd(0, 4, 6);
    } else if constexpr (C == 1) {
      _tile_dpbusd(1, 4, 7);
    } else if constexpr (C == 2) {
      _tile_dpbusd(2, 5, 6);
    } else {
      _tile_dpbusd(3, 5, 7);
    }
  }
};

}  // namespace

void gemmAmxHw(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  HwTiles tiles;
  gemmAmxWith(tiles, c, m0, m1, nb0, nb1, epilogueRowsAvx512);
}

}  // namespace qbnn

#pragma GCC pop_options

#else
#include "amx_kernel.h"
namespace qbnn {
void gemmAmxHw(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) { gemmAmxEmu(c, m0, m1, nb0, nb1); }
}  // namespace qbnn
#endif
