// fp32 2-D pooling on NHWC data with tfjs-backend-cpu's semantics: windows are clipped to the
// input (padding is never a candidate), max uses a strict comparison (the first maximum in
// row-major order wins; NaN never does), average divides by the clipped window's size, and its
// gradient spreads dy / (fh * fw) over the whole window, as tfjs-backend-cpu's AvgPoolGrad does.
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

struct PoolGeom {
  int64_t n, h, w, c, oh, ow, fh, fw, sh, sw, padTop, padLeft;
};

void maxPool(const PoolGeom& g, const float* x, float* y);
void avgPool(const PoolGeom& g, const float* x, float* y);
// dx [n, h, w, c]: dy of each window goes to its first maximum (none when the window has no
// value above -infinity).
void maxPoolGrad(const PoolGeom& g, const float* x, const float* dy, float* dx);
void avgPoolGrad(const PoolGeom& g, const float* dy, float* dx);

// ReLU after a 2 x 2 stride-2 max pool, the bias added to each tap first (a convolution's
// epilogue; see conv2dNchwReluMaxPool), on one channel plane x [h, w] (rows `stride` apart): out
// [h / 2, w / 2] = max(0, m) with m a window's maximum of (x + bias) by maxPool's rule, and `at`
// the first tap equal to m in row-major order (0..3) when m > 0 (where the ReLU passes a
// gradient), else kNoTap.
constexpr uint8_t kNoTap = 4;
void biasReluMaxPoolPlane(const float* x, int64_t h, int64_t w, int64_t stride, float bias, float* out, uint8_t* at);

// Its gradient on one plane: rows [0, h) x columns [0, w) of dz (rows `stride` apart) from dy and
// the taps [h / 2, w / 2]: dy + 0 at each window's tap (a -0 lands as +0, as maxPoolGrad's), zero
// elsewhere (also on an odd last row or column).
void reluMaxPoolScatterPlane(const float* dy, const uint8_t* at, int64_t h, int64_t w, float* dz, int64_t stride);

// The same on planes [planes, h, w]: the values ReluGrad then MaxPoolGrad give.
void reluMaxPoolScatter(int64_t planes, int64_t h, int64_t w, const float* dy, const uint8_t* at, float* dz);

}  // namespace fp32
}  // namespace qbnn
