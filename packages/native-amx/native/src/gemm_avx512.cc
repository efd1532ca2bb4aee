// AVX-512 VNNI GEMM: vpdpbusd zmm, up to 6 rows x 4 blocks of 16 channels in 24 accumulators
// (generated assembly microkernels, gemm_avx512_micro.inc), the whole K reduction in registers,
// then a vectorised float64 epilogue.
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

// The accumulators of a block of `rows` x `nr` x 16 channels through the epilogue.
inline void epilogueBlock(const GemmCtx& c, const int32_t (*local)[4][16], int32_t m, int32_t nb, int rows, int nr) {
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < nr; ++j) {
      const int32_t n0 = (nb + j) * 16;
      const int valid = c.w->n - n0 < 16 ? c.w->n - n0 : 16;
      epilogue16(c, m + r, n0, _mm512_load_si512(local[r][j]), valid);
    }
  }
}

// The microkernels (inline assembly, generated): kGemmKernels[nr - 1][rows - 1].
#include "gemm_avx512_micro.inc"

alignas(64) const int32_t kZeroAcc[6 * 4 * 16] = {};

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
        kGemmKernels[nr - 1][mr - 1](c, am, c.lda, m, nb, g0, gc, in, part, last);
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
