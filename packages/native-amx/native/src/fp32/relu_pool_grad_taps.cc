// See relu_pool_grad_taps.h.
//
// Images are laid out channel-last and zero-padded ([hp, wp, ci]), so the taps (kw, c) of one
// kernel row at an output pixel are one run of fw * ci floats: a term's patch is fh runs,
// `rowStride` apart, V vectors each. The filter gradient reads the image's patches (the copy stays
// in L1; lanes past a run read the next pixel's values into accumulator lanes that are dropped) and
// sums each output channel's terms in registers, up to KH kernel rows at a time. The input
// gradient groups an image's terms by window and tap (one patch of a channel-last dx each), sums
// dy times the channels' filter rows in registers and adds the sum into the patch once (lanes past
// a run masked off): adding each term into dx in memory was store-bound (0.9x the dense kernel's
// time against 0.62x).
#include "relu_pool_grad_taps.h"

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

template <int V, int KH>
inline __attribute__((always_inline)) void zero(__m512 (&acc)[KH][V]) {
#pragma GCC unroll 8
  for (int k = 0; k < KH; ++k)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[k][v] = _mm512_setzero_ps();
}

// out[(k V + v) 16 + l] += the sum over terms t < count of val[t] xh[off[t] + k rowStride + 16 v + l],
// for k < KH, in t order.
template <int V, int KH>
void accumulateTerms(const float* xh, const int32_t* off, const float* val, int64_t count, int64_t rowStride,
                     float* out) {
  __m512 acc[KH][V];
  zero(acc);
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

// The terms of one window and tap (one patch): dxh[k rowStride + 16 v + l] += the sum over terms t
// of val[t] w[ch[t] chStride + (k V + v) 16 + l], in t order, for k < KH (the last vector of a row
// masked by `last`).
template <int V, int KH>
void patchTerms(float* dxh, const int32_t* ch, const float* val, int64_t count, const float* w, int64_t chStride,
                int64_t rowStride, __mmask16 last) {
  __m512 acc[KH][V];
  zero(acc);
  for (int64_t t = 0; t < count; ++t) {
    const __m512 s = _mm512_set1_ps(val[t]);
    const float* row = w + ch[t] * chStride;
#pragma GCC unroll 8
    for (int k = 0; k < KH; ++k)
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[k][v] = _mm512_fmadd_ps(_mm512_loadu_ps(row + (k * V + v) * 16), s, acc[k][v]);
  }
  float* p = dxh;
#pragma GCC unroll 8
  for (int k = 0; k < KH; ++k, p += rowStride) {
#pragma GCC unroll 8
    for (int v = 0; v + 1 < V; ++v) _mm512_storeu_ps(p + 16 * v, _mm512_add_ps(_mm512_loadu_ps(p + 16 * v), acc[k][v]));
    float* q = p + 16 * (V - 1);
    _mm512_mask_storeu_ps(q, last, _mm512_add_ps(_mm512_maskz_loadu_ps(last, q), acc[k][V - 1]));
  }
}

using Accumulate = void (*)(const float*, const int32_t*, const float*, int64_t, int64_t, float*);
using Patch = void (*)(float*, const int32_t*, const float*, int64_t, const float*, int64_t, int64_t, __mmask16);

template <int V, int KH>
constexpr Accumulate accumulateFor() {
  if constexpr (KH <= rowsPerPass(V)) return &accumulateTerms<V, KH>;
  return nullptr;
}
template <int V, int KH>
constexpr Patch patchFor() {
  if constexpr (KH <= rowsPerPass(V)) return &patchTerms<V, KH>;
  return nullptr;
}
// kernels[V - 1][KH - 1]
template <int V, size_t... K>
constexpr std::array<std::pair<Accumulate, Patch>, 8> kernelRow(std::index_sequence<K...>) {
  return {std::pair<Accumulate, Patch>{accumulateFor<V, static_cast<int>(K) + 1>(),
                                         patchFor<V, static_cast<int>(K) + 1>()}...};
}
template <size_t... V>
constexpr std::array<std::array<std::pair<Accumulate, Patch>, 8>, kMaxVectors> kernelTable(
    std::index_sequence<V...>) {
  return {kernelRow<static_cast<int>(V) + 1>(std::make_index_sequence<8>{})...};
}
constexpr auto kKernels = kernelTable(std::make_index_sequence<kMaxVectors>{});

// The channel-last layout of a geometry's images and its kernel rows.
struct TapLayout {
  int64_t C, run, hp, wp, rowStride, planeFloats, ph, pw, pooled, width;
  int V, rows;  // vectors a run; kernel rows a pass
};

// False when the sparse kernels do not apply (see the header).
bool tapLayout(const ConvGeom& g, TapLayout& L) {
  L.C = g.ci;
  L.run = g.fw * g.ci;
  if (!usingAvx512() || g.dw != 1 || L.run < 16 || L.run > 16 * kMaxVectors || g.n < 1 || g.co < 1 || g.fh < 1 ||
      g.oh < 2 || g.ow < 2)
    return false;
  L.V = static_cast<int>((L.run + 15) / 16);
  // kernel rows a pass, the passes balanced (5 rows of 7 vectors: 3 + 2, not 4 + 1)
  const int64_t passes = (g.fh + rowsPerPass(L.V) - 1) / rowsPerPass(L.V);
  L.rows = static_cast<int>((g.fh + passes - 1) / passes);
  L.hp = (g.oh - 1) * g.sh + (g.fh - 1) * g.dh + 1;
  L.wp = (g.ow - 1) * g.sw + g.fw;
  L.rowStride = g.dh * L.wp * L.C;
  L.planeFloats = L.hp * L.wp * L.C + 16 * L.V;  // slack: a last run's vectors read past it
  L.ph = g.oh / 2;
  L.pw = g.ow / 2;
  L.pooled = L.ph * L.pw;
  L.width = 16 * L.V;
  return L.planeFloats < (int64_t{1} << 31);  // offsets are int32
}

// Channel o of image b's terms: the patch offset of each window's tap that passed the ReLU and its
// dy, windows in row-major order.
// (Sizes are copied into locals: without strict aliasing every store through `off` / `val` would
// reload them from the structs.)
int64_t termsOf(const ConvGeom& g, const TapLayout& L, const float* dy, const uint8_t* at, int64_t b, int64_t o,
                int32_t* off, float* val) {
  const int64_t ph = L.ph, pw = L.pw, rowStep = 2 * g.sh * L.wp * L.C, colStep = 2 * g.sw * L.C;
  const int64_t tapRow = g.sh * L.wp * L.C, tapCol = g.sw * L.C;
  const float* d = dy + (b * g.co + o) * L.pooled;
  const uint8_t* t = at + (b * g.co + o) * L.pooled;
  int64_t count = 0;
  for (int64_t pi = 0; pi < ph; ++pi)
    for (int64_t pj = 0; pj < pw; ++pj) {
      const int64_t e = pi * pw + pj, a = t[e];
      off[count] = static_cast<int32_t>(pi * rowStep + pj * colStep + (a >> 1) * tapRow + (a & 1) * tapCol);
      val[count] = d[e] + 0.f;  // as the scatter puts it (a -0 lands as +0)
      count += a < kNoTap ? 1 : 0;
    }
  return count;
}

// Image xb [ci, h, w] into the zero-padded channel-last plane xh [hp, wp, ci] (already zero).
void layoutChannelsLast(const ConvGeom& g, const TapLayout& L, const float* xb, float* xh) {
  const int64_t C = L.C, h = g.h, w = g.w, pt = g.padTop, pl = g.padLeft, wp = L.wp;
  const int64_t ih0 = std::max<int64_t>(0, -pt), ih1 = std::min(h, L.hp - pt);
  const int64_t iw0 = std::max<int64_t>(0, -pl), iw1 = std::min(w, wp - pl);
  for (int64_t ih = ih0; ih < ih1; ++ih)
    for (int64_t iw = iw0; iw < iw1; ++iw) {
      const float* src = xb + ih * w + iw;
      float* dst = xh + ((ih + pt) * wp + iw + pl) * C;
      for (int64_t c = 0; c < C; ++c) dst[c] = src[c * h * w];
    }
}

// The reverse for dx: dxb [ci, h, w] from the channel-last plane; pixels no tap reaches are zero.
void layoutChannelsFirst(const ConvGeom& g, const TapLayout& L, const float* dxh, float* dxb) {
  const int64_t C = L.C, h = g.h, w = g.w, pt = g.padTop, pl = g.padLeft, wp = L.wp;
  std::memset(dxb, 0, sizeof(float) * static_cast<size_t>(C * h * w));
  const int64_t ih0 = std::max<int64_t>(0, -pt), ih1 = std::min(h, L.hp - pt);
  const int64_t iw0 = std::max<int64_t>(0, -pl), iw1 = std::min(w, wp - pl);
  for (int64_t ih = ih0; ih < ih1; ++ih)
    for (int64_t iw = iw0; iw < iw1; ++iw) {
      const float* src = dxh + ((ih + pt) * wp + iw + pl) * C;
      float* dst = dxb + ih * w + iw;
      for (int64_t c = 0; c < C; ++c) dst[c * h * w] = src[c];
    }
}

thread_local Scratch tPlane;
thread_local Scratch tSparse;
thread_local std::vector<int32_t> tOffsets;
thread_local std::vector<float> tValues;
thread_local std::vector<int64_t> tCounts;

}  // namespace

bool reluMaxPoolFilterGradSparse(const ConvGeom& g, const float* x, const float* dy, const uint8_t* at,
                                 float* dfilter) {
  TapLayout L;
  if (!tapLayout(g, L)) return false;
  const int64_t C = L.C, size = g.co * g.fh * L.width;
  // chunks of at least 8 images (at most 16 tasks), cut by shape only
  const int64_t per = std::max<int64_t>(8, (g.n + 15) / 16), chunks = (g.n + per - 1) / per;
  float* partial = tSparse.floats(static_cast<size_t>(chunks * size));
  parallel(chunks, 2.0 * g.n * L.pooled * g.co * g.fh * L.run, [&](int64_t t) {
    float* acc = partial + t * size;
    std::fill(acc, acc + size, 0.f);
    float* xh = tPlane.floats(static_cast<size_t>(L.planeFloats));
    tOffsets.resize(static_cast<size_t>(L.pooled + 1));
    tValues.resize(static_cast<size_t>(L.pooled + 1));
    int32_t* offsets = tOffsets.data();
    float* values = tValues.data();
    for (int64_t b = t * per, b1 = std::min(g.n, b + per); b < b1; ++b) {
      std::memset(xh, 0, sizeof(float) * static_cast<size_t>(L.planeFloats));
      layoutChannelsLast(g, L, x + b * C * g.h * g.w, xh);
      for (int64_t o = 0; o < g.co; ++o) {
        const int64_t count = termsOf(g, L, dy, at, b, o, offsets, values);
        for (int64_t k0 = 0; k0 < g.fh; k0 += L.rows) {
          const int kh = static_cast<int>(std::min<int64_t>(L.rows, g.fh - k0));
          kKernels[static_cast<size_t>(L.V - 1)][static_cast<size_t>(kh - 1)].first(
              xh + k0 * L.rowStride, offsets, values, count, L.rowStride, acc + (o * g.fh + k0) * L.width);
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
      const float* s = sum + (o * g.fh + kh) * L.width;
      for (int64_t k = 0; k < L.run; ++k) dfilter[((kh * g.fw) * C + k) * g.co + o] = s[k];
    }
  return true;
}

bool reluMaxPoolInputGradSparse(const ConvGeom& g, const float* dy, const uint8_t* at, const float* filter,
                                float* dx) {
  TapLayout L;
  if (!tapLayout(g, L)) return false;
  const int64_t C = L.C;
  // the filter as rows [co, fh, (kw, c)] of `width` floats, zero past the run
  float* w = tSparse.floats(static_cast<size_t>(g.co * g.fh * L.width));
  for (int64_t o = 0; o < g.co; ++o)
    for (int64_t kh = 0; kh < g.fh; ++kh) {
      float* row = w + (o * g.fh + kh) * L.width;
      for (int64_t k = 0; k < L.width; ++k) row[k] = k < L.run ? filter[((kh * g.fw) * C + k) * g.co + o] : 0.f;
    }
  const __mmask16 last = tailMask(L.run - 16 * (L.V - 1));
  const int64_t lists = L.pooled * (kNoTap + 1);  // a list per window and tap (and one for none)
  parallel(g.n, 2.0 * g.n * L.pooled * g.co * g.fh * L.run, [&](int64_t b) {
    float* dxh = tPlane.floats(static_cast<size_t>(L.planeFloats));
    std::memset(dxh, 0, sizeof(float) * static_cast<size_t>(L.planeFloats));
    // each window and tap's terms: channels in order, and their dy
    tCounts.assign(static_cast<size_t>(lists), 0);
    tOffsets.resize(static_cast<size_t>(lists * g.co));
    tValues.resize(static_cast<size_t>(lists * g.co));
    int64_t* counts = tCounts.data();
    int32_t* channels = tOffsets.data();
    float* values = tValues.data();
    const int64_t co = g.co, pooled = L.pooled;  // locals: the stores below would reload them
    for (int64_t o = 0; o < co; ++o) {
      const uint8_t* t = at + (b * co + o) * pooled;
      const float* d = dy + (b * co + o) * pooled;
      for (int64_t e = 0; e < pooled; ++e) {
        // a tap byte past kNoTap (a buffer not from the forward) is no tap, as in the scatter
        const int64_t list = e * (kNoTap + 1) + std::min<int64_t>(t[e], kNoTap);
        const int64_t k = list * co + counts[list]++;
        channels[k] = static_cast<int32_t>(o);
        values[k] = d[e] + 0.f;  // as the scatter puts it (a -0 lands as +0)
      }
    }
    for (int64_t k0 = 0; k0 < g.fh; k0 += L.rows) {
      const int kh = static_cast<int>(std::min<int64_t>(L.rows, g.fh - k0));
      const Patch patch = kKernels[static_cast<size_t>(L.V - 1)][static_cast<size_t>(kh - 1)].second;
      for (int64_t pi = 0, e = 0; pi < L.ph; ++pi)
        for (int64_t pj = 0; pj < L.pw; ++pj, ++e)
          for (int64_t a = 0; a < kNoTap; ++a) {
            const int64_t list = e * (kNoTap + 1) + a, count = counts[list];
            if (count == 0) continue;
            const int64_t i = 2 * pi + (a >> 1), j = 2 * pj + (a & 1);
            patch(dxh + (i * g.sh * L.wp + j * g.sw) * C + k0 * L.rowStride, channels + list * g.co,
                  values + list * g.co, count, w + k0 * L.width, g.fh * L.width, L.rowStride, last);
          }
    }
    layoutChannelsFirst(g, L, dxh, dx + b * C * g.h * g.w);
  });
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
bool reluMaxPoolInputGradSparse(const ConvGeom&, const float*, const uint8_t*, const float*, float*) { return false; }

}  // namespace fp32
}  // namespace qbnn

#endif
