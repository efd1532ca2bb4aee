// AVX-512 fp32 microkernel: R rows x NV zmm of 16 columns in R * NV accumulators, one fused
// multiply-add chain per element in k order. The R x NV variants are instantiated from one
// template (the compiler unrolls the constant loops), never written out by hand.
#include "../common.h"
#include "sgemm.h"

#if QBNN_X86
#include <immintrin.h>

#include <array>
#include <utility>

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")

namespace qbnn {
namespace fp32 {
namespace {

inline __mmask16 laneMask(int cols, int v) {
  const int left = cols - v * 16;
  if (left >= 16) return static_cast<__mmask16>(0xffff);
  if (left <= 0) return 0;
  return static_cast<__mmask16>((1u << left) - 1u);
}

template <int R, int NV>
void tile(int kc, const float* a, const float* b, float* c, int64_t ldc, int cols, bool accumulate) {
  __m512 acc[R][NV];
  __mmask16 mask[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) mask[v] = laneMask(cols, v);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], c + r * ldc + v * 16) : _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + k * kNr + v * 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * kKc + k]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(c + r * ldc + v * 16, mask[v], acc[r][v]);
}

using Tile = void (*)(int, const float*, const float*, float*, int64_t, int, bool);

template <int NV, size_t... I>
constexpr auto tableOf(std::index_sequence<I...>) {
  return std::array<Tile, sizeof...(I)>{&tile<static_cast<int>(I) + 1, NV>...};
}

void kernel(int kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, bool accumulate) {
  static const auto one = tableOf<1>(std::make_index_sequence<kMr>{});
  static const auto two = tableOf<2>(std::make_index_sequence<kMr>{});
  (cols > 16 ? two : one)[rows - 1](kc, a, b, c, ldc, cols, accumulate);
}

}  // namespace

MicroKernel microKernelAvx512() { return &kernel; }

double fmaPeakFlops(int64_t iters) {
  // 12 independent accumulator chains hide the FMA latency on two pipes.
  __m512 acc[12];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  for (int64_t t = 0; t < iters; ++t) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]));
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return static_cast<double>(iters) * 12 * 16 * 2;
}

}  // namespace fp32
}  // namespace qbnn

#pragma GCC pop_options

#else

namespace qbnn {
namespace fp32 {
MicroKernel microKernelAvx512() { return nullptr; }
double fmaPeakFlops(int64_t) { return 0; }
}  // namespace fp32
}  // namespace qbnn

#endif
