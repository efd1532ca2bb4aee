// AVX-512 VNNI GEMM: vpdpbusd zmm, 6 rows x 4 blocks of 16 channels in 24 accumulators,
// the whole K reduction in registers, then a vectorised float64 epilogue.
#include "common.h"

#if QBNN_X86
#include <immintrin.h>

#include <cstring>

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

namespace qbnn {
namespace {

// Epilogue of 16 channels of row m (raw = sum a w), writing `valid` channels from n0.
inline void epilogue16(const GemmCtx& c, int32_t m, int32_t n0, __m512i raw, int valid) {
  const __mmask16 mask = valid >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << valid) - 1u);
  const __m512i zw = _mm512_loadu_si512(c.zw + n0);
  const __m512i ct = _mm512_loadu_si512(c.colTerm + n0);
  const __m512i acc =
      _mm512_add_epi32(_mm512_sub_epi32(raw, _mm512_mullo_epi32(zw, _mm512_set1_epi32(c.aSums[m]))), ct);
  const size_t idx = static_cast<size_t>(m) * c.ldo + static_cast<size_t>(n0);
  if (c.outKind == OUT_I32) {
    _mm512_mask_storeu_epi32(static_cast<int32_t*>(c.out) + idx, mask, acc);
    return;
  }
  const __m512d lo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(acc));
  const __m512d hi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(acc, 1));
  const __m512d vlo = _mm512_mul_pd(lo, _mm512_loadu_pd(c.mult + n0));
  const __m512d vhi = _mm512_mul_pd(hi, _mm512_loadu_pd(c.mult + n0 + 8));
  if (c.outKind == OUT_F32) {
    const __m256 flo = _mm512_cvtpd_ps(vlo);
    const __m256 fhi = _mm512_cvtpd_ps(vhi);
    const __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(flo), fhi, 1);
    _mm512_mask_storeu_ps(static_cast<float*>(c.out) + idx, mask, f);
    return;
  }
  const __m512d zo = _mm512_set1_pd(static_cast<double>(c.zo));
  const __m512d lov = _mm512_set1_pd(static_cast<double>(c.lo));
  const __m512d hiv = _mm512_set1_pd(255.0);
  __m512d qlo = _mm512_add_pd(_mm512_roundscale_pd(vlo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zo);
  __m512d qhi = _mm512_add_pd(_mm512_roundscale_pd(vhi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zo);
  qlo = _mm512_min_pd(_mm512_max_pd(qlo, lov), hiv);
  qhi = _mm512_min_pd(_mm512_max_pd(qhi, lov), hiv);
  const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(qlo)), _mm512_cvttpd_epi32(qhi), 1);
  _mm_mask_storeu_epi8(static_cast<uint8_t*>(c.out) + idx, mask, _mm512_cvtepi32_epi8(q));
}

// The full 6 x 4 block in assembly: GCC 12 does not keep an array of 24 vpdpbusd accumulators
// in registers (it copies them through the stack every iteration), which costs 3x.
// zmm0-23 accumulate rows r, blocks j as zmm(4r + j); zmm24-27 hold the weights of one group,
// zmm28/29 the broadcast activations.
// Row r of the activations, group g, is read at a + (r % 3) * lda + (r / 3) * 3 * lda + g * astep
// (astep = 4 for rows of the matrix itself). Groups [g0, g0 + gcount) only: the accumulators
// start from `accIn` (6 x 4 x 16 int32; zeros for the first K slice) and end in `accOut`; on the
// last slice the epilogue runs on them.
alignas(64) const int32_t kZeroAcc[6 * 4 * 16] = {};

void micro64Asm(const GemmCtx& c, const uint8_t* ap, size_t lda, size_t astep, int32_t m, int mr, int32_t nb,
                int32_t g0, int32_t gcount, const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* b3 = b + 3 * bs;
  const uint8_t* a = ap + static_cast<size_t>(g0) * astep;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 192(%[in]), %%zmm3\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 448(%[in]), %%zmm7\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "vmovdqa64 704(%[in]), %%zmm11\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 896(%[in]), %%zmm14\n\t"
      "vmovdqa64 960(%[in]), %%zmm15\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "vmovdqa64 1088(%[in]), %%zmm17\n\t"
      "vmovdqa64 1152(%[in]), %%zmm18\n\t"
      "vmovdqa64 1216(%[in]), %%zmm19\n\t"
      "vmovdqa64 1280(%[in]), %%zmm20\n\t"
      "vmovdqa64 1344(%[in]), %%zmm21\n\t"
      "vmovdqa64 1408(%[in]), %%zmm22\n\t"
      "vmovdqa64 1472(%[in]), %%zmm23\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vmovdqa64 (%[b3]), %%zmm27\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm3\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm7\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm11\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm14\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm15\n\t"
      "vpbroadcastd (%[a3], %[lda], 2), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm17\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm18\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm19\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm20\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm21\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm22\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm23\n\t"
      "add $64, %[b]\n\t"
      "add $64, %[b3]\n\t"
      "add %[astep], %[a]\n\t"
      "add %[astep], %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm3, 192(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm7, 448(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      "vmovdqa64 %%zmm11, 704(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm14, 896(%[acc])\n\t"
      "vmovdqa64 %%zmm15, 960(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      "vmovdqa64 %%zmm17, 1088(%[acc])\n\t"
      "vmovdqa64 %%zmm18, 1152(%[acc])\n\t"
      "vmovdqa64 %%zmm19, 1216(%[acc])\n\t"
      "vmovdqa64 %%zmm20, 1280(%[acc])\n\t"
      "vmovdqa64 %%zmm21, 1344(%[acc])\n\t"
      "vmovdqa64 %%zmm22, 1408(%[acc])\n\t"
      "vmovdqa64 %%zmm23, 1472(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [b3] "+r"(b3), [kg] "+r"(kg)
      : [lda] "r"(lda), [astep] "r"(astep), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12",
        "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23", "zmm24",
        "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < mr; ++r) {
    for (int j = 0; j < 4; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

// 1 to 5 rows of the same kernel, for small M (batch-1 Monte Carlo inference) and the last rows
// of a GEMM: they read only their own rows, so no padding or copy is needed. These and the
// narrow kernels below repeat micro64Asm's pattern written out for each shape (rows r use
// zmm(4r + j) for block j, weights zmm24-27, broadcasts zmm28/29), so each loop body holds
// exactly the loads and vpdpbusd it needs.
void micro64Asm1(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0,
                  int32_t gcount, const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* b3 = b + 3 * bs;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 192(%[in]), %%zmm3\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vmovdqa64 (%[b3]), %%zmm27\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm3\n\t"
      "add $64, %[b]\n\t"
      "add $64, %[b3]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm3, 192(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [b3] "+r"(b3), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 1; ++r) {
    for (int j = 0; j < 4; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void micro64Asm2(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0,
                  int32_t gcount, const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* b3 = b + 3 * bs;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 192(%[in]), %%zmm3\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 448(%[in]), %%zmm7\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vmovdqa64 (%[b3]), %%zmm27\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm3\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm7\n\t"
      "add $64, %[b]\n\t"
      "add $64, %[b3]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm3, 192(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm7, 448(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [b3] "+r"(b3), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 2; ++r) {
    for (int j = 0; j < 4; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void micro64Asm3(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0,
                  int32_t gcount, const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* b3 = b + 3 * bs;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 192(%[in]), %%zmm3\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 448(%[in]), %%zmm7\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "vmovdqa64 704(%[in]), %%zmm11\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vmovdqa64 (%[b3]), %%zmm27\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm3\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm7\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm11\n\t"
      "add $64, %[b]\n\t"
      "add $64, %[b3]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm3, 192(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm7, 448(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      "vmovdqa64 %%zmm11, 704(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [b3] "+r"(b3), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 4; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void micro64Asm4(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0,
                  int32_t gcount, const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* b3 = b + 3 * bs;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 192(%[in]), %%zmm3\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 448(%[in]), %%zmm7\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "vmovdqa64 704(%[in]), %%zmm11\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 896(%[in]), %%zmm14\n\t"
      "vmovdqa64 960(%[in]), %%zmm15\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vmovdqa64 (%[b3]), %%zmm27\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm3\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm7\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm11\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm14\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm15\n\t"
      "add $64, %[b]\n\t"
      "add $64, %[b3]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm3, 192(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm7, 448(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      "vmovdqa64 %%zmm11, 704(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm14, 896(%[acc])\n\t"
      "vmovdqa64 %%zmm15, 960(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [b3] "+r"(b3), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 4; ++r) {
    for (int j = 0; j < 4; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void micro64Asm5(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0,
                  int32_t gcount, const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* b3 = b + 3 * bs;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 192(%[in]), %%zmm3\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 448(%[in]), %%zmm7\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "vmovdqa64 704(%[in]), %%zmm11\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 896(%[in]), %%zmm14\n\t"
      "vmovdqa64 960(%[in]), %%zmm15\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "vmovdqa64 1088(%[in]), %%zmm17\n\t"
      "vmovdqa64 1152(%[in]), %%zmm18\n\t"
      "vmovdqa64 1216(%[in]), %%zmm19\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vmovdqa64 (%[b3]), %%zmm27\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm3\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm7\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm11\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm14\n\t"
      "vpdpbusd %%zmm27, %%zmm29, %%zmm15\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm17\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm18\n\t"
      "vpdpbusd %%zmm27, %%zmm28, %%zmm19\n\t"
      "add $64, %[b]\n\t"
      "add $64, %[b3]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm3, 192(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm7, 448(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      "vmovdqa64 %%zmm11, 704(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm14, 896(%[acc])\n\t"
      "vmovdqa64 %%zmm15, 960(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      "vmovdqa64 %%zmm17, 1088(%[acc])\n\t"
      "vmovdqa64 %%zmm18, 1152(%[acc])\n\t"
      "vmovdqa64 %%zmm19, 1216(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [b3] "+r"(b3), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 5; ++r) {
    for (int j = 0; j < 4; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

using TailFn = void (*)(const GemmCtx&, const uint8_t*, size_t, int32_t, int32_t, int32_t, int32_t, const int32_t*,
                       int32_t*, bool);
const TailFn kTailKernels[6] = {nullptr, micro64Asm1, micro64Asm2, micro64Asm3, micro64Asm4, micro64Asm5};

// Kernels for the last 1-3 channel blocks of N (R rows x NR blocks), same contract as above.
void microAsm1x1(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm24", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 1; ++r) {
    for (int j = 0; j < 1; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm2x1(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm4", "zmm24", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 2; ++r) {
    for (int j = 0; j < 1; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm3x1(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm4", "zmm8", "zmm24", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 1; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm4x1(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm4", "zmm8", "zmm12", "zmm24", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 4; ++r) {
    for (int j = 0; j < 1; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm5x1(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm4", "zmm8", "zmm12", "zmm16", "zmm24", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 5; ++r) {
    for (int j = 0; j < 1; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm6x1(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "vmovdqa64 1280(%[in]), %%zmm20\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "vpbroadcastd (%[a3], %[lda], 2), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm20\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      "vmovdqa64 %%zmm20, 1280(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm4", "zmm8", "zmm12", "zmm16", "zmm20", "zmm24", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 6; ++r) {
    for (int j = 0; j < 1; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm1x2(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm24", "zmm25", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 1; ++r) {
    for (int j = 0; j < 2; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm2x2(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm4", "zmm5", "zmm24", "zmm25", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 2; ++r) {
    for (int j = 0; j < 2; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm3x2(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm4", "zmm5", "zmm8", "zmm9", "zmm24", "zmm25", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 2; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm4x2(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm4", "zmm5", "zmm8", "zmm9", "zmm12", "zmm13", "zmm24", "zmm25", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 4; ++r) {
    for (int j = 0; j < 2; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm5x2(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "vmovdqa64 1088(%[in]), %%zmm17\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm17\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      "vmovdqa64 %%zmm17, 1088(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm4", "zmm5", "zmm8", "zmm9", "zmm12", "zmm13", "zmm16", "zmm17", "zmm24", "zmm25", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 5; ++r) {
    for (int j = 0; j < 2; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm6x2(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "vmovdqa64 1088(%[in]), %%zmm17\n\t"
      "vmovdqa64 1280(%[in]), %%zmm20\n\t"
      "vmovdqa64 1344(%[in]), %%zmm21\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm17\n\t"
      "vpbroadcastd (%[a3], %[lda], 2), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm20\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm21\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      "vmovdqa64 %%zmm17, 1088(%[acc])\n\t"
      "vmovdqa64 %%zmm20, 1280(%[acc])\n\t"
      "vmovdqa64 %%zmm21, 1344(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm4", "zmm5", "zmm8", "zmm9", "zmm12", "zmm13", "zmm16", "zmm17", "zmm20", "zmm21", "zmm24", "zmm25", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 6; ++r) {
    for (int j = 0; j < 2; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm1x3(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm24", "zmm25", "zmm26", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 1; ++r) {
    for (int j = 0; j < 3; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm2x3(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm4", "zmm5", "zmm6", "zmm24", "zmm25", "zmm26", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 2; ++r) {
    for (int j = 0; j < 3; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm3x3(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm4", "zmm5", "zmm6", "zmm8", "zmm9", "zmm10", "zmm24", "zmm25", "zmm26", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 3; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm4x3(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 896(%[in]), %%zmm14\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm14\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm14, 896(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm4", "zmm5", "zmm6", "zmm8", "zmm9", "zmm10", "zmm12", "zmm13", "zmm14", "zmm24", "zmm25", "zmm26", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 4; ++r) {
    for (int j = 0; j < 3; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm5x3(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 896(%[in]), %%zmm14\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "vmovdqa64 1088(%[in]), %%zmm17\n\t"
      "vmovdqa64 1152(%[in]), %%zmm18\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm14\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm17\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm18\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm14, 896(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      "vmovdqa64 %%zmm17, 1088(%[acc])\n\t"
      "vmovdqa64 %%zmm18, 1152(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm4", "zmm5", "zmm6", "zmm8", "zmm9", "zmm10", "zmm12", "zmm13", "zmm14", "zmm16", "zmm17", "zmm18", "zmm24", "zmm25", "zmm26", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 5; ++r) {
    for (int j = 0; j < 3; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

void microAsm6x3(const GemmCtx& c, const uint8_t* ap, size_t lda, int32_t m, int32_t nb, int32_t g0, int32_t gcount,
                const int32_t* accIn, int32_t* accOut, bool last) {
  const Packed& w = *c.w;
  const size_t bs = w.blockBytes();
  const uint8_t* b = w.data + static_cast<size_t>(nb) * bs + static_cast<size_t>(g0) * 64;
  const uint8_t* a = ap + static_cast<size_t>(g0) * 4;
  const uint8_t* a3 = a + 3 * lda;
  int64_t kg = gcount;
  alignas(64) int32_t local[6][4][16];
  int32_t* accp = last ? &local[0][0][0] : accOut;
  __asm__ volatile(
      "vmovdqa64 0(%[in]), %%zmm0\n\t"
      "vmovdqa64 64(%[in]), %%zmm1\n\t"
      "vmovdqa64 128(%[in]), %%zmm2\n\t"
      "vmovdqa64 256(%[in]), %%zmm4\n\t"
      "vmovdqa64 320(%[in]), %%zmm5\n\t"
      "vmovdqa64 384(%[in]), %%zmm6\n\t"
      "vmovdqa64 512(%[in]), %%zmm8\n\t"
      "vmovdqa64 576(%[in]), %%zmm9\n\t"
      "vmovdqa64 640(%[in]), %%zmm10\n\t"
      "vmovdqa64 768(%[in]), %%zmm12\n\t"
      "vmovdqa64 832(%[in]), %%zmm13\n\t"
      "vmovdqa64 896(%[in]), %%zmm14\n\t"
      "vmovdqa64 1024(%[in]), %%zmm16\n\t"
      "vmovdqa64 1088(%[in]), %%zmm17\n\t"
      "vmovdqa64 1152(%[in]), %%zmm18\n\t"
      "vmovdqa64 1280(%[in]), %%zmm20\n\t"
      "vmovdqa64 1344(%[in]), %%zmm21\n\t"
      "vmovdqa64 1408(%[in]), %%zmm22\n\t"
      "test %[kg], %[kg]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[b]), %%zmm24\n\t"
      "vmovdqa64 (%[b], %[bs], 1), %%zmm25\n\t"
      "vmovdqa64 (%[b], %[bs], 2), %%zmm26\n\t"
      "vpbroadcastd (%[a]), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm1\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm2\n\t"
      "vpbroadcastd (%[a], %[lda], 1), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm5\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm6\n\t"
      "vpbroadcastd (%[a], %[lda], 2), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm9\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm10\n\t"
      "vpbroadcastd (%[a3]), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm13\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm14\n\t"
      "vpbroadcastd (%[a3], %[lda], 1), %%zmm28\n\t"
      "vpdpbusd %%zmm24, %%zmm28, %%zmm16\n\t"
      "vpdpbusd %%zmm25, %%zmm28, %%zmm17\n\t"
      "vpdpbusd %%zmm26, %%zmm28, %%zmm18\n\t"
      "vpbroadcastd (%[a3], %[lda], 2), %%zmm29\n\t"
      "vpdpbusd %%zmm24, %%zmm29, %%zmm20\n\t"
      "vpdpbusd %%zmm25, %%zmm29, %%zmm21\n\t"
      "vpdpbusd %%zmm26, %%zmm29, %%zmm22\n\t"
      "add $64, %[b]\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a3]\n\t"
      "dec %[kg]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqa64 %%zmm0, 0(%[acc])\n\t"
      "vmovdqa64 %%zmm1, 64(%[acc])\n\t"
      "vmovdqa64 %%zmm2, 128(%[acc])\n\t"
      "vmovdqa64 %%zmm4, 256(%[acc])\n\t"
      "vmovdqa64 %%zmm5, 320(%[acc])\n\t"
      "vmovdqa64 %%zmm6, 384(%[acc])\n\t"
      "vmovdqa64 %%zmm8, 512(%[acc])\n\t"
      "vmovdqa64 %%zmm9, 576(%[acc])\n\t"
      "vmovdqa64 %%zmm10, 640(%[acc])\n\t"
      "vmovdqa64 %%zmm12, 768(%[acc])\n\t"
      "vmovdqa64 %%zmm13, 832(%[acc])\n\t"
      "vmovdqa64 %%zmm14, 896(%[acc])\n\t"
      "vmovdqa64 %%zmm16, 1024(%[acc])\n\t"
      "vmovdqa64 %%zmm17, 1088(%[acc])\n\t"
      "vmovdqa64 %%zmm18, 1152(%[acc])\n\t"
      "vmovdqa64 %%zmm20, 1280(%[acc])\n\t"
      "vmovdqa64 %%zmm21, 1344(%[acc])\n\t"
      "vmovdqa64 %%zmm22, 1408(%[acc])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [kg] "+r"(kg)
      : [lda] "r"(lda), [bs] "r"(bs), [acc] "r"(accp), [in] "r"(accIn)
      : "zmm0", "zmm1", "zmm2", "zmm4", "zmm5", "zmm6", "zmm8", "zmm9", "zmm10", "zmm12", "zmm13", "zmm14", "zmm16", "zmm17", "zmm18", "zmm20", "zmm21", "zmm22", "zmm24", "zmm25", "zmm26", "zmm28", "zmm29", "cc", "memory");
  if (!last) return;
  for (int r = 0; r < 6; ++r) {
    for (int j = 0; j < 3; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = w.n - n0 < 16 ? w.n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

using BlockFn = void (*)(const GemmCtx&, const uint8_t*, size_t, int32_t, int32_t, int32_t, int32_t, const int32_t*,
                        int32_t*, bool);
// kNarrowKernels[nr - 1][mr - 1] for nr < 4.
const BlockFn kNarrowKernels[3][6] = {
    {microAsm1x1, microAsm2x1, microAsm3x1, microAsm4x1, microAsm5x1, microAsm6x1},
    {microAsm1x2, microAsm2x2, microAsm3x2, microAsm4x2, microAsm5x2, microAsm6x2},
    {microAsm1x3, microAsm2x3, microAsm3x3, microAsm4x3, microAsm5x3, microAsm6x3},
};

constexpr int kMr = 6;
constexpr int kNr = 4;
#ifndef QBNN_SLICE_GROUPS
#define QBNN_SLICE_GROUPS 256
#endif
constexpr int32_t kSliceGroups = QBNN_SLICE_GROUPS;

}  // namespace

void gemmAvx512Vnni(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  // For each 64-channel panel (4 blocks) the K reduction is cut into slices of at most
  // kSliceGroups groups whose weights stay in cache while every 6-row block of activations
  // streams past; partial sums of each row block wait in a small buffer between slices. Rows
  // are read in place; a last block of 1-5 rows runs on the kernel of that many rows.
  const int32_t kg = c.w->kgroups;
  const int32_t rows = m1 - m0;
  const int32_t mblocks = (rows + kMr - 1) / kMr;
  const int32_t panels = (nb1 - nb0 + kNr - 1) / kNr;
  const int32_t slices = (kg + kSliceGroups - 1) / kSliceGroups;
  const int32_t sliceG = slices > 0 ? (kg + slices - 1) / slices : 0;
  int32_t* partial = nullptr;
  if (slices > 1 && panels > 0) {
    thread_local Scratch partialBuf;
    partial = static_cast<int32_t*>(partialBuf.get(static_cast<size_t>(mblocks) * 6 * 4 * 16 * sizeof(int32_t)));
  }
  for (int32_t p = 0; p < panels; ++p) {
    const int32_t nb = nb0 + p * kNr;
    const int nr = nb1 - nb < kNr ? nb1 - nb : kNr;
    for (int32_t s = 0; s < (slices > 0 ? slices : 1); ++s) {
      const int32_t g0 = s * sliceG;
      const int32_t gc = slices > 0 ? (kg - g0 < sliceG ? kg - g0 : sliceG) : 0;
      const bool last = s + 1 >= slices;
      for (int32_t mb = 0; mb < mblocks; ++mb) {
        const int32_t m = m0 + mb * kMr;
        const int mr = m1 - m < kMr ? m1 - m : kMr;
        int32_t* part = partial ? partial + static_cast<size_t>(mb) * 6 * 4 * 16 : nullptr;
        const int32_t* in = s == 0 ? kZeroAcc : part;
        const uint8_t* am = c.a + static_cast<size_t>(m) * c.lda;
        if (nr < kNr) {
          kNarrowKernels[nr - 1][mr - 1](c, am, c.lda, m, nb, g0, gc, in, part, last);
        } else if (mr == kMr) {
          micro64Asm(c, am, c.lda, 4, m, mr, nb, g0, gc, in, part, last);
        } else {
          kTailKernels[mr](c, am, c.lda, m, nb, g0, gc, in, part, last);
        }
      }
    }
  }
}

void epilogueRowsAvx512(const GemmCtx& c, int32_t m0, int32_t rows, int32_t n0, const int32_t* raw, size_t ldraw) {
  const int valid = c.w->n - n0 < 16 ? c.w->n - n0 : 16;
  for (int32_t r = 0; r < rows; ++r) epilogue16(c, m0 + r, n0, _mm512_loadu_si512(raw + static_cast<size_t>(r) * ldraw), valid);
}

void rowSumsU8Avx512(const uint8_t* a, size_t lda, int32_t m, int32_t k, int32_t* out) {
  for (int32_t r = 0; r < m; ++r) {
    const uint8_t* row = a + static_cast<size_t>(r) * lda;
    __m512i acc = _mm512_setzero_si512();
    int32_t i = 0;
    for (; i + 64 <= k; i += 64) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_loadu_si512(row + i), _mm512_setzero_si512()));
    if (i < k) {
      const __mmask64 mask = _bzhi_u64(~0ULL, static_cast<unsigned>(k - i));
      acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(mask, row + i), _mm512_setzero_si512()));
    }
    out[r] = static_cast<int32_t>(_mm512_reduce_add_epi64(acc));
  }
}

double vpdpbusdPeakOps(int64_t iters) {
  // 12 independent accumulator chains (covers latency x throughput of vpdpbusd), written in
  // assembly so the compiler cannot add moves or spills to the measured loop.
  int64_t n = iters;
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
      "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
      "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
      "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
      "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
      "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"
      "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
      "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"
      "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
      "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"
      "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
      "1:\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm0\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm1\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm2\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm3\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm4\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm5\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm6\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm7\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm8\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm9\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm10\n\t"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm11\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(n)
      :
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm30", "zmm31", "cc");
  return static_cast<double>(iters) * 12.0 * 16.0 * 4.0 * 2.0;
}

}  // namespace qbnn

#pragma GCC pop_options

#else
namespace qbnn {
void gemmAvx512Vnni(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1) {
  gemmScalar(c, m0, m1, nb0, nb1);
}
double vpdpbusdPeakOps(int64_t) { return 0.0; }
void epilogueRowsAvx512(const GemmCtx& c, int32_t m0, int32_t rows, int32_t n0, const int32_t* raw, size_t ldraw) {
  epilogueRowsScalar(c, m0, rows, n0, raw, ldraw);
}
void rowSumsU8Avx512(const uint8_t* a, size_t lda, int32_t m, int32_t k, int32_t* out) {
  for (int32_t r = 0; r < m; ++r) {
    int32_t s = 0;
    for (int32_t i = 0; i < k; ++i) s += a[static_cast<size_t>(r) * lda + i];
    out[r] = s;
  }
}
}  // namespace qbnn
#endif
