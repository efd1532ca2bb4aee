// scale * sum((x - c)^2) and its gradient, one pass each (the 'QbnnSquaredDistance' /
// 'QbnnSquaredDistanceGrad' tfjs kernels of @qbnn/core's squared-distance.ts).
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

// sum((x - c)^2) in float64: fixed chunks, each summed in 8 lane partials (element i of a chunk
// to lane i mod 8) added in a fixed order, the chunks added in order; the same value on any
// thread count and with or without AVX-512.
double squaredDistanceSum(const float* x, int64_t n, double c);

// dx = k (x - c) in float64, rounded once (k = 2 scale dy): @qbnn/core's reference bit for bit.
void squaredDistanceGrad(const float* x, int64_t n, double c, double k, float* dx);

}  // namespace fp32
}  // namespace qbnn
