// Philox4x32-10 of consecutive blocks in AVX-512 registers (shared by the int8 and fp32
// samplers). Include it inside a region compiled for avx512f (the includer's target pragma).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace qbnn {

// Philox4x32-10 of 8C consecutive blocks from `block` as C independent chains of 8 (interleaved,
// so that the multiplies of one chain hide the latency of the others): out[c][j] = word j of
// blocks block + 8c .. block + 8c + 7, one per 64-bit lane, in the low half of the lane
// (vpmuludq reads only that half, so the high halves hold garbage).
template <int C>
static inline void philoxChains(uint32_t k0, uint32_t k1, uint64_t block, __m512i out[C][4]) {
  const __m512i m0 = _mm512_set1_epi64(0xd2511f53u);
  const __m512i m1 = _mm512_set1_epi64(0xcd9e8d57u);
  __m512i x[C][4];
  for (int c = 0; c < C; ++c) {
    const __m512i b = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(block + 8 * c)),
                                       _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    // Round 1 of the counter (low and high 32 bits of the block number, 0, 0): x2 = x3 = 0, so
    // one product and plain xors.
    const __m512i p0 = _mm512_mul_epu32(b, m0);
    x[c][0] = _mm512_xor_si512(_mm512_srli_epi64(b, 32), _mm512_set1_epi64(k0));
    x[c][1] = _mm512_setzero_si512();
    x[c][2] = _mm512_xor_si512(_mm512_srli_epi64(p0, 32), _mm512_set1_epi64(k1));
    x[c][3] = p0;
  }
  uint32_t a = k0 + 0x9e3779b9u, d = k1 + 0xbb67ae85u;
  for (int r = 1; r < 10; ++r) {
    for (int c = 0; c < C; ++c) {
      const __m512i p0 = _mm512_mul_epu32(x[c][0], m0);
      const __m512i p1 = _mm512_mul_epu32(x[c][2], m1);
      // x0 = hi(p1) ^ x1 ^ key0; x2 = hi(p0) ^ x3 ^ key1 (0x96: three-way xor)
      x[c][0] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), x[c][1], _mm512_set1_epi64(a), 0x96);
      x[c][2] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), x[c][3], _mm512_set1_epi64(d), 0x96);
      x[c][1] = p1;
      x[c][3] = p0;
    }
    a += 0x9e3779b9u;
    d += 0xbb67ae85u;
  }
  for (int c = 0; c < C; ++c)
    for (int j = 0; j < 4; ++j) out[c][j] = x[c][j];
}

// Philox4x32-10 of 8 consecutive blocks: out[j] = word j of each (one chain, packed to dwords).
static inline void philox8(uint32_t k0, uint32_t k1, uint64_t block, __m256i out[4]) {
  __m512i x[1][4];
  philoxChains<1>(k0, k1, block, x);
  for (int j = 0; j < 4; ++j) out[j] = _mm512_cvtepi64_epi32(x[0][j]);
}

}  // namespace qbnn
