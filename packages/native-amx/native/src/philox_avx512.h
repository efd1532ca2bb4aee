// Philox4x32-10 of 8 consecutive blocks in AVX-512 registers (shared by the int8 and fp32
// samplers). Include it inside a region compiled for avx512f (the includer's target pragma).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace qbnn {

// Philox4x32-10 of 8 consecutive blocks, one per 64-bit lane: each 32-bit word lives in the low
// half of its lane (vpmuludq reads only that half, so the high halves may hold garbage).
static inline void philox8(uint32_t k0, uint32_t k1, uint64_t block, __m256i out[4]) {
  const __m512i b = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(block)),
                                     _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  const __m512i m0 = _mm512_set1_epi64(0xd2511f53u);
  const __m512i m1 = _mm512_set1_epi64(0xcd9e8d57u);
  // Round 1 of the counter (low and high 32 bits of the block number, 0, 0): x2 = x3 = 0, so
  // one product and plain xors.
  const __m512i p = _mm512_mul_epu32(b, m0);
  __m512i x0 = _mm512_xor_si512(_mm512_srli_epi64(b, 32), _mm512_set1_epi64(k0));
  __m512i x1 = _mm512_setzero_si512();
  __m512i x2 = _mm512_xor_si512(_mm512_srli_epi64(p, 32), _mm512_set1_epi64(k1));
  __m512i x3 = p;
  uint32_t a = k0 + 0x9e3779b9u, c = k1 + 0xbb67ae85u;
  for (int r = 1; r < 10; ++r) {
    const __m512i p0 = _mm512_mul_epu32(x0, m0);
    const __m512i p1 = _mm512_mul_epu32(x2, m1);
    // x0 = hi(p1) ^ x1 ^ key0; x2 = hi(p0) ^ x3 ^ key1 (0x96: three-way xor)
    x0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), x1, _mm512_set1_epi64(a), 0x96);
    x2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), x3, _mm512_set1_epi64(c), 0x96);
    x1 = p1;
    x3 = p0;
    a += 0x9e3779b9u;
    c += 0xbb67ae85u;
  }
  out[0] = _mm512_cvtepi64_epi32(x0);
  out[1] = _mm512_cvtepi64_epi32(x1);
  out[2] = _mm512_cvtepi64_epi32(x2);
  out[3] = _mm512_cvtepi64_epi32(x3);
}

}  // namespace qbnn
