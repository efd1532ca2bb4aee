// Element-wise fp32 kernels tfjs-backend-wasm runs slowly (scalar wasm loops: 2-5 ms for 400k
// elements, against ~0.1 ms for its SIMD Multiply): Maximum, Minimum, the comparisons, Select,
// Exp, Log, Sqrt, Softplus, Sigmoid; and the four arithmetic ops, which gain from threads. Semantics are tfjs-backend-cpu's: max/min propagate NaN and order -0 below +0 (Math.max),
// comparisons with NaN are false, softplus is thresholded (see unary.h).
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

enum Binary : int {
  BIN_ADD = 0,
  BIN_SUB,
  BIN_MUL,
  BIN_DIV,
  BIN_MAXIMUM,
  BIN_MINIMUM,
  BIN_RELU_GRAD,  // a * step(b): the ReLU gradient (dy, x), NaN where x is NaN
  BIN_LESS,       // comparisons from here on
  BIN_LESS_EQUAL,
  BIN_GREATER,
  BIN_GREATER_EQUAL,
};

// out[i] = op(a[i * strideA], b[i * strideB]) for i < n (stride 0 broadcasts a scalar).
// Comparisons write uint8 0/1 to `out`, the others float.
void binary(int op, const float* a, int64_t strideA, const float* b, int64_t strideB, void* out, int64_t n);

// out[i] = cond[i] ? t[i] : e[i].
void select(const uint8_t* cond, const float* t, const float* e, float* out, int64_t n);

}  // namespace fp32
}  // namespace qbnn
