// Winograd F(2, 5) along a convolution's rows (1-D, the kernel's width), for the shifted-rows
// convolutions of conv_nchw.cc: 5-tap rows cost 6 products for 2 outputs instead of 10, so a
// 5 x 5 stride-1 convolution is 6 GEMMs of K = cin * fh (instead of one of K = cin * fh * 5) on
// half as many columns: 0.6 of the direct product's multiply-adds (LeNet-5's conv2 0.6x its
// time with the transforms). Columns are rows' output pairs; the height stays direct.
//
// With interpolation points 0, 1, -1, 2, -2 and infinity: for six inputs d and five taps g,
// y0 = g . d[0..5), y1 = g . d[1..6) equal A^T [(G g) * (B^T d)] with the integer matrices
//   B^T = [4 0 -5 0 1 0; 0 4 4 -1 -1 0; 0 -4 4 1 -1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]
// and G's rows the points' powers divided by B^T's row scales (4, 6, 6, 24, 24, 1), so that the
// input and output transforms are exact small-integer sums and only G rounds (once, per call).
// The results are float32 sums of the same products in another association than the direct
// kernel's (|error| ~1e-6 relative on LeNet-5's conv2 against float64, the direct kernel ~4e-7).
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

constexpr int kWinoPoints = 6;

// The filter transform, one row of G' (xi < 6) applied to 5 taps.
inline float winogradFilter(int xi, const float* g) {
  static const float G[kWinoPoints][5] = {
      {1.f / 4, 0, 0, 0, 0},
      {1.f / 6, 1.f / 6, 1.f / 6, 1.f / 6, 1.f / 6},
      {1.f / 6, -1.f / 6, 1.f / 6, -1.f / 6, 1.f / 6},
      {1.f / 24, 2.f / 24, 4.f / 24, 8.f / 24, 16.f / 24},
      {1.f / 24, -2.f / 24, 4.f / 24, -8.f / 24, 16.f / 24},
      {0, 0, 0, 0, 1.f},
  };
  float s = 0.f;
  for (int k = 0; k < 5; ++k) s += G[xi][k] * g[k];
  return s;
}

// Input transform: t[xi * tStride + q] = (B^T d_q)[xi] for q < count, d_q = x[2q .. 2q + 6)
// (x readable to x[2 * count + 34)).
using WinogradInput = void (*)(const float* x, int64_t count, float* t, int64_t tStride);
// Output transform: y[2q + e] = (A^T m_q)[e] for q < count, e < 2, m_q[xi] = m[xi * mStride + q].
using WinogradOutput = void (*)(const float* m, int64_t mStride, int64_t count, float* y);

WinogradInput winogradInputAvx512();    // null when not compiled for x86-64
WinogradOutput winogradOutputAvx512();  // null when not compiled for x86-64

}  // namespace fp32
}  // namespace qbnn
