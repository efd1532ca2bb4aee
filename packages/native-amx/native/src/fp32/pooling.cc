// Pooling kernels (see pooling.h). Work is split into runs of rows or images fixed by the shape; sums are kept in float64, as
// tfjs-backend-cpu (JavaScript numbers) does, and rounded once.
#include "pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../common.h"
#include "parallel.h"
#include "sgemm.h"

#if QBNN_X86
#include "avx512_region.h"
#endif

namespace qbnn {
namespace fp32 {

// One row pair of a 2 x 2 stride-2 max pool over `ow` windows (rows r0, r1) and its gradient,
// 16 windows a step with the scalar loops' comparisons (defined at the end of this file, AVX-512);
// false when not compiled in.
bool maxPoolPairAvx512(const float* r0, const float* r1, float* out, int64_t ow);
bool maxPoolGradPairAvx512(const float* r0, const float* r1, const float* dy, float* d0, float* d1, int64_t ow);
// The same a plane at a time: ph row pairs `stride` apart, pw windows a row.
bool biasReluMaxPoolPlaneAvx512(const float* x, int64_t ph, int64_t pw, int64_t stride, float bias, float* out,
                                uint8_t* at);
bool scatterPlaneAvx512(const float* dy, const uint8_t* at, int64_t ph, int64_t pw, float* dz, int64_t stride);

namespace {

// Work items (output rows, or images) per pool task: about 16k window taps, fixed by the shape.
int64_t itemsPerTask(double workPerItem) {
  return std::max<int64_t>(1, static_cast<int64_t>(16384.0 / std::max(1.0, workPerItem)));
}

// fn(b, i, j, r0, r1, c0, c1) for every output pixel: the clipped window is rows [r0, r1),
// columns [c0, c1). Tasks are runs of (image, output row).
template <typename Fn>
void forWindows(const PoolGeom& g, Fn&& fn) {
  const int64_t rows = g.n * g.oh;
  const double perRow = static_cast<double>(g.ow * g.c * g.fh * g.fw);
  const int64_t per = itemsPerTask(perRow);
  parallel((rows + per - 1) / per, perRow * static_cast<double>(rows), [&](int64_t t) {
    for (int64_t row = t * per, end = std::min(rows, row + per); row < end; ++row) {
      const int64_t b = row / g.oh, i = row % g.oh;
      const int64_t rc = i * g.sh - g.padTop;
      const int64_t r0 = std::max<int64_t>(0, rc), r1 = std::min(g.h, rc + g.fh);
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t cc = j * g.sw - g.padLeft;
        fn(b, i, j, r0, r1, std::max<int64_t>(0, cc), std::min(g.w, cc + g.fw));
      }
    }
  });
}

// fn(b, acc) for every image, acc a zeroed float64 buffer of one image (thread-local; only when
// `needAcc`); tasks are runs of images.
template <typename Fn>
void forImages(const PoolGeom& g, Fn&& fn, bool needAcc = true) {
  const int64_t image = g.h * g.w * g.c;
  const double perImage = static_cast<double>(g.oh * g.ow * g.c * g.fh * g.fw);
  const int64_t per = itemsPerTask(perImage);
  parallel((g.n + per - 1) / per, perImage * static_cast<double>(g.n), [&](int64_t t) {
    thread_local std::vector<double> acc;
    if (needAcc) acc.resize(static_cast<size_t>(image));
    for (int64_t b = t * per, end = std::min(g.n, b + per); b < end; ++b) {
      if (needAcc) std::fill(acc.begin(), acc.end(), 0.0);
      fn(b, acc.data());
    }
  });
}

// 2 x 2 windows of stride 2 on one-channel images without padding: NCHW activations pooled as
// [n * c, h, w, 1] (what @qbnn/nn's pooling layers run with the native kernels). Tasks are runs of
// output rows; `fn(in0, in1, out, ow)` handles one row pair.
bool pair2x2(const PoolGeom& g) {
  return g.c == 1 && g.fh == 2 && g.fw == 2 && g.sh == 2 && g.sw == 2 && g.padTop == 0 && g.padLeft == 0 &&
         2 * g.oh <= g.h && 2 * g.ow <= g.w;
}

template <typename Fn>
void forRowPairs(const PoolGeom& g, Fn&& fn) {
  const int64_t rows = g.n * g.oh;
  const int64_t per = itemsPerTask(static_cast<double>(4 * g.ow));
  parallel((rows + per - 1) / per, 4.0 * static_cast<double>(rows * g.ow), [&](int64_t t) {
    for (int64_t row = t * per, end = std::min(rows, row + per); row < end; ++row) {
      const int64_t b = row / g.oh, i = row % g.oh;
      fn(b, i, (b * g.h + 2 * i) * g.w, row * g.ow);
    }
  });
}

}  // namespace

void maxPool(const PoolGeom& g, const float* x, float* y) {
  if (pair2x2(g)) {
    const int64_t W = g.w, OW = g.ow;
    const bool vector = usingAvx512();
    forRowPairs(g, [=](int64_t, int64_t, int64_t in, int64_t o) {
      const float* __restrict r0 = x + in;
      const float* __restrict r1 = r0 + W;
      float* __restrict out = y + o;
      if (vector && maxPoolPairAvx512(r0, r1, out, OW)) return;
      for (int64_t j = 0; j < OW; ++j) {
        // first maximum in row-major order, strict comparisons (NaN never wins), as below
        float m = -std::numeric_limits<float>::infinity();
        for (const float v : {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]}) m = v > m ? v : m;
        out[j] = m;
      }
    });
    return;
  }
  // Geometry in locals: stores to y could otherwise alias g and force reloads in the inner loops.
  const int64_t C = g.c, W = g.w, H = g.h;
  forWindows(g, [&, C, W, H](int64_t b, int64_t i, int64_t j, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    float* __restrict out = y + ((b * g.oh + i) * g.ow + j) * C;
    const float* img = x + b * H * W * C;
    for (int64_t ch = 0; ch < C; ++ch) {
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t q = c0; q < c1; ++q) {
          const float v = img[(r * W + q) * C + ch];
          if (v > m) m = v;
        }
      out[ch] = m;
    }
  });
}

void avgPool(const PoolGeom& g, const float* x, float* y) {
  forWindows(g, [&](int64_t b, int64_t i, int64_t j, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    float* out = y + ((b * g.oh + i) * g.ow + j) * g.c;
    const double count = static_cast<double>((r1 - r0) * (c1 - c0));
    for (int64_t ch = 0; ch < g.c; ++ch) {
      double s = 0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t q = c0; q < c1; ++q) s += x[((b * g.h + r) * g.w + q) * g.c + ch];
      out[ch] = static_cast<float>(s / count);
    }
  });
}

void maxPoolGrad(const PoolGeom& g, const float* x, const float* dy, float* dx) {
  if (pair2x2(g)) {
    const int64_t W = g.w, H = g.h, OW = g.ow, OH = g.oh;
    // Inputs no window covers (odd last row / column) get no gradient.
    if (2 * OH < H || 2 * OW < W)
      for (int64_t e = 0; e < g.n * H * W; ++e) dx[e] = 0.f;
    const bool vector = usingAvx512();
    forRowPairs(g, [=](int64_t, int64_t, int64_t in, int64_t o) {
      const float* __restrict r0 = x + in;
      const float* __restrict r1 = r0 + W;
      float* d0 = dx + in;  // both rows written through d0 below: no __restrict
      float* d1 = d0 + W;
      const float* __restrict d = dy + o;
      if (vector && maxPoolGradPairAvx512(r0, r1, d, d0, d1, OW)) return;
      for (int64_t j = 0; j < OW; ++j) {
        // Branch-free (the winner is random data): the window's maximum M (strict comparisons,
        // NaN never wins), then the first tap equal to it; no gradient when M is -inf.
        const float v0 = r0[2 * j], v1 = r0[2 * j + 1], v2 = r1[2 * j], v3 = r1[2 * j + 1];
        float m = -std::numeric_limits<float>::infinity();
        m = v0 > m ? v0 : m;
        m = v1 > m ? v1 : m;
        m = v2 > m ? v2 : m;
        m = v3 > m ? v3 : m;
        const int n0 = v0 != m, n1 = n0 & (v1 != m), n2 = n1 & (v2 != m);
        const int at = n0 + n1 + n2;  // first tap equal to m
        d0[2 * j] = 0.f;
        d0[2 * j + 1] = 0.f;
        d1[2 * j] = 0.f;
        d1[2 * j + 1] = 0.f;
        // + 0: tfjs-backend-cpu sums into zeros, so a dy of -0 lands as +0.
        const float g = m > -std::numeric_limits<float>::infinity() ? d[j] + 0.f : 0.f;
        d0[2 * j + (at & 1) + (at >> 1) * W] = g;
      }
    });
    return;
  }
  const int64_t C = g.c, W = g.w, image = g.h * g.w * g.c;
  // Windows that do not overlap give each input at most one gradient: stored directly (equal to
  // the float64 sum of one value), without the float64 image.
  const bool disjoint = g.sh >= g.fh && g.sw >= g.fw;
  forImages(g, [&, C, W, image](int64_t b, double* acc) {
    const float* xi = x + b * image;
    float* __restrict out = dx + b * image;
    if (disjoint) std::fill(out, out + image, 0.f);
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t rc = i * g.sh - g.padTop;
      const int64_t r0 = std::max<int64_t>(0, rc), r1 = std::min(g.h, rc + g.fh);
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t cc = j * g.sw - g.padLeft;
        const int64_t c0 = std::max<int64_t>(0, cc), c1 = std::min(W, cc + g.fw);
        const float* d = dy + ((b * g.oh + i) * g.ow + j) * C;
        for (int64_t ch = 0; ch < C; ++ch) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t at = -1;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t q = c0; q < c1; ++q) {
              const int64_t idx = (r * W + q) * C + ch;
              if (xi[idx] > best) {
                best = xi[idx];
                at = idx;
              }
            }
          if (at < 0) continue;
          if (disjoint) out[at] = d[ch] + 0.f;  // as a sum into zeros: -0 lands as +0
          else acc[at] += d[ch];
        }
      }
    }
    if (!disjoint)
      for (int64_t k = 0; k < image; ++k) out[k] = static_cast<float>(acc[k]);
  }, !disjoint);
}

void avgPoolGrad(const PoolGeom& g, const float* dy, float* dx) {
  const int64_t image = g.h * g.w * g.c;
  const double scale = 1.0 / static_cast<double>(g.fh * g.fw);
  forImages(g, [&](int64_t b, double* acc) {
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t rc = i * g.sh - g.padTop;
      const int64_t r0 = std::max<int64_t>(0, rc), r1 = std::min(g.h, rc + g.fh);
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t cc = j * g.sw - g.padLeft;
        const int64_t c0 = std::max<int64_t>(0, cc), c1 = std::min(g.w, cc + g.fw);
        const float* d = dy + ((b * g.oh + i) * g.ow + j) * g.c;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t q = c0; q < c1; ++q) {
            double* a = acc + (r * g.w + q) * g.c;
            for (int64_t ch = 0; ch < g.c; ++ch) a[ch] += d[ch];
          }
      }
    }
    float* out = dx + b * image;
    for (int64_t k = 0; k < image; ++k) out[k] = static_cast<float>(acc[k] * scale);
  });
}

void biasReluMaxPoolPlane(const float* x, int64_t h, int64_t w, int64_t stride, float bias, float* out, uint8_t* at) {
  const int64_t ph = h / 2, pw = w / 2;
  if (usingAvx512() && biasReluMaxPoolPlaneAvx512(x, ph, pw, stride, bias, out, at)) return;
  for (int64_t i = 0; i < ph; ++i) {
    const float* r0 = x + 2 * i * stride;
    const float* r1 = r0 + stride;
    for (int64_t j = 0; j < pw; ++j) {
      const float v0 = r0[2 * j] + bias, v1 = r0[2 * j + 1] + bias, v2 = r1[2 * j] + bias, v3 = r1[2 * j + 1] + bias;
      float m = -std::numeric_limits<float>::infinity();
      for (const float v : {v0, v1, v2, v3}) m = v > m ? v : m;
      const int n0 = v0 != m, n1 = n0 & (v1 != m), n2 = n1 & (v2 != m);
      out[i * pw + j] = m > 0.f ? m : 0.f;
      at[i * pw + j] = m > 0.f ? static_cast<uint8_t>(n0 + n1 + n2) : kNoTap;
    }
  }
}

void reluMaxPoolScatterPlane(const float* dy, const uint8_t* at, int64_t h, int64_t w, float* dz, int64_t stride) {
  const int64_t oh = h / 2, ow = w / 2;
  if (!(usingAvx512() && scatterPlaneAvx512(dy, at, oh, ow, dz, stride))) {
    for (int64_t i = 0; i < oh; ++i) {
      float* d0 = dz + 2 * i * stride;
      float* d1 = d0 + stride;
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t e = i * ow + j;
        d0[2 * j] = d0[2 * j + 1] = d1[2 * j] = d1[2 * j + 1] = 0.f;
        if (at[e] < kNoTap) (at[e] < 2 ? d0 : d1)[2 * j + (at[e] & 1)] = dy[e] + 0.f;
      }
    }
  }
  if (2 * ow < w)
    for (int64_t i = 0; i < 2 * oh; ++i) dz[i * stride + w - 1] = 0.f;
  if (2 * oh < h) std::fill(dz + (h - 1) * stride, dz + (h - 1) * stride + w, 0.f);
}

void reluMaxPoolScatter(int64_t planes, int64_t h, int64_t w, const float* dy, const uint8_t* at, float* dz) {
  const int64_t pooled = (h / 2) * (w / 2);
  parallel(planes, 2.0 * static_cast<double>(planes * h * w), [=](int64_t p) {
    reluMaxPoolScatterPlane(dy + p * pooled, at + p * pooled, h, w, dz + p * h * w, w);
  });
}

#if QBNN_X86

QBNN_FP32_AVX512_BEGIN

namespace {

// Windows j0 .. j0 + 15 of a row pair: the four taps of each window (row-major order), even and
// odd columns taken apart; lanes past `left` windows are loaded as zeros and never stored.
struct Taps {
  __m512 v0, v1, v2, v3;
  Taps(const float* r0, const float* r1, int64_t left)
      : Taps(r0, r1, tailMask(2 * left), tailMask(2 * left - 16)) {}
  // lo, hi: the columns of the two halves that are loaded
  Taps(const float* r0, const float* r1, __mmask16 lo, __mmask16 hi) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 a0 = _mm512_maskz_loadu_ps(lo, r0), a1 = _mm512_maskz_loadu_ps(hi, r0 + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(lo, r1), b1 = _mm512_maskz_loadu_ps(hi, r1 + 16);
    v0 = _mm512_permutex2var_ps(a0, even, a1);
    v1 = _mm512_permutex2var_ps(a0, odd, a1);
    v2 = _mm512_permutex2var_ps(b0, even, b1);
    v3 = _mm512_permutex2var_ps(b0, odd, b1);
  }
  // The scalar loop's maximum: m = v > m ? v : m from -inf, tap by tap (NaN never wins), which
  // is what vmaxps computes (its second operand where the first is not greater: NaN, equal zeros).
  __m512 max() const {
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (const __m512 v : {v0, v1, v2, v3}) m = _mm512_max_ps(v, m);
    return m;
  }
};

// Interleaves even-column values e and odd-column values o back into 32 floats of a row.
void storeRow(float* d, __m512 e, __m512 o, int64_t left) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  _mm512_mask_storeu_ps(d, tailMask(2 * left), _mm512_permutex2var_ps(e, lo, o));
  _mm512_mask_storeu_ps(d + 16, tailMask(2 * left - 16), _mm512_permutex2var_ps(e, hi, o));
}

}  // namespace

bool maxPoolPairAvx512(const float* r0, const float* r1, float* out, int64_t ow) {
  for (int64_t j = 0; j < ow; j += 16) {
    const Taps t(r0 + 2 * j, r1 + 2 * j, ow - j);
    _mm512_mask_storeu_ps(out + j, tailMask(ow - j), t.max());
  }
  return true;
}

bool maxPoolGradPairAvx512(const float* r0, const float* r1, const float* dy, float* d0, float* d1, int64_t ow) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < ow; j += 16) {
    const int64_t left = ow - j;
    const Taps t(r0 + 2 * j, r1 + 2 * j, left);
    const __m512 m = t.max();
    // dy where the window has a value above -inf, at its first tap equal to the maximum.
    const __mmask16 live = _mm512_cmp_ps_mask(m, _mm512_set1_ps(-INFINITY), _CMP_GT_OQ);
    const __m512 g =
        _mm512_add_ps(_mm512_maskz_loadu_ps(static_cast<__mmask16>(tailMask(left) & live), dy + j), zero);
    const __mmask16 at0 = _mm512_cmp_ps_mask(t.v0, m, _CMP_EQ_OQ);
    const __mmask16 at1 = static_cast<__mmask16>(~at0 & _mm512_cmp_ps_mask(t.v1, m, _CMP_EQ_OQ));
    const __mmask16 at2 = static_cast<__mmask16>(~(at0 | at1) & _mm512_cmp_ps_mask(t.v2, m, _CMP_EQ_OQ));
    const __mmask16 at3 = static_cast<__mmask16>(~(at0 | at1 | at2));
    storeRow(d0 + 2 * j, _mm512_mask_blend_ps(at0, zero, g), _mm512_mask_blend_ps(at1, zero, g), left);
    storeRow(d1 + 2 * j, _mm512_mask_blend_ps(at2, zero, g), _mm512_mask_blend_ps(at3, zero, g), left);
  }
  return true;
}

namespace {

// Windows j .. j + 15 of one row pair of biasReluMaxPoolPlaneAvx512 (masks of the windows
// stored and of the two halves of columns loaded).
inline void biasReluMaxPoolBlock(const float* r0, const float* r1, __m512 b, float* out, uint8_t* at,
                                 __mmask16 tail, __mmask16 lo, __mmask16 hi) {
  const __m512 zero = _mm512_setzero_ps();
  {
    Taps t(r0, r1, lo, hi);
    t.v0 = _mm512_add_ps(t.v0, b);
    t.v1 = _mm512_add_ps(t.v1, b);
    t.v2 = _mm512_add_ps(t.v2, b);
    t.v3 = _mm512_add_ps(t.v3, b);
    const __m512 m = t.max();
    const __mmask16 live = _mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ);
    // the scalar loop's tap index n0 + n1 + n2: n0 = v0 != m, n1 = n0 & (v1 != m), n2 = n1 & (v2 != m);
    // kNoTap where the ReLU stops the gradient
    const __mmask16 n0 = _mm512_cmp_ps_mask(t.v0, m, _CMP_NEQ_UQ);
    const __mmask16 n1 = _mm512_mask_cmp_ps_mask(n0, t.v1, m, _CMP_NEQ_UQ);
    const __mmask16 n2 = _mm512_mask_cmp_ps_mask(n1, t.v2, m, _CMP_NEQ_UQ);
    const __m128i one = _mm_set1_epi8(1);
    __m128i tap = _mm_maskz_mov_epi8(n0, one);
    tap = _mm_mask_add_epi8(tap, n1, tap, one);
    tap = _mm_mask_add_epi8(tap, n2, tap, one);
    tap = _mm_mask_mov_epi8(_mm_set1_epi8(static_cast<char>(kNoTap)), live, tap);
    _mm512_mask_storeu_ps(out, tail, _mm512_maskz_mov_ps(live, m));
    _mm_mask_storeu_epi8(at, tail, tap);
  }
}

// One row pair of scatterPlaneAvx512.
inline void scatterPair(const float* dy, const uint8_t* at, float* d0, float* d1, int64_t ow) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < ow; j += 16) {
    const int64_t left = ow - j;
    const __mmask16 tail = tailMask(left);
    const __m128i a = _mm_maskz_loadu_epi8(tail, at + j);
    const __m512 g = _mm512_add_ps(_mm512_maskz_loadu_ps(tail, dy + j), zero);
    const auto is = [&](int k) { return _mm_mask_cmpeq_epi8_mask(tail, a, _mm_set1_epi8(static_cast<char>(k))); };
    storeRow(d0 + 2 * j, _mm512_maskz_mov_ps(is(0), g), _mm512_maskz_mov_ps(is(1), g), left);
    storeRow(d1 + 2 * j, _mm512_maskz_mov_ps(is(2), g), _mm512_maskz_mov_ps(is(3), g), left);
  }
}

}  // namespace

bool biasReluMaxPoolPlaneAvx512(const float* x, int64_t ph, int64_t pw, int64_t stride, float bias, float* out,
                                uint8_t* at) {
  const __m512 b = _mm512_set1_ps(bias);
  // a block of 16 windows down all row pairs, its masks computed once
  for (int64_t j = 0; j < pw; j += 16) {
    const int64_t left = pw - j;
    const __mmask16 tail = tailMask(left), lo = tailMask(2 * left), hi = tailMask(2 * left - 16);
    const float* r0 = x + 2 * j;
    for (int64_t i = 0; i < ph; ++i, r0 += 2 * stride)
      biasReluMaxPoolBlock(r0, r0 + stride, b, out + i * pw + j, at + i * pw + j, tail, lo, hi);
  }
  return true;
}

bool scatterPlaneAvx512(const float* dy, const uint8_t* at, int64_t ph, int64_t pw, float* dz, int64_t stride) {
  for (int64_t i = 0; i < ph; ++i)
    scatterPair(dy + i * pw, at + i * pw, dz + 2 * i * stride, dz + (2 * i + 1) * stride, pw);
  return true;
}

QBNN_FP32_AVX512_END

#else

bool biasReluMaxPoolPlaneAvx512(const float*, int64_t, int64_t, int64_t, float, float*, uint8_t*) { return false; }
bool scatterPlaneAvx512(const float*, const uint8_t*, int64_t, int64_t, float*, int64_t) { return false; }
bool maxPoolPairAvx512(const float*, const float*, float*, int64_t) { return false; }
bool maxPoolGradPairAvx512(const float*, const float*, const float*, float*, float*, int64_t) { return false; }

#endif

}  // namespace fp32
}  // namespace qbnn
