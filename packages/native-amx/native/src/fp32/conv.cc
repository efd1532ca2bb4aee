// Convolutions as GEMMs (see conv.h). Forward: A = im2col(x) [n*oh*ow, fh*fw*ci], B = filter.
// Filter gradient: A = im2col(x)^T, B = dy. Input gradient: A(x pixel, (kh, kw, co)) = the dy
// entry that tap reaches (zero where the stride skips it), B = the filter with ci and co swapped.
#include "conv.h"

#include <algorithm>
#include <cstring>

namespace qbnn {
namespace fp32 {
namespace {

// im2col(x)[m, k]: m = (b, i, j) output pixel, k = (kh, kw, c).
struct Im2colA final : APacker {
  const ConvGeom& g;
  const float* x;
  Im2colA(const ConvGeom& g, const float* x) : g(g), x(x) {}
  void pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const override {
    for (int r = 0; r < rows; ++r) {
      const int64_t m = m0 + r;
      const int64_t j = m % g.ow, i = (m / g.ow) % g.oh, b = m / (g.ow * g.oh);
      int64_t c = k0 % g.ci, tap = k0 / g.ci;
      for (int k = 0; k < kc;) {
        const int64_t kh = tap / g.fw, kw = tap % g.fw;
        const int len = static_cast<int>(std::min<int64_t>(g.ci - c, kc - k));
        const int64_t ih = i * g.sh + kh * g.dh - g.padTop, iw = j * g.sw + kw * g.dw - g.padLeft;
        float* d = dst + k * kMr + r;
        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) {
          for (int t = 0; t < len; ++t) d[t * kMr] = 0.f;
        } else {
          const float* s = x + ((b * g.h + ih) * g.w + iw) * g.ci + c;
          for (int t = 0; t < len; ++t) d[t * kMr] = s[t];
        }
        k += len;
        c = 0;
        ++tap;
      }
    }
    if (rows < kMr)
      for (int k = 0; k < kc; ++k) std::memset(dst + k * kMr + rows, 0, sizeof(float) * (kMr - rows));
  }
};

// im2col(x)^T[k, m]: rows are taps (kh, kw, c), the reduction runs over output pixels m.
struct Im2colTA final : APacker {
  const ConvGeom& g;
  const float* x;
  Im2colTA(const ConvGeom& g, const float* x) : g(g), x(x) {}
  void pack(float* dst, int64_t k0, int rows, int64_t m0, int kc) const override {
    int64_t dh[kMr], dw[kMr], ch[kMr];
    for (int r = 0; r < rows; ++r) {
      const int64_t k = k0 + r, tap = k / g.ci;
      ch[r] = k % g.ci;
      dh[r] = (tap / g.fw) * g.dh - g.padTop;
      dw[r] = (tap % g.fw) * g.dw - g.padLeft;
    }
    int64_t j = m0 % g.ow, i = (m0 / g.ow) % g.oh, b = m0 / (g.ow * g.oh);
    for (int t = 0; t < kc; ++t) {
      float* d = dst + t * kMr;
      const float* img = x + b * g.h * g.w * g.ci;
      for (int r = 0; r < rows; ++r) {
        const int64_t ih = i * g.sh + dh[r], iw = j * g.sw + dw[r];
        d[r] = (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) ? 0.f : img[(ih * g.w + iw) * g.ci + ch[r]];
      }
      for (int r = rows; r < kMr; ++r) d[r] = 0.f;
      if (++j == g.ow) {
        j = 0;
        if (++i == g.oh) {
          i = 0;
          ++b;
        }
      }
    }
  }
};

// For the input gradient: A[(b, ih, iw), (kh, kw, o)] = dy[b, i, j, o] where
// i * sh = ih + padTop - kh * dh (and the same for j), zero when no such (i, j) exists.
struct DyGatherA final : APacker {
  const ConvGeom& g;
  const float* dy;
  DyGatherA(const ConvGeom& g, const float* dy) : g(g), dy(dy) {}
  void pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const override {
    for (int r = 0; r < rows; ++r) {
      const int64_t m = m0 + r;
      const int64_t iw = m % g.w, ih = (m / g.w) % g.h, b = m / (g.w * g.h);
      int64_t o = k0 % g.co, tap = k0 / g.co;
      for (int k = 0; k < kc;) {
        const int64_t kh = tap / g.fw, kw = tap % g.fw;
        const int len = static_cast<int>(std::min<int64_t>(g.co - o, kc - k));
        const int64_t ti = ih + g.padTop - kh * g.dh, tj = iw + g.padLeft - kw * g.dw;
        float* d = dst + k * kMr + r;
        const int64_t i = ti / g.sh, j = tj / g.sw;
        if (ti < 0 || tj < 0 || ti % g.sh != 0 || tj % g.sw != 0 || i >= g.oh || j >= g.ow) {
          for (int t = 0; t < len; ++t) d[t * kMr] = 0.f;
        } else {
          const float* s = dy + ((b * g.oh + i) * g.ow + j) * g.co + o;
          for (int t = 0; t < len; ++t) d[t * kMr] = s[t];
        }
        k += len;
        o = 0;
        ++tap;
      }
    }
    if (rows < kMr)
      for (int k = 0; k < kc; ++k) std::memset(dst + k * kMr + rows, 0, sizeof(float) * (kMr - rows));
  }
};

// B[(kh, kw, o), c] = filter[kh, kw, c, o].
struct FilterTB final : BPacker {
  const ConvGeom& g;
  const float* f;
  FilterTB(const ConvGeom& g, const float* f) : g(g), f(f) {}
  void pack(float* dst, int64_t k0, int kc, int64_t n0, int cols) const override {
    for (int k = 0; k < kc; ++k) {
      const int64_t kk = k0 + k, o = kk % g.co, tap = kk / g.co;
      const float* src = f + (tap * g.ci + n0) * g.co + o;
      float* d = dst + k * kNr;
      for (int j = 0; j < cols; ++j) d[j] = src[j * g.co];
      for (int j = cols; j < kNr; ++j) d[j] = 0.f;
    }
  }
};

}  // namespace

void conv2d(const ConvGeom& g, const float* x, const float* filter, float* y, const Epilogue& ep) {
  const int64_t K = g.fh * g.fw * g.ci;
  gemm(g.n * g.oh * g.ow, g.co, K, Im2colA(g, x), DenseB({filter, g.co, 1}), y, g.co, ep);
}

void conv2dBackpropInput(const ConvGeom& g, const float* dy, const float* filter, float* dx) {
  gemm(g.n * g.h * g.w, g.ci, g.fh * g.fw * g.co, DyGatherA(g, dy), FilterTB(g, filter), dx, g.ci, Epilogue{});
}

void conv2dBackpropFilter(const ConvGeom& g, const float* x, const float* dy, float* dfilter) {
  gemm(g.fh * g.fw * g.ci, g.co, g.n * g.oh * g.ow, Im2colTA(g, x), DenseB({dy, g.co, 1}), dfilter, g.co,
       Epilogue{});
}

}  // namespace fp32
}  // namespace qbnn
