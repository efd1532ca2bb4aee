// AVX2 (no VNNI) and AVX-VNNI GEMM paths, ymm registers.
//
// AVX2 avoids vpmaddubsw, whose int16 pair sums saturate (255 * -128 * 2 < -32768): both
// operands are widened to int16 (vpmovzxbw / vpmovsxbw) and multiplied with vpmaddwd, whose
// pair sums (|.| <= 2 * 255 * 128 = 65280) are exact in int32 and can only saturate for two
// -32768 * -32768 products, impossible here.
#include "common.h"

#if QBNN_X86
#include <immintrin.h>

#include <cstring>

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2")

namespace qbnn {
namespace {

inline uint32_t loadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Epilogue of 8 channels (n0..n0+7) of row m, all valid: the same float64 steps as epilogueOne.
inline void epilogue8(const GemmCtx& c, int32_t m, int32_t n0, __m256i raw) {
  const __m256i zw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.zw + n0));
  const __m256i ct = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.colTerm + n0));
  const __m256i acc =
      _mm256_add_epi32(_mm256_sub_epi32(raw, _mm256_mullo_epi32(zw, _mm256_set1_epi32(c.aSums[m]))), ct);
  const size_t idx = static_cast<size_t>(m) * c.ldo + static_cast<size_t>(n0);
  if (c.outKind == OUT_I32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<int32_t*>(c.out) + idx), acc);
    return;
  }
  const __m256d v0 = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(acc)), _mm256_loadu_pd(c.mult + n0));
  const __m256d v1 =
      _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(acc, 1)), _mm256_loadu_pd(c.mult + n0 + 4));
  if (c.outKind == OUT_F32) {
    const __m256 f = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(v0)), _mm256_cvtpd_ps(v1), 1);
    _mm256_storeu_ps(static_cast<float*>(c.out) + idx, f);
    return;
  }
  const __m256d zo = _mm256_set1_pd(static_cast<double>(c.zo));
  const __m256d lo = _mm256_set1_pd(static_cast<double>(c.lo));
  const __m256d hi = _mm256_set1_pd(255.0);
  const __m256d q0 = _mm256_min_pd(
      _mm256_max_pd(_mm256_add_pd(_mm256_round_pd(v0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zo), lo), hi);
  const __m256d q1 = _mm256_min_pd(
      _mm256_max_pd(_mm256_add_pd(_mm256_round_pd(v1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zo), lo), hi);
  const __m128i w16 = _mm_packs_epi32(_mm256_cvttpd_epi32(q0), _mm256_cvttpd_epi32(q1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(c.out) + idx), _mm_packus_epi16(w16, w16));
}

inline void store16(const GemmCtx& c, int32_t m, int32_t nb, __m256i lo8, __m256i hi8) {
  if ((nb + 1) * 16 <= c.w->n) {
    epilogue8(c, m, nb * 16, lo8);
    epilogue8(c, m, nb * 16 + 8, hi8);
    return;
  }
  alignas(32) int32_t raw[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(raw), lo8);
  _mm256_store_si256(reinterpret_cast<__m256i*>(raw + 8), hi8);
  const int32_t n0 = nb * 16;
  const int32_t nEnd = n0 + 16 < c.w->n ? n0 + 16 : c.w->n;
  for (int32_t n = n0; n < nEnd; ++n) epilogueOne(c, m, n, raw[n - n0]);
}

// ---- AVX2: widen to int16, vpmaddwd. Accumulator j holds channels 4j..4j+3, two partial sums each.
template <int MR>
void microAvx2(const GemmCtx& c, int32_t m, int32_t nb) {
  const Packed& w = *c.w;
  const uint8_t* b = w.data + static_cast<size_t>(nb) * w.blockBytes();
  const uint8_t* a = c.a + static_cast<size_t>(m) * c.lda;
  __m256i acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_setzero_si256();
  for (int32_t g = 0; g < w.kgroups; ++g) {
    const uint8_t* bg = b + static_cast<size_t>(g) * 64;
    __m256i bw[4];
    for (int j = 0; j < 4; ++j)
      bw[j] = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bg + 16 * j)));
    for (int r = 0; r < MR; ++r) {
      const __m128i a4 = _mm_cvtsi32_si128(static_cast<int>(loadU32(a + r * c.lda + static_cast<size_t>(g) * 4)));
      const __m256i av = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(a4));
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(av, bw[j]));
    }
  }
  for (int r = 0; r < MR; ++r) {
    // hadd pairs: lanes become [c0 c1 c4 c5 | c2 c3 c6 c7]; permute 64-bit halves into order.
    const __m256i s01 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xd8);
    const __m256i s23 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2], acc[r][3]), 0xd8);
    store16(c, m + r, nb, s01, s23);
  }
}

using MicroFn = void (*)(const GemmCtx&, int32_t, int32_t);


MicroFn avx2Table(int mr) { return mr == 1 ? microAvx2<1> : microAvx2<2>; }

}  // namespace
}  // namespace qbnn

#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2,avxvnni")

namespace qbnn {
namespace {
// ---- AVX-VNNI: vpdpbusd ymm (VEX), MR rows x one block (2 ymm of 8 channels).
template <int MR>
void microVnni(const GemmCtx& c, int32_t m, int32_t nb) {
  const Packed& w = *c.w;
  const uint8_t* b = w.data + static_cast<size_t>(nb) * w.blockBytes();
  const uint8_t* a = c.a + static_cast<size_t>(m) * c.lda;
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int32_t g = 0; g < w.kgroups; ++g) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + static_cast<size_t>(g) * 64));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + static_cast<size_t>(g) * 64 + 32));
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(static_cast<int>(loadU32(a + r * c.lda + static_cast<size_t>(g) * 4)));
      acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], av, b1);
    }
  }
  for (int r = 0; r < MR; ++r) store16(c, m + r, nb, acc[r][0], acc[r][1]);
}

// 6 rows x one block (16 channels) in assembly: ymm0-11 accumulate row r, half h as ymm(2r + h),
// ymm12/13 hold the group's weights, ymm14/15 the broadcast activations.
void microVnni6Asm(const GemmCtx& c, int32_t m, int32_t nb) {
  const Packed& w = *c.w;
  const uint8_t* b = w.data + static_cast<size_t>(nb) * w.blockBytes();
  const uint8_t* a = c.a + static_cast<size_t>(m) * c.lda;
  const uint8_t* a3 = a + 3 * c.lda;
  const size_t lda = c.lda;
  int64_t kg = w.kgroups;
  alignas(32) int32_t acc[6][16];
  __asm__ volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
      "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
      "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
      "vpxor %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
      "vpxor %%ymm10, %%ymm10, %%ymm10\n\t"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa (%[b]), %%ymm12\n\t"
      "vmovdqa 32(%[b]), %%ymm13\n\t"
      "vpbroadcastd (%[a]), %%ymm14\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%ymm15\n\t"
      "%{vex%} vpdpbusd %%ymm12, %%ymm14, %%ymm0\n\t"
      "%{vex%} vpdpbusd %%ymm13, %%ymm14, %%ymm1\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%ymm14\n\t"
      "%{vex%} vpdpbusd %%ymm12, %%ymm15, %%ymm2\n\t"
      "%{vex%} vpdpbusd %%ymm13, %%ymm15, %%ymm3\n\t"
      "vpbroadcastd (%[a3]), %%ymm15\n\t"
      "%{vex%} vpdpbusd %%ymm12, %%ymm14, %%ymm4\n\t"
      "%{vex%} vpdpbusd %%ymm13, %%ymm14, %%ymm5\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%ymm14\n\t"
      "%{vex%} vpdpbusd %%ymm12, %%ymm15, %%ymm6\n\t"
      "%{vex%} vpdpbusd %%ymm13, %%ymm15, %%ymm7\n\t"
      "vpbroadcastd (%[a3], %[lda], 2), %%ymm15\n\t"
      "%{vex%} vpdpbusd %%ymm12, %%ymm14, %%ymm8\n\t"
      "%{vex%} vpdpbusd %%ymm13, %%ymm14, %%ymm9\n\t"
      "%{vex%} vpdpbusd %%ymm12, %%ymm15, %%ymm10\n\t"
      "%{vex%} vpdpbusd %%ymm13, %%ymm15, %%ymm11\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa %%ymm0, 0(%[acc])\n\t"
      "vmovdqa %%ymm1, 32(%[acc])\n\t"
      "vmovdqa %%ymm2, 64(%[acc])\n\t"
      "vmovdqa %%ymm3, 96(%[acc])\n\t"
      "vmovdqa %%ymm4, 128(%[acc])\n\t"
      "vmovdqa %%ymm5, 160(%[acc])\n\t"
      "vmovdqa %%ymm6, 192(%[acc])\n\t"
      "vmovdqa %%ymm7, 224(%[acc])\n\t"
      "vmovdqa %%ymm8, 256(%[acc])\n\t"
      "vmovdqa %%ymm9, 288(%[acc])\n\t"
      "vmovdqa %%ymm10, 320(%[acc])\n\t"
      "vmovdqa %%ymm11, 352(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [acc] "r"(&acc[0][0])
      : "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15", "cc", "memory");
  for (int r = 0; r < 6; ++r)
    store16(c, m + r, nb, _mm256_load_si256(reinterpret_cast<const __m256i*>(acc[r])),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(acc[r] + 8)));
}

MicroFn vnniTable(int mr) {
  switch (mr) {
    case 1: return microVnni<1>;
    case 2: return microVnni<2>;
    case 3: return microVnni<3>;
    case 4: return microVnni<4>;
    case 5: return microVnni<5>;
    default: return microVnni6Asm;
  }
}


}  // namespace

double vpdpbusdPeakOpsYmm(int64_t iters) {
  int64_t n = iters;
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
      "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
      "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
      "vpxor %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
      "vpxor %%ymm10, %%ymm10, %%ymm10\n\t"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "1:\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm0\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm1\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm2\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm3\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm4\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm5\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm6\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm7\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm8\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm9\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm10\n\t"
      "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm11\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(n)
      :
      : "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm14", "ymm15", "cc");
  return static_cast<double>(iters) * 12.0 * 8.0 * 4.0 * 2.0;
}

}  // namespace qbnn

#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2")

namespace qbnn {
namespace {
void drive(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1, int mrMax, MicroFn (*tab)(int)) {
  const size_t bs = c.w->blockBytes();
  int32_t panel = static_cast<int32_t>((256 * 1024) / (bs > 0 ? bs : 1));
  if (panel < 1) panel = 1;
  for (int32_t p0 = nb0; p0 < nb1; p0 += panel) {
    const int32_t p1 = p0 + panel < nb1 ? p0 + panel : nb1;
    for (int32_t m = m0; m < m1; m += mrMax) {
      const int mr = m1 - m < mrMax ? m1 - m : mrMax;
      const MicroFn f = tab(mr);
      for (int32_t nb = p0; nb < p1; ++nb) f(c, m, nb);
    }
  }
}

}  // namespace

void gemmAvxVnni(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  drive(c, m0, m1, nb0, nb1, 6, vnniTable);
}

void gemmAvx2(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  drive(c, m0, m1, nb0, nb1, 2, avx2Table);
}

}  // namespace qbnn

#pragma GCC pop_options

#else
namespace qbnn {
void gemmAvxVnni(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) { gemmScalar(c, m0, m1, nb0, nb1); }
void gemmAvx2(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) { gemmScalar(c, m0, m1, nb0, nb1); }
double vpdpbusdPeakOpsYmm(int64_t) { return 0.0; }
}  // namespace qbnn
#endif
