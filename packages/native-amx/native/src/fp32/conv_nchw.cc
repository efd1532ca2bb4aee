// Convolutions on NCHW data (PyTorch's layout, which qbnn's layers hold), so that no transpose
// runs around them. One image is one pool task: its product is a small GEMM whose rows are
// output channels and whose columns are output pixels, so it writes NCHW directly.
//   forward:         y_b[co, P]  = W[co, K] . col_b[K, P]           K = (c, kh, kw), P = (i, j)
//   input gradient:  dcol[K, P]  = W^T[K, co] . dy_b[co, P], then dx_b = col2im(dcol)
//   filter gradient: dW^T[K, co] = sum_b col_b[K, P] . dy_b^T[P, co], images summed in fixed chunks
// Tasks are cut by shape only, so results are bit-identical for any thread count.
//
// Stride-1 convolutions skip the im2col view: see "shifted rows" below; 5-wide ones with enough
// taps run those rows as Winograd F(2, 5) on AVX-512 (conv_winograd.h).
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv.h"
#include "conv_winograd.h"
#include "parallel.h"
#include "pooling.h"
#include "relu_pool_grad_taps.h"
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
// An OIHW filter as HWIO, or an HWIO filter gradient before it goes out as OIHW.
thread_local Scratch tLayout;

// hwio[(kh, kw, c, o)] = oihw[(o, c, kh, kw)] (the way back is filterRows by channel: OIHW is
// its rows [co, K]).
void oihwToHwio(const ConvGeom& g, const float* oihw, float* hwio) {
  for (int64_t o = 0, e = 0; o < g.co; ++o)
    for (int64_t c = 0; c < g.ci; ++c)
      for (int64_t t = 0; t < g.fh * g.fw; ++t, ++e) hwio[(t * g.ci + c) * g.co + o] = oihw[e];
}

// Images per filter-gradient task: at most 16 tasks, whatever the thread count.
int64_t imagesPerChunk(int64_t n) { return (n + 15) / 16; }

// ---- Shifted rows: stride-1 convolutions without an im2col view ----------------------------
// Each image is copied once into a zero-padded plane [cin, hp, wp] whose rows hold the left
// padding only: a tap reading past a row's end lands in the next row's left padding, which
// serves as this row's right padding. On a grid of output rows as wide as the plane (pixel
// q = i * wp + j), tap (c, kh, kw) of pixel q reads plane[off + q] with
// off = (c * hp + kh * dh) * wp + kw * dw, so every row of the GEMM operand is a contiguous run
// of the plane: packing is a copy, with no per-pixel bounds checks. The grid's columns j >= ow
// are computed and dropped (wp - ow extra columns a row: 2 of 16 for a 5x5 kernel with padding
// 2). The reduction over taps keeps the im2col order (c, kh, kw), so forward results equal the
// im2col path's.
struct Shift {
  int64_t n, cin, h, w, cout, oh, ow, fh, fw, dh, dw, padTop, padLeft;
  int64_t hp, wp;
  int64_t taps() const { return cin * fh * fw; }
  int64_t grid() const { return oh * wp; }
  // The plane plus the zeros that the last taps' reads of the last grid row reach past it, and
  // room for the masked-off lanes of the last vector loads.
  int64_t planeFloats() const { return (cin * hp + 1) * wp + (fw - 1) * dw + kNr; }
};

Shift shiftOf(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t oh, int64_t ow, int64_t fh,
              int64_t fw, int64_t dh, int64_t dw, int64_t padTop, int64_t padLeft) {
  Shift s{n, cin, h, w, cout, oh, ow, fh, fw, dh, dw, padTop, padLeft, 0, 0};
  s.hp = std::max(padTop + h, oh + (fh - 1) * dh);
  // A grid row holds the ow output pixels, and column j + kw * dw of pixel j lies in its plane
  // row or in the next row's left padding.
  s.wp = std::max({padLeft + w, ow + (fw - 1) * dw - padLeft, ow});
  return s;
}

std::vector<int64_t> tapOffsets(const Shift& s) {
  std::vector<int64_t> off(static_cast<size_t>(s.taps()));
  for (int64_t c = 0, k = 0; c < s.cin; ++c)
    for (int64_t kh = 0; kh < s.fh; ++kh)
      for (int64_t kw = 0; kw < s.fw; ++kw) off[static_cast<size_t>(k++)] = (c * s.hp + kh * s.dh) * s.wp + kw * s.dw;
  return off;
}

// Image xb [cin, h, w] into the zero-padded plane.
void padPlane(const Shift& s, const float* xb, float* plane) {
  std::memset(plane, 0, sizeof(float) * static_cast<size_t>(s.planeFloats()));
  for (int64_t c = 0; c < s.cin; ++c)
    for (int64_t i = 0; i < s.h; ++i)
      std::memcpy(plane + (c * s.hp + s.padTop + i) * s.wp + s.padLeft, xb + (c * s.h + i) * s.w,
                  sizeof(float) * static_cast<size_t>(s.w));
}

thread_local Scratch tPlane;
thread_local Scratch tPackedA;
thread_local std::vector<const float*> tRows;

// out [n, cout, oh, ow] = conv(in [n, cin, h, w]) with filter rows [cout, taps] in (c, kh, kw)
// order: per image, the GEMM of the filter (packed once for every image) by the plane's tap rows.
// (One copy of the padded image per kernel column, cut to the output width so that no grid
// column is dropped, was 1.15-1.4x slower on LeNet-5's conv2: five times the plane's bytes, and
// a panel's 256 tap rows no longer share cache lines.)
// The grid of image b's outputs [cout, oh, wp] (row stride wp, columns >= ow dropped) goes to
// `sink(b, grid)` while it is in cache.
// `fill(b, plane)` writes image b's zero-padded plane.
// ---- Winograd F(2, 5) along the grid rows (conv_winograd.h) ---------------------------------
// On the shifted plane, output pixel q = i * wp + j of tap (c, kh, kw) reads
// plane[(c * hp + i + kh * dh) * wp + j + kw]: with wp even, output pairs (j, j + 1) = 2 p, 2 p + 1
// of a plane row read its six floats from 2 p on, so the input transform runs over the whole plane
// as one sequence of pairs p (pair p of plane row r at index r * wp / 2 + p), and GEMM xi's row
// (c, kh) is transformed row c * hp + kh * dh read in place: out_xi[o, i * wp / 2 + p] =
// sum over (c, kh) of U_xi[o, (c, kh)] T_xi[(c * hp + i + kh * dh) * wp / 2 + p]. The output
// transform writes the pairs back as the direct grid [cout, oh, wp].
bool winogradFits(const Shift& s) {
  return s.fw == 5 && s.dw == 1 && s.wp % 2 == 0 && s.cin * s.fh >= 48 && winogradInputAvx512() != nullptr &&
         usingAvx512();
}

thread_local Scratch tWinoT;
thread_local Scratch tWinoM;
thread_local Scratch tWinoU;
thread_local std::vector<const float*> tWinoRows;

template <typename Fill, typename Sink>
void winogradConvPlanes(const Shift& s, const float* rows, Fill&& fill, Sink&& sink) {
  const int64_t K = s.taps(), K2 = s.cin * s.fh, half = s.wp / 2, N2 = s.oh * half, Q = s.grid();
  const int64_t pairs = s.cin * s.hp * half;
  // U_xi [cout, (c, kh)], packed once for every image
  const int64_t packed = PackedA::packedFloats(s.cout, K2);
  float* u = tWinoU.floats(static_cast<size_t>(kWinoPoints * (s.cout * K2 + packed)));
  std::vector<PackedA> a;
  a.reserve(kWinoPoints);
  for (int xi = 0; xi < kWinoPoints; ++xi) {
    float* dense = u + xi * s.cout * K2;
    for (int64_t o = 0; o < s.cout; ++o)
      for (int64_t r = 0; r < K2; ++r) dense[o * K2 + r] = winogradFilter(xi, rows + o * K + r * 5);
    a.emplace_back(DenseA({dense, K2, 1}), s.cout, K2, u + kWinoPoints * s.cout * K2 + xi * packed);
  }
  const WinogradInput input = winogradInputAvx512();
  const WinogradOutput output = winogradOutputAvx512();
  parallel(s.n, 2.0 * s.n * N2 * s.cout * K2 * kWinoPoints, [&](int64_t b) {
    float* plane = tPlane.floats(static_cast<size_t>(s.planeFloats()));
    fill(b, plane);
    float* t = tWinoT.floats(static_cast<size_t>(kWinoPoints * pairs));
    input(plane, pairs, t, pairs);
    float* m = tWinoM.floats(static_cast<size_t>(std::max<int64_t>(1, kWinoPoints * s.cout * N2)));
    tWinoRows.resize(static_cast<size_t>(K2));
    for (int xi = 0; xi < kWinoPoints; ++xi) {
      for (int64_t c = 0; c < s.cin; ++c)
        for (int64_t kh = 0; kh < s.fh; ++kh)
          tWinoRows[static_cast<size_t>(c * s.fh + kh)] = t + xi * pairs + (c * s.hp + kh * s.dh) * half;
      gemmLocalRows(s.cout, N2, K2, a[static_cast<size_t>(xi)], tWinoRows.data(), m + xi * s.cout * N2, N2, false);
    }
    float* yw = tCol.floats(static_cast<size_t>(std::max<int64_t>(1, s.cout * Q)));
    for (int64_t o = 0; o < s.cout; ++o) output(m + o * N2, s.cout * N2, N2, yw + o * Q);
    sink(b, static_cast<const float*>(yw));
  });
}

template <typename Fill, typename Sink>
void shiftedConvPlanes(const Shift& s, const float* rows, Fill&& fill, Sink&& sink) {
  if (winogradFits(s)) {
    winogradConvPlanes(s, rows, fill, sink);
    return;
  }
  const int64_t K = s.taps(), Q = s.grid();
  const std::vector<int64_t> off = tapOffsets(s);
  const PackedA a(DenseA({rows, K, 1}), s.cout, K,
                  tPackedA.floats(static_cast<size_t>(PackedA::packedFloats(s.cout, K))));
  parallel(s.n, 2.0 * s.n * Q * s.cout * K, [&](int64_t b) {
    float* plane = tPlane.floats(static_cast<size_t>(s.planeFloats()));
    fill(b, plane);
    float* yw = tCol.floats(static_cast<size_t>(std::max<int64_t>(1, s.cout * Q)));
    // B[k, q] = plane[off[k] + q], read in place.
    tRows.resize(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) tRows[static_cast<size_t>(k)] = plane + off[static_cast<size_t>(k)];
    gemmLocalRows(s.cout, Q, K, a, tRows.data(), yw, Q, false);
    sink(b, static_cast<const float*>(yw));
  });
}

template <typename Sink>
void shiftedConv(const Shift& s, const float* in, const float* rows, Sink&& sink) {
  shiftedConvPlanes(
      s, rows, [&](int64_t b, float* plane) { padPlane(s, in + b * s.cin * s.h * s.w, plane); }, sink);
}

// out [n, cout, oh, ow] from the grid, with the epilogue; planes from `fill`.
template <typename Fill>
void shiftedConvTo(const Shift& s, const float* rows, Fill&& fill, float* out, const Epilogue& ep) {
  const int64_t Q = s.grid(), P = s.oh * s.ow;
  shiftedConvPlanes(s, rows, fill, [&](int64_t b, const float* yw) {
    float* yb = out + b * s.cout * P;
    const bool plain = ep.bias == nullptr && ep.act == ACT_LINEAR;
    for (int64_t o = 0; o < s.cout; ++o) {
      const float bias = ep.bias ? ep.bias[o] : 0.f;
      for (int64_t i = 0; i < s.oh; ++i) {
        const float* src = yw + o * Q + i * s.wp;
        float* dst = yb + (o * s.oh + i) * s.ow;
        if (plain) {
          std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(s.ow));
        } else {
          epilogueRow(src, dst, s.ow, bias, ep);
        }
      }
    }
  });
}

void shiftedConv(const Shift& s, const float* in, const float* rows, float* out, const Epilogue& ep) {
  shiftedConvTo(
      s, rows, [&](int64_t b, float* plane) { padPlane(s, in + b * s.cin * s.h * s.w, plane); }, out, ep);
}

// A convolution's output gradient, image b and channel o, as rows: dense dy [n, co, oh, ow], or
// the gradient through a 2 x 2 ReLU max pool (pooled dy [n, co, oh / 2, ow / 2] put at each
// window's tap, zero elsewhere: reluMaxPoolScatter's values without the dense tensor).
struct DyRows {
  int64_t co, oh, ow;
  const float* dense;  // or null: pooled and at
  const float* pooled;
  const uint8_t* at;
  // rows [0, oh) of (b, o) into dst, `stride` apart (columns from ow on are not written)
  void put(int64_t b, int64_t o, float* dst, int64_t stride) const {
    const int64_t bo = b * co + o;
    if (dense != nullptr) {
      for (int64_t i = 0; i < oh; ++i)
        std::memcpy(dst + i * stride, dense + (bo * oh + i) * ow, sizeof(float) * static_cast<size_t>(ow));
      return;
    }
    const int64_t size = (oh / 2) * (ow / 2);
    reluMaxPoolScatterPlane(pooled + bo * size, at + bo * size, oh, ow, dst, stride);
  }
};

thread_local Scratch tDense;

// The dense dy: as it is, or scattered into a scratch tensor (paths that read dy whole).
const float* denseDy(const ConvGeom& g, const DyRows& dy) {
  if (dy.dense != nullptr) return dy.dense;
  float* d = tDense.floats(static_cast<size_t>(std::max<int64_t>(1, g.n * g.co * g.oh * g.ow)));
  reluMaxPoolScatter(g.n * g.co, g.oh, g.ow, dy.pooled, dy.at, d);
  return d;
}

Shift forwardShift(const ConvGeom& g) {
  return shiftOf(g.n, g.ci, g.h, g.w, g.co, g.oh, g.ow, g.fh, g.fw, g.dh, g.dw, g.padTop, g.padLeft);
}

bool unitStride(const ConvGeom& g) { return g.sh == 1 && g.sw == 1; }

// The input gradient of a stride-1 convolution is the forward convolution of dy with the filter
// flipped and its channel axes swapped, padded by the kernel's extent minus the forward padding
// (which must not be negative).
bool backpropInputShifted(const ConvGeom& g, const DyRows& dy, const float* filter, float* dx) {
  const int64_t top = (g.fh - 1) * g.dh - g.padTop, left = (g.fw - 1) * g.dw - g.padLeft;
  if (!unitStride(g) || top < 0 || left < 0) return false;
  const Shift s = shiftOf(g.n, g.co, g.oh, g.ow, g.ci, g.h, g.w, g.fh, g.fw, g.dh, g.dw, top, left);
  const int64_t K = s.taps();
  float* w = tFilter.floats(static_cast<size_t>(std::max<int64_t>(1, g.ci * K)));
  // rows[c, (o, kh, kw)] = filter[fh - 1 - kh, fw - 1 - kw, c, o] (HWIO)
  for (int64_t c = 0; c < g.ci; ++c)
    for (int64_t o = 0, k = 0; o < g.co; ++o)
      for (int64_t kh = 0; kh < g.fh; ++kh)
        for (int64_t kw = 0; kw < g.fw; ++kw, ++k)
          w[c * K + k] = filter[(((g.fh - 1 - kh) * g.fw + (g.fw - 1 - kw)) * g.ci + c) * g.co + o];
  // dy's plane: as padPlane lays out an image, rows from dy.put
  const auto fill = [&](int64_t b, float* plane) {
    std::memset(plane, 0, sizeof(float) * static_cast<size_t>(s.planeFloats()));
    for (int64_t c = 0; c < s.cin; ++c) dy.put(b, c, plane + (c * s.hp + s.padTop) * s.wp + s.padLeft, s.wp);
  };
  shiftedConvTo(s, w, fill, dx, Epilogue{});
  return true;
}

// Sizes of `blocks` near-equal blocks covering n (50 in blocks of 6: 6,6,6,6,6,5,5,5,5).
int64_t blockSize(int64_t n, int64_t blocks, int64_t i) { return n / blocks + (i < n % blocks ? 1 : 0); }

// Images of a chunk that the filter gradient's kernel sweeps together: their planes and dy stay
// in L2 (LeNet-5's conv2: 4 images ~0.28 MB; a chunk of 16 at batch 256 was ~1.1 MB and ran at
// 62% of the peak against 71% at batch 64).
constexpr int64_t kFilterGradGroup = 4;

// dW^T [taps, co] of a chunk of images: for tap k and channel o, the dot product over the chunk's
// images and grid pixels of plane_b[off[k] + q] and dy_b[o, q] (dy laid on the grid, zero on the
// dropped columns), by the dot-product microkernel: no packing and no transposes. Groups of
// kFilterGradGroup images are summed in order. (Reading dy in place a row at a time instead was
// 1.08-1.3x slower: a 14-wide row is one masked step.)
void backpropFilterShifted(const ConvGeom& g, const float* x, const DyRows& dy, float* partial, int64_t per,
                           int64_t chunks) {
  const Shift s = forwardShift(g);
  const int64_t K = s.taps(), Q = s.grid(), planeSize = s.planeFloats();
  const std::vector<int64_t> off = tapOffsets(s);
  const DotKernel dot = activeDotKernel();
  const int64_t tapBlocks = (K + kDotR - 1) / kDotR, chBlocks = (g.co + kDotC - 1) / kDotC;
  parallel(chunks, 2.0 * g.n * Q * g.co * K, [&](int64_t t) {
    const int64_t b1 = std::min(g.n, (t + 1) * per);
    float* acc = partial + t * K * g.co;
    for (int64_t b0 = t * per; b0 < b1; b0 += kFilterGradGroup) {
      const int64_t nb = std::min(b1, b0 + kFilterGradGroup) - b0;
      float* planes = tPlane.floats(static_cast<size_t>(nb * planeSize));
      float* dyw = tCol.floats(static_cast<size_t>(std::max<int64_t>(1, nb * g.co * Q)));
      for (int64_t b = 0; b < nb; ++b) {
        padPlane(s, x + (b0 + b) * g.ci * g.h * g.w, planes + b * planeSize);
        for (int64_t o = 0; o < g.co; ++o) {
          float* rows = dyw + (b * g.co + o) * Q;
          dy.put(b0 + b, o, rows, s.wp);
          for (int64_t i = 0; i < g.oh; ++i)
            std::memset(rows + i * s.wp + g.ow, 0, sizeof(float) * static_cast<size_t>(s.wp - g.ow));
        }
      }
      DotArgs d{planes, planeSize, 0, nullptr, nullptr, g.co * Q, Q, 0, static_cast<int>(nb), 1, Q, nullptr, g.co,
                b0 > t * per};
      for (int64_t cb = 0, c0 = 0; cb < chBlocks; ++cb) {
        const int C = static_cast<int>(blockSize(g.co, chBlocks, cb));
        d.y = dyw + c0 * Q;
        for (int64_t tb = 0, r0 = 0; tb < tapBlocks; ++tb) {
          const int R = static_cast<int>(blockSize(K, tapBlocks, tb));
          d.off = off.data() + r0;
          d.out = acc + r0 * g.co + c0;
          dot(R, C, d);
          r0 += R;
        }
        c0 += C;
      }
    }
  });
}

// dst[e] = the sum of src[t * size + e] over t < count, in t order.
void sumChunks(const float* __restrict src, int64_t count, int64_t size, float* __restrict dst) {
  for (int64_t e = 0; e < size; ++e) dst[e] = count > 0 ? src[e] : 0.f;
  for (int64_t t = 1; t < count; ++t) {
    const float* __restrict part = src + t * size;
    for (int64_t e = 0; e < size; ++e) dst[e] += part[e];
  }
}

}  // namespace

void conv2dNchw(const ConvGeom& g, const float* x, const float* filter, float* y, const Epilogue& ep) {
  const int64_t K = g.ci * g.fh * g.fw, P = g.oh * g.ow;
  float* w = tFilter.floats(static_cast<size_t>(std::max<int64_t>(1, g.co * K)));
  filterRows(g, filter, true, w);
  if (unitStride(g)) {
    shiftedConv(forwardShift(g), x, w, y, ep);
    return;
  }
  const DenseA a({w, K, 1});
  parallel(g.n, 2.0 * g.n * P * g.co * K, [&](int64_t b) {
    float* yb = y + b * g.co * P;
    gemmLocal(g.co, P, K, a, ColB(g, x + b * g.ci * g.h * g.w), yb, P, false);
    if (ep.bias == nullptr && ep.act == ACT_LINEAR) return;
    for (int64_t o = 0; o < g.co; ++o) {
      float* row = yb + o * P;
      const float bias = ep.bias ? ep.bias[o] : 0.f;
      epilogueRow(row, row, P, bias, ep);
    }
  });
}

void conv2dNchwReluMaxPool(const ConvGeom& g, const float* x, const float* filter, const float* bias, float* y,
                           uint8_t* at, FilterLayout layout) {
  const int64_t K = g.ci * g.fh * g.fw, P = g.oh * g.ow, ph = g.oh / 2, pw = g.ow / 2;
  // OIHW is already rows [co, K] in (c, kh, kw) order
  const float* w = filter;
  if (layout == FilterLayout::HWIO) {
    float* rows = tFilter.floats(static_cast<size_t>(std::max<int64_t>(1, g.co * K)));
    filterRows(g, filter, true, rows);
    w = rows;
  }
  // image b's outputs [co, oh, stride] pooled a row pair at a time, the bias added to each tap
  const auto pool = [&](int64_t b, const float* yb, int64_t stride) {
    for (int64_t o = 0; o < g.co; ++o) {
      const int64_t e = (b * g.co + o) * ph * pw;
      biasReluMaxPoolPlane(yb + o * g.oh * stride, g.oh, g.ow, stride, bias ? bias[o] : 0.f, y + e, at + e);
    }
  };
  if (unitStride(g)) {
    const Shift s = forwardShift(g);
    shiftedConv(s, x, w, [&](int64_t b, const float* yw) { pool(b, yw, s.wp); });
    return;
  }
  const DenseA a({w, K, 1});
  parallel(g.n, 2.0 * g.n * P * g.co * K, [&](int64_t b) {
    float* yb = tCol.floats(static_cast<size_t>(std::max<int64_t>(1, g.co * P)));
    gemmLocal(g.co, P, K, a, ColB(g, x + b * g.ci * g.h * g.w), yb, P, false);
    pool(b, yb, g.ow);
  });
}

namespace {

void backpropInput(const ConvGeom& g, const DyRows& rows, const float* filter, float* dx) {
  if (backpropInputShifted(g, rows, filter, dx)) return;
  const float* dy = denseDy(g, rows);
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

void backpropFilter(const ConvGeom& g, const float* x, const DyRows& rows, float* dfilter) {
  const int64_t K = g.ci * g.fh * g.fw, P = g.oh * g.ow;
  const int64_t per = imagesPerChunk(std::max<int64_t>(1, g.n));
  const int64_t chunks = (g.n + per - 1) / per;
  const int64_t size = K * g.co;
  float* partial = tPartials.floats(static_cast<size_t>(std::max<int64_t>(1, std::max<int64_t>(1, chunks) * size)));
  if (unitStride(g)) {
    backpropFilterShifted(g, x, rows, partial, per, chunks);
  } else {
    const float* dy = denseDy(g, rows);
    parallel(chunks, 2.0 * g.n * P * g.co * K, [&](int64_t t) {
      float* acc = partial + t * size;
      const int64_t b1 = std::min(g.n, (t + 1) * per);
      for (int64_t b = t * per; b < b1; ++b)
        gemmLocal(K, g.co, P, ColA(g, x + b * g.ci * g.h * g.w), DenseB({dy + b * g.co * P, 1, P}), acc, g.co,
                  b > t * per);
    });
  }
  float* sum = tFilter.floats(static_cast<size_t>(std::max<int64_t>(1, size)));
  sumChunks(partial, chunks, size, sum);
  // dW^T [(c, kh, kw), co] -> HWIO.
  for (int64_t c = 0; c < g.ci; ++c)
    for (int64_t kh = 0; kh < g.fh; ++kh)
      for (int64_t kw = 0; kw < g.fw; ++kw)
        std::memcpy(dfilter + ((kh * g.fw + kw) * g.ci + c) * g.co, sum + ((c * g.fh + kh) * g.fw + kw) * g.co,
                    sizeof(float) * g.co);
}

}  // namespace

void conv2dNchwBackpropInput(const ConvGeom& g, const float* dy, const float* filter, float* dx) {
  backpropInput(g, DyRows{g.co, g.oh, g.ow, dy, nullptr, nullptr}, filter, dx);
}

void conv2dNchwBackpropFilter(const ConvGeom& g, const float* x, const float* dy, float* dfilter) {
  backpropFilter(g, x, DyRows{g.co, g.oh, g.ow, dy, nullptr, nullptr}, dfilter);
}

void conv2dNchwReluMaxPoolBackpropInput(const ConvGeom& g, const float* dy, const uint8_t* at, const float* filter,
                                        float* dx, FilterLayout layout) {
  if (layout == FilterLayout::OIHW) {
    float* hwio = tLayout.floats(static_cast<size_t>(std::max<int64_t>(1, g.co * g.ci * g.fh * g.fw)));
    oihwToHwio(g, filter, hwio);
    filter = hwio;
  }
  if (reluMaxPoolInputGradSparse(g, dy, at, filter, dx)) return;
  backpropInput(g, DyRows{g.co, g.oh, g.ow, nullptr, dy, at}, filter, dx);
}

void conv2dNchwReluMaxPoolBackpropFilter(const ConvGeom& g, const float* x, const float* dy, const uint8_t* at,
                                         float* dfilter, FilterLayout layout) {
  float* out = dfilter;
  if (layout == FilterLayout::OIHW)
    out = tLayout.floats(static_cast<size_t>(std::max<int64_t>(1, g.co * g.ci * g.fh * g.fw)));
  if (!reluMaxPoolFilterGradSparse(g, x, dy, at, out)) backpropFilter(g, x, DyRows{g.co, g.oh, g.ow, nullptr, dy, at}, out);
  if (layout == FilterLayout::OIHW) filterRows(g, out, true, dfilter);
}

}  // namespace fp32
}  // namespace qbnn
