// Convolutions as GEMMs (see conv.h). Forward: A = im2col(x) [n*oh*ow, fh*fw*ci], B = filter.
// Filter gradient (transposed): A = dy^T, B = im2col(x). Input gradient: A(x pixel, (kh, kw, co)) = the dy
// entry that tap reaches (zero where the stride skips it), B = the filter with ci and co swapped.
#include "conv.h"

#include <algorithm>
#include <cstring>

#include "scratch.h"

namespace qbnn {
namespace fp32 {
namespace {

// Short copies are the common case (a few channels): an inline loop beats a memcpy call.
inline void copy(float* d, const float* s, int64_t len) {
  for (int64_t t = 0; t < len; ++t) d[t] = s[t];
}
inline void zero(float* d, int64_t len) {
  for (int64_t t = 0; t < len; ++t) d[t] = 0.f;
}

// A position (kh, kw, c) along the taps-and-channels axis, advanced without divisions.
struct Tap {
  int64_t kh, kw, c;
  Tap(int64_t k, int64_t fw, int64_t ci) : kh(k / ci / fw), kw((k / ci) % fw), c(k % ci) {}
  void advance(int64_t by, int64_t fw, int64_t ci) {
    c += by;
    while (c >= ci) {
      c -= ci;
      if (++kw == fw) {
        kw = 0;
        ++kh;
      }
    }
  }
};

// Copies the im2col row of output pixel (b, i, j) over taps-and-channels [start, start + len)
// to d. With dilation 1 along the width, consecutive kw taps inside the image are one run.
inline void im2colRun(const ConvGeom& g, const float* x, int64_t b, int64_t i, int64_t j, Tap t, int64_t len,
                      float* d) {
  for (int64_t k = 0; k < len;) {
    const int64_t ih = i * g.sh + t.kh * g.dh - g.padTop, iw = j * g.sw + t.kw * g.dw - g.padLeft;
    int64_t run = std::min<int64_t>(g.ci - t.c, len - k);
    if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) {
      zero(d + k, run);
    } else {
      if (g.dw == 1) run = std::min<int64_t>(len - k, std::min(g.fw - t.kw, g.w - iw) * g.ci - t.c);
      copy(d + k, x + ((b * g.h + ih) * g.w + iw) * g.ci + t.c, run);
    }
    k += run;
    t.advance(run, g.fw, g.ci);
  }
}

// Output pixel (b, i, j) of a flat index, stepped forward without divisions.
struct Pixel {
  int64_t b, i, j;
  Pixel(int64_t m, int64_t oh, int64_t ow) : b(m / (ow * oh)), i((m / ow) % oh), j(m % ow) {}
  void next(int64_t oh, int64_t ow) {
    if (++j == ow) {
      j = 0;
      if (++i == oh) {
        i = 0;
        ++b;
      }
    }
  }
};

// im2col(x)[m, k]: m = (b, i, j) output pixel, k = (kh, kw, c).
struct Im2colA final : APacker {
  const ConvGeom& g;
  const float* x;
  Im2colA(const ConvGeom& g, const float* x) : g(g), x(x) {}
  void pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const override {
    Pixel p(m0, g.oh, g.ow);
    const Tap t(k0, g.fw, g.ci);
    for (int r = 0; r < rows; ++r, p.next(g.oh, g.ow)) im2colRun(g, x, p.b, p.i, p.j, t, kc, dst + r * kKc);
  }
};

// im2col(x) as the B operand: B[m, t] with m = (b, i, j) output pixel (the reduction) and
// t = (kh, kw, c) tap (the columns): runs of consecutive channels are contiguous copies.
struct Im2colB final : BPacker {
  const ConvGeom& g;
  const float* x;
  Im2colB(const ConvGeom& g, const float* x) : g(g), x(x) {}
  void pack(float* dst, int64_t m0, int kc, int64_t t0, int cols) const override {
    Pixel p(m0, g.oh, g.ow);
    const Tap t(t0, g.fw, g.ci);
    for (int k = 0; k < kc; ++k, p.next(g.oh, g.ow)) {
      float* d = dst + k * kNr;
      im2colRun(g, x, p.b, p.i, p.j, t, cols, d);
      if (cols < kNr) zero(d + cols, kNr - cols);
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
    Pixel p(m0, g.h, g.w);  // here a pixel of x
    const Tap t0(k0, g.fw, g.co);
    for (int r = 0; r < rows; ++r, p.next(g.h, g.w)) {
      float* d = dst + r * kKc;
      Tap t = t0;
      for (int64_t k = 0; k < kc;) {
        const int64_t len = std::min<int64_t>(g.co - t.c, kc - k);
        const int64_t ti = p.i + g.padTop - t.kh * g.dh, tj = p.j + g.padLeft - t.kw * g.dw;
        bool inside = ti >= 0 && tj >= 0;
        int64_t i = ti, j = tj;
        if (inside && g.sh > 1) {
          inside = ti % g.sh == 0;
          i = ti / g.sh;
        }
        if (inside && g.sw > 1) {
          inside = tj % g.sw == 0;
          j = tj / g.sw;
        }
        if (!inside || i >= g.oh || j >= g.ow) zero(d + k, len);
        else copy(d + k, dy + ((p.b * g.oh + i) * g.ow + j) * g.co + t.c, len);
        k += len;
        t.advance(len, g.fw, g.co);
      }
    }
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

thread_local Scratch tTransposed;

}  // namespace

void conv2d(const ConvGeom& g, const float* x, const float* filter, float* y, const Epilogue& ep) {
  const int64_t K = g.fh * g.fw * g.ci;
  gemm(g.n * g.oh * g.ow, g.co, K, Im2colA(g, x), DenseB({filter, g.co, 1}), y, g.co, ep);
}

void conv2dBackpropInput(const ConvGeom& g, const float* dy, const float* filter, float* dx) {
  gemm(g.n * g.h * g.w, g.ci, g.fh * g.fw * g.co, DyGatherA(g, dy), FilterTB(g, filter), dx, g.ci, Epilogue{});
}

void conv2dBackpropFilter(const ConvGeom& g, const float* x, const float* dy, float* dfilter) {
  // dfilter^T [co, taps] = dy^T [co, pixels] im2col(x) [pixels, taps]: the few output channels
  // are the rows, so the large im2col view is packed once, as B, with contiguous copies.
  const int64_t taps = g.fh * g.fw * g.ci;
  float* t = tTransposed.floats(static_cast<size_t>(g.co * taps));
  gemm(g.co, taps, g.n * g.oh * g.ow, DenseA({dy, 1, g.co}), Im2colB(g, x), t, taps, Epilogue{});
  for (int64_t k = 0; k < taps; ++k)
    for (int64_t o = 0; o < g.co; ++o) dfilter[k * g.co + o] = t[o * taps + k];
}

}  // namespace fp32
}  // namespace qbnn
