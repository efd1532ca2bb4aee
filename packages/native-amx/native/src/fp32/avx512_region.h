// The AVX-512 region of an fp32 kernel file: what lies between QBNN_FP32_AVX512_BEGIN and
// QBNN_FP32_AVX512_END is compiled for the AVX-512 targets (its functions are called only after
// the CPU check), and tailMask gives the lanes of a loop's last, partial vector. x86 builds only.
#pragma once

#include <immintrin.h>

#include <cstdint>

#define QBNN_FP32_AVX512_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,avx512f,avx512dq,avx512bw,avx512vl\")")
#define QBNN_FP32_AVX512_END _Pragma("GCC pop_options")
// The region with GCC 12's warnings about the deliberately undefined vectors of its own AVX-512
// headers silenced.
#define QBNN_FP32_AVX512_QUIET_BEGIN \
  QBNN_FP32_AVX512_BEGIN _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define QBNN_FP32_AVX512_QUIET_END _Pragma("GCC diagnostic pop") QBNN_FP32_AVX512_END

namespace qbnn {
namespace fp32 {

// Lanes of a 16-float vector that hold the next `left` elements: all 16 from 16 on, none at 0 or below.
inline __mmask16 tailMask(int64_t left) {
  if (left >= 16) return static_cast<__mmask16>(0xffff);
  if (left <= 0) return 0;
  return static_cast<__mmask16>((1u << left) - 1u);
}

}  // namespace fp32
}  // namespace qbnn
