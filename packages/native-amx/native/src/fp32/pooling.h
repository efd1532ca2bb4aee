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

}  // namespace fp32
}  // namespace qbnn
