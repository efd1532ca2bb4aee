// Pooling kernels (see pooling.h). Work is split by image; sums are kept in float64, as
// tfjs-backend-cpu (JavaScript numbers) does, and rounded once.
#include "pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "parallel.h"

namespace qbnn {
namespace fp32 {
namespace {

// fn(b, i, j, r0, r1, c0, c1) for every output pixel: the clipped window is rows [r0, r1),
// columns [c0, c1). Tasks are (image, output row).
template <typename Fn>
void forWindows(const PoolGeom& g, Fn&& fn) {
  parallel(g.n * g.oh, static_cast<double>(g.n * g.oh * g.ow * g.c * g.fh * g.fw), [&](int64_t t) {
    const int64_t b = t / g.oh, i = t % g.oh;
    const int64_t rc = i * g.sh - g.padTop;
    const int64_t r0 = std::max<int64_t>(0, rc), r1 = std::min(g.h, rc + g.fh);
    for (int64_t j = 0; j < g.ow; ++j) {
      const int64_t cc = j * g.sw - g.padLeft;
      fn(b, i, j, r0, r1, std::max<int64_t>(0, cc), std::min(g.w, cc + g.fw));
    }
  });
}

}  // namespace

void maxPool(const PoolGeom& g, const float* x, float* y) {
  forWindows(g, [&](int64_t b, int64_t i, int64_t j, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    float* out = y + ((b * g.oh + i) * g.ow + j) * g.c;
    for (int64_t ch = 0; ch < g.c; ++ch) out[ch] = -std::numeric_limits<float>::infinity();
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t q = c0; q < c1; ++q) {
        const float* px = x + ((b * g.h + r) * g.w + q) * g.c;
        for (int64_t ch = 0; ch < g.c; ++ch)
          if (px[ch] > out[ch]) out[ch] = px[ch];
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
  const int64_t image = g.h * g.w * g.c;
  parallel(g.n, static_cast<double>(g.n * g.oh * g.ow * g.c * g.fh * g.fw), [&](int64_t b) {
    std::vector<double> acc(static_cast<size_t>(image), 0.0);
    const float* xi = x + b * image;
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t rc = i * g.sh - g.padTop;
      const int64_t r0 = std::max<int64_t>(0, rc), r1 = std::min(g.h, rc + g.fh);
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t cc = j * g.sw - g.padLeft;
        const int64_t c0 = std::max<int64_t>(0, cc), c1 = std::min(g.w, cc + g.fw);
        const float* d = dy + ((b * g.oh + i) * g.ow + j) * g.c;
        for (int64_t ch = 0; ch < g.c; ++ch) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t at = -1;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t q = c0; q < c1; ++q) {
              const int64_t idx = (r * g.w + q) * g.c + ch;
              if (xi[idx] > best) {
                best = xi[idx];
                at = idx;
              }
            }
          if (at >= 0) acc[static_cast<size_t>(at)] += d[ch];
        }
      }
    }
    float* out = dx + b * image;
    for (int64_t k = 0; k < image; ++k) out[k] = static_cast<float>(acc[static_cast<size_t>(k)]);
  });
}

void avgPoolGrad(const PoolGeom& g, const float* dy, float* dx) {
  const int64_t image = g.h * g.w * g.c;
  const double scale = 1.0 / static_cast<double>(g.fh * g.fw);
  parallel(g.n, static_cast<double>(g.n * g.oh * g.ow * g.c * g.fh * g.fw), [&](int64_t b) {
    std::vector<double> acc(static_cast<size_t>(image), 0.0);
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t rc = i * g.sh - g.padTop;
      const int64_t r0 = std::max<int64_t>(0, rc), r1 = std::min(g.h, rc + g.fh);
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t cc = j * g.sw - g.padLeft;
        const int64_t c0 = std::max<int64_t>(0, cc), c1 = std::min(g.w, cc + g.fw);
        const float* d = dy + ((b * g.oh + i) * g.ow + j) * g.c;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t q = c0; q < c1; ++q) {
            double* a = acc.data() + (r * g.w + q) * g.c;
            for (int64_t ch = 0; ch < g.c; ++ch) a[ch] += d[ch];
          }
      }
    }
    float* out = dx + b * image;
    for (int64_t k = 0; k < image; ++k) out[k] = static_cast<float>(acc[static_cast<size_t>(k)] * scale);
  });
}

}  // namespace fp32
}  // namespace qbnn
