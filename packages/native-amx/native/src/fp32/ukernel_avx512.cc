// AVX-512 fp32 microkernel: R rows x NV zmm of 16 columns in R * NV accumulators, one fused
// multiply-add chain per element in k order. The R x NV variants are instantiated from one
// template (the compiler unrolls the constant loops), never written out by hand.
#include "../common.h"
#include "conv_winograd.h"
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

// Winograd F(2, 5) transforms (conv_winograd.h), 16 outputs q at a time.
void winogradInput(const float* x, int64_t count, float* t, int64_t tStride) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f);
  for (int64_t q = 0; q < count; q += 16) {
    const __mmask16 m = tailMask(count - q);
    __m512 d[6];
#pragma GCC unroll 3
    for (int u = 0; u < 3; ++u) {
      const float* p = x + 2 * q + 2 * u;
      const __m512 lo = _mm512_loadu_ps(p), hi = _mm512_loadu_ps(p + 16);
      d[2 * u] = _mm512_permutex2var_ps(lo, even, hi);
      d[2 * u + 1] = _mm512_permutex2var_ps(lo, odd, hi);
    }
    const __m512 d24 = _mm512_sub_ps(d[4], d[2]);  // d4 - d2
    const __m512 d13 = _mm512_sub_ps(d[1], d[3]);  // d1 - d3
    // t0 = 4 d0 - 5 d2 + d4; t5 = 4 d1 - 5 d3 + d5
    const __m512 t0 = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(four, d[0]), _mm512_mul_ps(five, d[2])), d[4]);
    const __m512 t5 = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(four, d[1]), _mm512_mul_ps(five, d[3])), d[5]);
    // t1 = 4 (d1 + d2) - (d3 + d4); t2 = 4 (d2 - d1) + (d3 - d4)
    const __m512 t1 = _mm512_sub_ps(_mm512_mul_ps(four, _mm512_add_ps(d[1], d[2])), _mm512_add_ps(d[3], d[4]));
    const __m512 t2 = _mm512_add_ps(_mm512_mul_ps(four, _mm512_sub_ps(d[2], d[1])), _mm512_sub_ps(d[3], d[4]));
    // t3 = 2 (d3 - d1) + (d4 - d2); t4 = 2 (d1 - d3) + (d4 - d2)
    const __m512 t3 = _mm512_sub_ps(d24, _mm512_mul_ps(two, d13));
    const __m512 t4 = _mm512_add_ps(_mm512_mul_ps(two, d13), d24);
    _mm512_mask_storeu_ps(t + q, m, t0);
    _mm512_mask_storeu_ps(t + tStride + q, m, t1);
    _mm512_mask_storeu_ps(t + 2 * tStride + q, m, t2);
    _mm512_mask_storeu_ps(t + 3 * tStride + q, m, t3);
    _mm512_mask_storeu_ps(t + 4 * tStride + q, m, t4);
    _mm512_mask_storeu_ps(t + 5 * tStride + q, m, t5);
  }
}

void winogradOutput(const float* mp, int64_t mStride, int64_t count, float* y) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  const __m512 two = _mm512_set1_ps(2.f);
  for (int64_t q = 0; q < count; q += 16) {
    const __mmask16 m = tailMask(count - q);
    __m512 v[6];
#pragma GCC unroll 6
    for (int xi = 0; xi < 6; ++xi) v[xi] = _mm512_maskz_loadu_ps(m, mp + xi * mStride + q);
    // y0 = m0 + (m1 + m2) + (m3 + m4); y1 = (m1 - m2) + 2 (m3 - m4) + m5
    const __m512 y0 = _mm512_add_ps(_mm512_add_ps(v[0], _mm512_add_ps(v[1], v[2])), _mm512_add_ps(v[3], v[4]));
    const __m512 y1 =
        _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(v[1], v[2]), _mm512_mul_ps(two, _mm512_sub_ps(v[3], v[4]))), v[5]);
    const int64_t left = 2 * (count - q);
    _mm512_mask_storeu_ps(y + 2 * q, tailMask(left), _mm512_permutex2var_ps(y0, lo, y1));
    _mm512_mask_storeu_ps(y + 2 * q + 16, tailMask(left - 16), _mm512_permutex2var_ps(y0, hi, y1));
  }
}

}  // namespace

WinogradInput winogradInputAvx512() { return &winogradInput; }
WinogradOutput winogradOutputAvx512() { return &winogradOutput; }
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
WinogradInput winogradInputAvx512() { return nullptr; }
WinogradOutput winogradOutputAvx512() { return nullptr; }
TransposeBlock transposeBlockAvx512() { return nullptr; }
MicroKernelRows microKernelRowsAvx512() { return nullptr; }
DotKernel dotKernelAvx512() { return nullptr; }
double fmaPeakFlops(int64_t) { return 0; }
}  // namespace fp32
}  // namespace qbnn

#endif
