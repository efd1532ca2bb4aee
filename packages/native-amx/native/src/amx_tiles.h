// The thin AMX tile layer: tile configuration, tileloadd, tdpbusd, tilestored, tilezero.
// `EmuTiles` is an exact software emulation (the semantics of the Intel SDM: u8 x s8 byte
// dot products of 4, accumulated into wrapping int32, no saturation); `HwTiles` (amx_hw.cc)
// maps the same calls to the AMX intrinsics. The AMX GEMM kernel is written once against
// this interface (amx_kernel.h).
#pragma once

#include <cstring>

#include "common.h"

namespace qbnn {

struct EmuTiles {
  struct Tile {
    int rows = 0;
    int colsb = 0;
    alignas(64) uint8_t d[16 * 64];
  };
  Tile t[8];

  void configure(const uint8_t rows[8], const uint16_t colsb[8]) {
    for (int i = 0; i < 8; ++i) {
      t[i].rows = rows[i];
      t[i].colsb = colsb[i];
      std::memset(t[i].d, 0, sizeof(t[i].d));
    }
  }
  void release() {}
  template <int T>
  void zero() {
    std::memset(t[T].d, 0, sizeof(t[T].d));
  }
  template <int T>
  void load(const void* p, size_t stride) {
    const uint8_t* s = static_cast<const uint8_t*>(p);
    for (int r = 0; r < t[T].rows; ++r) std::memcpy(t[T].d + r * 64, s + r * stride, t[T].colsb);
  }
  template <int T>
  void store(void* p, size_t stride) const {
    uint8_t* d = static_cast<uint8_t*>(p);
    for (int r = 0; r < t[T].rows; ++r) std::memcpy(d + r * stride, t[T].d + r * 64, t[T].colsb);
  }
  // C[m][n] += sum_{k < A.colsb/4} sum_{j<4} u8(A[m][4k+j]) * s8(B[k][4n+j])
  template <int C, int A, int B>
  void dpbusd() {
    Tile& c = t[C];
    const Tile& a = t[A];
    const Tile& b = t[B];
    const int kq = a.colsb / 4;
    const int nq = c.colsb / 4;
    for (int m = 0; m < c.rows; ++m) {
      int32_t acc[16];
      std::memcpy(acc, c.d + m * 64, sizeof(acc));
      for (int k = 0; k < kq; ++k) {
        const uint8_t* ar = a.d + m * 64 + 4 * k;
        const int8_t* br = reinterpret_cast<const int8_t*>(b.d + k * 64);
        const int32_t a0 = ar[0], a1 = ar[1], a2 = ar[2], a3 = ar[3];
        for (int n = 0; n < nq; ++n) {
          const int32_t dot = a0 * br[4 * n] + a1 * br[4 * n + 1] + a2 * br[4 * n + 2] + a3 * br[4 * n + 3];
          acc[n] = wadd(acc[n], dot);
        }
      }
      std::memcpy(c.d + m * 64, acc, sizeof(acc));
    }
  }
};

}  // namespace qbnn
