// The AMX kernel over the exact software tile emulation (runs on any CPU).
#include "amx_kernel.h"
#include "amx_tiles.h"

namespace qbnn {

void gemmAmxEmu(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  // The same AVX-512 epilogue as the hardware path when this CPU has it (so the tests here cover
  // it), the scalar one otherwise.
  EmuTiles tiles;
  gemmAmxWith(tiles, c, m0, m1, nb0, nb1, cpuFeatures().avx512vnni ? epilogueRowsAvx512 : epilogueRowsScalar);
}

}  // namespace qbnn
