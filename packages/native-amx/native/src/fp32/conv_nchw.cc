// Convolutions on NCHW data (PyTorch's layout, which qbnn's layers hold), so that no transpose
// runs around them. One image is one pool task: its product is a small GEMM whose rows are
// output channels and whose columns are output pixels, so it writes NCHW directly.
//   forward:         y_b[co, P]  = W[co, K] . col_b[K, P]           K = (c, kh, kw), P = (i, j)
//   input gradient:  dcol[K, P]  = W^T[K, co] . dy_b[co, P], then dx_b = col2im(dcol)
//   filter gradient: dW^T[K, co] = sum_b col_b[K, P] . dy_b^T[P, co], images summed in fixed chunks
// Tasks are cut by shape only, so results are bit-identical for any thread count.
#include <algorithm>
#include <cstring>

#include "conv.h"
#include "parallel.h"
#include "scratch.h"

namespace qbnn {
namespace fp32 {
namespace {

// A tap k = (c, kh, kw) of the (c, kh, kw) axis, advanced without divisions.
struct ChannelTap {
  int64_t c, kh, kw;
  ChannelTap(int64_t k, int64_t fh, int64_t fw) : c(k / (fh * fw)), kh((k / fw) % fh), kw(k % fw) {}
  void next(int64_t fh, int64_t fw) {
    if (++kw == fw) {
      kw = 0;
      if (++kh == fh) {
        kh = 0;
        ++c;
      }
    }
  }
};

// A run of output pixels [p0, p0 + len) cut at output rows: at most kKc / 1 + 1 segments
// (row i, first column j, length, offset in the run). Computed once per packing call and
// shared by every tap, so the per-tap work has no divisions.
struct Segments {
  static constexpr int kMax = kKc + 1;
  int64_t i[kMax], j[kMax], len[kMax], at[kMax];
  int count = 0;
  Segments(const ConvGeom& g, int64_t p0, int64_t total) {
    int64_t ii = p0 / g.ow, jj = p0 % g.ow;
    for (int64_t t = 0; t < total; ++ii, jj = 0) {
      const int64_t run = std::min(total - t, g.ow - jj);
      i[count] = ii;
      j[count] = jj;
      len[count] = run;
      at[count] = t;
      ++count;
      t += run;
    }
  }
};

// d[t] = col[tap, p0 + t]: the input value tap (c, kh, kw) reaches from the segments' output
// pixels in image xb [ci, h, w], zero outside the image.
void colRun(const ConvGeom& g, const float* xb, const ChannelTap& tap, const Segments& seg, float* d) {
  for (int q = 0; q < seg.count; ++q) {
    const int64_t run = seg.len[q];
    float* out = d + seg.at[q];
    const int64_t ih = seg.i[q] * g.sh + tap.kh * g.dh - g.padTop;
    if (ih < 0 || ih >= g.h) {
      for (int64_t u = 0; u < run; ++u) out[u] = 0.f;
      continue;
    }
    const float* row = xb + (tap.c * g.h + ih) * g.w;
    const int64_t iw0 = seg.j[q] * g.sw + tap.kw * g.dw - g.padLeft;
    if (g.sw == 1) {
      // Runs are short (an output row): plain loops beat library calls.
      const int64_t lo = std::min(run, std::max<int64_t>(0, -iw0));
      const int64_t hi = std::max(lo, std::min(run, g.w - iw0));
      const float* src = row + iw0;
      for (int64_t u = 0; u < lo; ++u) out[u] = 0.f;
      for (int64_t u = lo; u < hi; ++u) out[u] = src[u];
      for (int64_t u = hi; u < run; ++u) out[u] = 0.f;
    } else {
      for (int64_t u = 0; u < run; ++u) {
        const int64_t iw = iw0 + u * g.sw;
        out[u] = iw >= 0 && iw < g.w ? row[iw] : 0.f;
      }
    }
  }
}

// col_b as the B operand: B[k, p] (rows are taps, columns output pixels).
struct ColB final : BPacker {
  const ConvGeom& g;
  const float* xb;
  ColB(const ConvGeom& g, const float* xb) : g(g), xb(xb) {}
  void pack(float* dst, int64_t k0, int kc, int64_t n0, int cols) const override {
    const Segments seg(g, n0, cols);
    ChannelTap tap(k0, g.fh, g.fw);
    for (int k = 0; k < kc; ++k, tap.next(g.fh, g.fw)) {
      float* d = dst + k * kNr;
      colRun(g, xb, tap, seg, d);
      for (int j = cols; j < kNr; ++j) d[j] = 0.f;
    }
  }
};

// col_b as the A operand: A[k, p] (rows are taps, the reduction runs over output pixels).
struct ColA final : APacker {
  const ConvGeom& g;
  const float* xb;
  ColA(const ConvGeom& g, const float* xb) : g(g), xb(xb) {}
  void pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const override {
    const Segments seg(g, k0, kc);
    ChannelTap tap(m0, g.fh, g.fw);
    for (int r = 0; r < rows; ++r, tap.next(g.fh, g.fw)) colRun(g, xb, tap, seg, dst + r * kKc);
  }
};

// The HWIO filter as rows [co, K] with K in (c, kh, kw) order (forward A), or as rows [K, co]
// (input gradient A), in `out`.
void filterRows(const ConvGeom& g, const float* f, bool byChannel, float* out) {
  const int64_t K = g.ci * g.fh * g.fw;
  for (int64_t c = 0; c < g.ci; ++c)
    for (int64_t kh = 0; kh < g.fh; ++kh)
      for (int64_t kw = 0; kw < g.fw; ++kw) {
        const int64_t k = (c * g.fh + kh) * g.fw + kw;
        const float* src = f + ((kh * g.fw + kw) * g.ci + c) * g.co;
        if (byChannel) {
          for (int64_t o = 0; o < g.co; ++o) out[o * K + k] = src[o];
        } else {
          std::memcpy(out + k * g.co, src, sizeof(float) * g.co);
        }
      }
}

thread_local Scratch tFilter;
thread_local Scratch tCol;
thread_local Scratch tPartials;

// Images per filter-gradient task: at most 16 tasks, whatever the thread count.
int64_t imagesPerChunk(int64_t n) { return (n + 15) / 16; }

}  // namespace

void conv2dNchw(const ConvGeom& g, const float* x, const float* filter, float* y, const Epilogue& ep) {
  const int64_t K = g.ci * g.fh * g.fw, P = g.oh * g.ow;
  float* w = tFilter.floats(static_cast<size_t>(std::max<int64_t>(1, g.co * K)));
  filterRows(g, filter, true, w);
  const DenseA a({w, K, 1});
  parallel(g.n, 2.0 * g.n * P * g.co * K, [&](int64_t b) {
    float* yb = y + b * g.co * P;
    gemmLocal(g.co, P, K, a, ColB(g, x + b * g.ci * g.h * g.w), yb, P, false);
    if (ep.bias == nullptr && ep.act == ACT_LINEAR) return;
    for (int64_t o = 0; o < g.co; ++o) {
      float* row = yb + o * P;
      const float bias = ep.bias ? ep.bias[o] : 0.f;
      for (int64_t p = 0; p < P; ++p) row[p] = activate(row[p] + bias, ep);
    }
  });
}

void conv2dNchwBackpropInput(const ConvGeom& g, const float* dy, const float* filter, float* dx) {
  const int64_t K = g.ci * g.fh * g.fw, P = g.oh * g.ow;
  float* w = tFilter.floats(static_cast<size_t>(std::max<int64_t>(1, g.co * K)));
  filterRows(g, filter, false, w);
  const DenseA a({w, g.co, 1});
  parallel(g.n, 2.0 * g.n * P * g.co * K, [&](int64_t b) {
    float* col = tCol.floats(static_cast<size_t>(std::max<int64_t>(1, K * P)));
    gemmLocal(K, P, g.co, a, DenseB({dy + b * g.co * P, P, 1}), col, P, false);
    // col2im: every input pixel sums what its taps received, in tap then pixel order.
    float* dxb = dx + b * g.ci * g.h * g.w;
    std::memset(dxb, 0, sizeof(float) * g.ci * g.h * g.w);
    ChannelTap tap(0, g.fh, g.fw);
    for (int64_t k = 0; k < K; ++k, tap.next(g.fh, g.fw)) {
      const float* src = col + k * P;
      for (int64_t i = 0; i < g.oh; ++i) {
        const int64_t ih = i * g.sh + tap.kh * g.dh - g.padTop;
        if (ih < 0 || ih >= g.h) continue;
        float* row = dxb + (tap.c * g.h + ih) * g.w;
        const float* s = src + i * g.ow;
        const int64_t iw0 = tap.kw * g.dw - g.padLeft;
        if (g.sw == 1) {
          const int64_t lo = std::min(g.ow, std::max<int64_t>(0, -iw0));
          const int64_t hi = std::max(lo, std::min(g.ow, g.w - iw0));
          for (int64_t j = lo; j < hi; ++j) row[iw0 + j] += s[j];
        } else {
          for (int64_t j = 0; j < g.ow; ++j) {
            const int64_t iw = iw0 + j * g.sw;
            if (iw >= 0 && iw < g.w) row[iw] += s[j];
          }
        }
      }
    }
  });
}

void conv2dNchwBackpropFilter(const ConvGeom& g, const float* x, const float* dy, float* dfilter) {
  const int64_t K = g.ci * g.fh * g.fw, P = g.oh * g.ow;
  const int64_t per = imagesPerChunk(std::max<int64_t>(1, g.n));
  const int64_t chunks = (g.n + per - 1) / per;
  const int64_t size = K * g.co;
  float* partial = tPartials.floats(static_cast<size_t>(std::max<int64_t>(1, std::max<int64_t>(1, chunks) * size)));
  parallel(chunks, 2.0 * g.n * P * g.co * K, [&](int64_t t) {
    float* acc = partial + t * size;
    const int64_t b1 = std::min(g.n, (t + 1) * per);
    for (int64_t b = t * per; b < b1; ++b)
      gemmLocal(K, g.co, P, ColA(g, x + b * g.ci * g.h * g.w), DenseB({dy + b * g.co * P, 1, P}), acc, g.co,
                b > t * per);
  });
  if (chunks == 0) std::memset(partial, 0, sizeof(float) * size);
  for (int64_t t = 1; t < chunks; ++t)
    for (int64_t e = 0; e < size; ++e) partial[e] += partial[t * size + e];
  // dW^T [(c, kh, kw), co] -> HWIO.
  for (int64_t c = 0; c < g.ci; ++c)
    for (int64_t kh = 0; kh < g.fh; ++kh)
      for (int64_t kw = 0; kw < g.fw; ++kw)
        std::memcpy(dfilter + ((kh * g.fw + kw) * g.ci + c) * g.co, partial + ((c * g.fh + kh) * g.fw + kw) * g.co,
                    sizeof(float) * g.co);
}

}  // namespace fp32
}  // namespace qbnn
