// Sums over leading and trailing axes: the reductions training runs (bias gradients of NCHW
// convolutions and of dense layers sum over every axis but the channels).
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

// out[k] = sum over o < outer, i < inner of x[(o * kept + k) * inner + i], accumulated in float64
// (as tfjs-backend-cpu's JavaScript numbers), rounded once. Work is cut by shape only.
void sumOuterInner(const float* x, int64_t outer, int64_t kept, int64_t inner, float* out);

// sumOuterInner of dz [n, c, h, w] over every axis but c, where dz is the gradient through a
// 2 x 2 ReLU max pool (pooled dy [n, c, h / 2, w / 2] put at each window's tap `at`, zero
// elsewhere; see reluMaxPoolScatter), without dz in memory: each image's plane is scattered into
// a buffer in cache and summed by sumOuterInner's own loops, so the result is its result bit for bit.
void reluMaxPoolBiasGrad(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, const uint8_t* at, float* out);

}  // namespace fp32
}  // namespace qbnn
