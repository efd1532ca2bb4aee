// Element-wise fp32 functions of the training graph with tfjs-backend-cpu's definitions:
// softplus(x) = x above -log(eps) - 2, exp(x) below log(eps) + 2 (eps = 2^-23), else
// log(1 + exp(x)); sigmoid(x) = 1 / (1 + exp(-x)); exp, log (NaN below 0, -inf at 0), sqrt. AVX-512 with polynomial exp / log (a few
// ulp), portable libm otherwise.
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

enum Unary : int { UNARY_SOFTPLUS = 0, UNARY_SIGMOID = 1, UNARY_EXP = 2, UNARY_LOG = 3, UNARY_SQRT = 4 };

void unary(int op, const float* x, float* y, int64_t n);

// The same on the calling thread only (for fused kernels that split the work themselves).
void unaryChunk(int op, const float* x, float* y, int64_t n);

// The AVX-512 body over [0, n) (defined in unary_avx512.cc); false when not compiled in.
bool unaryAvx512(int op, const float* x, float* y, int64_t n);

// The location-scale sample (out = first + softplus(rho) * eps) or its gradient (out =
// (first * eps) * sigmoid(rho)) over [0, n) in one AVX-512 pass, the values of unaryAvx512's
// softplus / sigmoid then the float32 product and sum (locscale.h); false when not compiled in.
bool locScaleAvx512(bool grad, const float* first, const float* rho, const float* eps, float* out, int64_t n);

}  // namespace fp32
}  // namespace qbnn
