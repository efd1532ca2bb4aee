// AVX-512 softplus, sigmoid, exp, log and sqrt (see unary.h), with the polynomials of math_avx512.h.
#include "../common.h"
#include "unary.h"

#if QBNN_X86
#include <cmath>

#include "avx512_region.h"

QBNN_FP32_AVX512_BEGIN

#include "math_avx512.h"

namespace qbnn {
namespace fp32 {
using namespace avx512;

bool unaryAvx512(int op, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 r;
    switch (op) {
      case UNARY_SOFTPLUS: r = softplus(v); break;
      case UNARY_SIGMOID: r = sigmoid(v); break;
      case UNARY_EXP: r = expNan(v); break;
      case UNARY_LOG: r = logPs(v); break;
      default: r = _mm512_sqrt_ps(v); break;
    }
    _mm512_mask_storeu_ps(y + i, m, r);
  }
  return true;
}

}  // namespace fp32
}  // namespace qbnn

QBNN_FP32_AVX512_END

#else

namespace qbnn {
namespace fp32 {
bool unaryAvx512(int, const float*, float*, int64_t) { return false; }
}  // namespace fp32
}  // namespace qbnn

#endif
