// The location-scale weight sample of Gaussian / Radial posteriors and its gradient in one pass
// each (see @qbnn/core's 'QbnnLocScaleSample'), with the arithmetic of the composed tfjs ops:
// the Softplus / Sigmoid kernels' float32 maths, then float32 products and sums in that order.
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

// w = mu + softplus(rho) * eps.
void locScaleSample(const float* mu, const float* rho, const float* eps, float* w, int64_t n);
// drho = (dw * eps) * sigmoid(rho).
void locScaleSampleGrad(const float* dw, const float* rho, const float* eps, float* drho, int64_t n);

}  // namespace fp32
}  // namespace qbnn
