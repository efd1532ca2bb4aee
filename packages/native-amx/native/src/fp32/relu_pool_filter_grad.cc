// See relu_pool_filter_grad.h.
//
// Each image is laid out channel-last and zero-padded (xh [hp, wp, ci]), so the taps (kw, c) of one
// kernel row at an output pixel are one run of fw * ci floats: a term's patch is fh runs,
// `rowStride` apart, read straight from xh (which stays in L1) as V vectors each; lanes past a run
// read the next pixel's values into accumulator lanes that are dropped. Per output channel, the
// image's terms (a patch offset and a dy value for each window whose tap passed the ReLU) are
// summed in registers, up to KH kernel rows at a time.
#include "relu_pool_filter_grad.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "../common.h"
#include "parallel.h"
#include "pooling.h"
#include "scratch.h"
#include "sgemm.h"

#if QBNN_X86
#include "avx512_region.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr int kMaxVectors = 8;  // runs of up to 128 floats
// Kernel rows a pass keeps in registers: KH x V accumulators, at most 28 (and 8 rows).
constexpr int rowsPerPass(int v) { return std::min(8, 28 / v); }

}  // namespace

QBNN_FP32_AVX512_BEGIN

namespace {

// out[(k V + v) 16 + l] += the sum over terms t < count of val[t] xh[off[t] + k rowStride + 16 v + l],
// for k < KH, in t order.
template <int V, int KH>
void accumulateTerms(const float* xh, const int32_t* off, const float* val, int64_t count, int64_t rowStride,
                     float* out) {
  __m512 acc[KH][V];
#pragma GCC unroll 8
  for (int k = 0; k < KH; ++k)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[k][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < count; ++t) {
    const __m512 s = _mm512_set1_ps(val[t]);
    // one pointer a kernel row, so that the loads take constant displacements
    const float* p = xh + off[t];
#pragma GCC unroll 8
    for (int k = 0; k < KH; ++k, p += rowStride)
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[k][v] = _mm512_fmadd_ps(_mm512_loadu_ps(p + 16 * v), s, acc[k][v]);
  }
#pragma GCC unroll 8
  for (int k = 0; k < KH; ++k)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      float* o = out + (k * V + v) * 16;
      _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), acc[k][v]));
    }
}

using Accumulate = void (*)(const float*, const int32_t*, const float*, int64_t, int64_t, float*);

template <int V, int KH>
constexpr Accumulate accumulateFor() {
  if constexpr (KH <= rowsPerPass(V)) return &accumulateTerms<V, KH>;
  return nullptr;
}
template <int V, size_t... K>
constexpr std::array<Accumulate, 8> accumulateRow(std::index_sequence<K...>) {
  return {accumulateFor<V, static_cast<int>(K) + 1>()...};
}
template <size_t... V>
constexpr std::array<std::array<Accumulate, 8>, kMaxVectors> accumulateTable(std::index_sequence<V...>) {
  return {accumulateRow<static_cast<int>(V) + 1>(std::make_index_sequence<8>{})...};
}
constexpr auto kAccumulate = accumulateTable(std::make_index_sequence<kMaxVectors>{});

thread_local Scratch tPlane;
thread_local Scratch tSparsePartials;
thread_local std::vector<int32_t> tOffsets;
thread_local std::vector<float> tValues;

}  // namespace

bool reluMaxPoolFilterGradSparse(const ConvGeom& g, const float* x, const float* dy, const uint8_t* at,
                                 float* dfilter) {
  const int64_t C = g.ci, run = g.fw * C;
  if (!usingAvx512() || g.dw != 1 || run < 16 || run > 16 * kMaxVectors || g.n < 1 || g.co < 1 || g.fh < 1 ||
      g.oh < 2 || g.ow < 2)
    return false;
  const int V = static_cast<int>((run + 15) / 16);
  // kernel rows a pass, the passes balanced (5 rows of 7 vectors: 3 + 2, not 4 + 1)
  const int64_t passes = (g.fh + rowsPerPass(V) - 1) / rowsPerPass(V);
  const int rows = static_cast<int>((g.fh + passes - 1) / passes);
  const int64_t hp = (g.oh - 1) * g.sh + (g.fh - 1) * g.dh + 1, wp = (g.ow - 1) * g.sw + g.fw;
  const int64_t rowStride = g.dh * wp * C;
  const int64_t planeFloats = hp * wp * C + 16 * V;  // slack: a last run's vectors read past it
  if (planeFloats >= (int64_t{1} << 31)) return false;  // offsets are int32
  const int64_t ph = g.oh / 2, pw = g.ow / 2, pooled = ph * pw;
  const int64_t width = 16 * V, size = g.co * g.fh * width;
  // chunks of at least 8 images (at most 16 tasks), cut by shape only
  const int64_t per = std::max<int64_t>(8, (g.n + 15) / 16), chunks = (g.n + per - 1) / per;
  float* partial = tSparsePartials.floats(static_cast<size_t>(chunks * size));
  parallel(chunks, 2.0 * g.n * pooled * g.co * g.fh * run, [&](int64_t t) {
    float* acc = partial + t * size;
    std::fill(acc, acc + size, 0.f);
    float* xh = tPlane.floats(static_cast<size_t>(planeFloats));
    tOffsets.resize(static_cast<size_t>(pooled + 1));
    tValues.resize(static_cast<size_t>(pooled + 1));
    int32_t* off = tOffsets.data();
    float* val = tValues.data();
    for (int64_t b = t * per, b1 = std::min(g.n, b + per); b < b1; ++b) {
      std::memset(xh, 0, sizeof(float) * static_cast<size_t>(planeFloats));
      const float* xb = x + b * C * g.h * g.w;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t ih = 0; ih < g.h && ih + g.padTop < hp; ++ih) {
          const int64_t r = ih + g.padTop;
          if (r < 0) continue;
          const float* src = xb + (c * g.h + ih) * g.w;
          float* dst = xh + r * wp * C + c;
          for (int64_t iw = std::max<int64_t>(0, -g.padLeft); iw < g.w && iw + g.padLeft < wp; ++iw)
            dst[(iw + g.padLeft) * C] = src[iw];
        }
      for (int64_t o = 0; o < g.co; ++o) {
        const int64_t e0 = (b * g.co + o) * pooled;
        int64_t count = 0;
        for (int64_t pi = 0, e = e0; pi < ph; ++pi)
          for (int64_t pj = 0; pj < pw; ++pj, ++e) {
            const int64_t a = at[e];
            const int64_t i = 2 * pi + (a >> 1), j = 2 * pj + (a & 1);
            off[count] = static_cast<int32_t>((i * g.sh * wp + j * g.sw) * C);
            val[count] = dy[e] + 0.f;  // as the scatter puts it (a -0 lands as +0)
            count += a < kNoTap ? 1 : 0;
          }
        for (int64_t k0 = 0; k0 < g.fh; k0 += rows) {
          const int kh = static_cast<int>(std::min<int64_t>(rows, g.fh - k0));
          kAccumulate[static_cast<size_t>(V - 1)][static_cast<size_t>(kh - 1)](
              xh + k0 * rowStride, off, val, count, rowStride, acc + (o * g.fh + k0) * width);
        }
      }
    }
  });
  // chunks summed in order, then [co, fh, (kw, c)] -> HWIO
  float* sum = partial;
  for (int64_t t = 1; t < chunks; ++t) {
    const float* part = partial + t * size;
    for (int64_t e = 0; e < size; ++e) sum[e] += part[e];
  }
  for (int64_t o = 0; o < g.co; ++o)
    for (int64_t kh = 0; kh < g.fh; ++kh) {
      const float* s = sum + (o * g.fh + kh) * width;
      for (int64_t k = 0; k < run; ++k) dfilter[((kh * g.fw) * C + k) * g.co + o] = s[k];
    }
  return true;
}

QBNN_FP32_AVX512_END

}  // namespace fp32
}  // namespace qbnn

#else

namespace qbnn {
namespace fp32 {

bool reluMaxPoolFilterGradSparse(const ConvGeom&, const float*, const float*, const uint8_t*, float*) {
  return false;
}

}  // namespace fp32
}  // namespace qbnn

#endif
