// AVX-512 fp32 microkernel: R rows x NV zmm of 16 columns in R * NV accumulators, one fused
// multiply-add chain per element in k order. The R x NV variants are instantiated from one
// template (the compiler unrolls the constant loops), never written out by hand.
#include "../common.h"
#include "sgemm.h"

#if QBNN_X86
#include <array>
#include <utility>

#include "avx512_region.h"

QBNN_FP32_AVX512_BEGIN

namespace qbnn {
namespace fp32 {
namespace {

// B row k: a packed panel (b + k * kNr) or, with bRows, a row read in place (bRows[k] + n0).
// A row r: a packed strip (a + r * kKc) or, with StridedA, a row read in place (a + r * lda).
template <int R, int NV, bool InPlace, bool StridedA>
void tile(int kc, const float* a, int64_t lda, const float* b, const float* const* bRows, int64_t n0, float* c,
          int64_t ldc, int cols, bool accumulate) {
  const int64_t as = StridedA ? lda : kKc;
  __m512 acc[R][NV];
  __mmask16 mask[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) mask[v] = tailMask(cols - v * 16);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], c + r * ldc + v * 16) : _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const float* bk = InPlace ? bRows[k] + n0 : b + k * kNr;
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = InPlace ? _mm512_maskz_loadu_ps(mask[v], bk + v * 16) : _mm512_loadu_ps(bk + v * 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * as + k]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(c + r * ldc + v * 16, mask[v], acc[r][v]);
}

using Tile = void (*)(int, const float*, int64_t, const float*, const float* const*, int64_t, float*, int64_t, int,
                      bool);

template <int NV, bool InPlace, bool StridedA, size_t... I>
constexpr auto tableOf(std::index_sequence<I...>) {
  return std::array<Tile, sizeof...(I)>{&tile<static_cast<int>(I) + 1, NV, InPlace, StridedA>...};
}

template <bool InPlace, bool StridedA>
Tile pick(int rows, int cols) {
  static const auto one = tableOf<1, InPlace, StridedA>(std::make_index_sequence<kMr>{});
  static const auto two = tableOf<2, InPlace, StridedA>(std::make_index_sequence<kMr>{});
  return (cols > 16 ? two : one)[rows - 1];
}

void kernel(int kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int rows, int cols,
            bool accumulate) {
  (lda == kKc ? pick<false, false>(rows, cols) : pick<false, true>(rows, cols))(kc, a, lda, b, nullptr, 0, c, ldc,
                                                                                cols, accumulate);
}

void kernelRows(int kc, const float* a, const float* const* bRows, int64_t n0, float* c, int64_t ldc, int rows,
                int cols, bool accumulate) {
  pick<true, false>(rows, cols)(kc, a, kKc, nullptr, bRows, n0, c, ldc, cols, accumulate);
}

// R x C lane accumulators over nb images' rows (see DotKernel in sgemm.h).
template <int R, int C>
void dot(const DotArgs& d) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  const int64_t full = d.width & ~int64_t{15};
  const __mmask16 tail = tailMask(d.width - full);
  for (int b = 0; b < d.nb; ++b) {
    // Row pointers, advanced a row at a time, so that the loop body is loads and FMAs.
    const float* xr[R];
    const float* yr[C];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) xr[r] = d.x + b * d.xImage + d.off[r];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) yr[c] = d.y + b * d.yImage + c * d.yChannel;
    const auto step = [&](int64_t j, __mmask16 m, auto load) {
      __m512 xv[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) xv[r] = load(m, xr[r] + j);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const __m512 yv = load(m, yr[c] + j);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], yv, acc[r][c]);
      }
    };
    for (int64_t i = 0; i < d.rows; ++i) {
      for (int64_t j = 0; j < full; j += 16)
        step(j, 0, [](__mmask16, const float* p) { return _mm512_loadu_ps(p); });
      // Lanes past the width add 0 * 0, as the portable kernel does.
      if (tail != 0) step(full, tail, [](__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); });
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) xr[r] += d.xRow;
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) yr[c] += d.yRow;
    }
  }
  // sumLanes, vectorised: l + 8, l + 4, l + 2, l + 1.
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(acc[r][c]),
                                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r][c]), 1)));
      const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
      const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
      const float sum = _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
      float* o = d.out + r * d.outStride + c;
      *o = d.accumulate ? *o + sum : sum;
    }
}

using Dot = void (*)(const DotArgs&);

template <int R, size_t... I>
constexpr auto dotRow(std::index_sequence<I...>) {
  return std::array<Dot, sizeof...(I)>{&dot<R, static_cast<int>(I) + 1>...};
}

template <size_t... I>
constexpr auto dotTable(std::index_sequence<I...>) {
  return std::array<std::array<Dot, kDotC>, sizeof...(I)>{
      dotRow<static_cast<int>(I) + 1>(std::make_index_sequence<kDotC>{})...};
}

void dotKernel(int R, int C, const DotArgs& d) {
  static const auto table = dotTable(std::make_index_sequence<kDotR>{});
  table[R - 1][C - 1](d);
}

// A transpose stage over 128-bit lanes: vectors x and x + D (x & D == 0) become their even and
// their odd lanes.
template <int D>
inline void pairLanes(const __m512* in, __m512* out) {
#pragma GCC unroll 16
  for (int x = 0; x < 16; ++x)
    if ((x & D) == 0) {
      out[x] = _mm512_shuffle_f32x4(in[x], in[x + D], 0x88);
      out[x + D] = _mm512_shuffle_f32x4(in[x], in[x + D], 0xdd);
    }
}

// Unpack pairs, then 64-bit pairs within 128-bit lanes, then 128-bit lanes twice.
void transposeBlock(const float* src, int64_t srcStride, int rows, int cols, float* dst, int64_t dstStride) {
  const __mmask16 colMask = tailMask(cols), rowMask = tailMask(rows);
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(colMask, src + i * srcStride) : _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  pairLanes<4>(r, t);
  pairLanes<8>(t, r);
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c)
    if (c < cols) _mm512_mask_storeu_ps(dst + c * dstStride, rowMask, r[c]);
}

}  // namespace

TransposeBlock transposeBlockAvx512() { return &transposeBlock; }
MicroKernel microKernelAvx512() { return &kernel; }
DotKernel dotKernelAvx512() { return &dotKernel; }
MicroKernelRows microKernelRowsAvx512() { return &kernelRows; }

double fmaPeakFlops(int64_t iters) {
  // 12 independent accumulator chains hide the FMA latency on two pipes; written in assembly
  // (as vpdpbusdPeakOps) because GCC kept an accumulator array in memory and stored 11 zmm to
  // the stack every round, which measured the store port (~75 GFLOPS) rather than the FMA pipes.
#define QBNN_ZMM12(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)
#define QBNN_ZERO(i) "vpxord %%zmm" #i ", %%zmm" #i ", %%zmm" #i "\n\t"
#define QBNN_FMA(i) "vfmadd231ps %%zmm31, %%zmm30, %%zmm" #i "\n\t"
#define QBNN_CLOBBER(i) "zmm" #i,
  int64_t n = iters;
  __asm__ volatile(QBNN_ZERO(30) QBNN_ZERO(31) QBNN_ZMM12(QBNN_ZERO) "1:\n\t" QBNN_ZMM12(QBNN_FMA) "dec %0\n\tjnz 1b\n\t"
                   : "+r"(n)
                   :
                   : QBNN_ZMM12(QBNN_CLOBBER) "zmm30", "zmm31", "cc");
#undef QBNN_ZMM12
#undef QBNN_ZERO
#undef QBNN_FMA
#undef QBNN_CLOBBER
  return static_cast<double>(iters) * 12 * 16 * 2;
}

}  // namespace fp32
}  // namespace qbnn

QBNN_FP32_AVX512_END

#else

namespace qbnn {
namespace fp32 {
MicroKernel microKernelAvx512() { return nullptr; }
TransposeBlock transposeBlockAvx512() { return nullptr; }
MicroKernelRows microKernelRowsAvx512() { return nullptr; }
DotKernel dotKernelAvx512() { return nullptr; }
double fmaPeakFlops(int64_t) { return 0; }
}  // namespace fp32
}  // namespace qbnn

#endif
