// Sums over leading and trailing axes: the reductions training runs (bias gradients of NCHW
// convolutions and of dense layers sum over every axis but the channels).
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

// out[k] = sum over o < outer, i < inner of x[(o * kept + k) * inner + i], accumulated in float64
// (as tfjs-backend-cpu's JavaScript numbers), rounded once. Work is cut by shape only.
void sumOuterInner(const float* x, int64_t outer, int64_t kept, int64_t inner, float* out);

}  // namespace fp32
}  // namespace qbnn
