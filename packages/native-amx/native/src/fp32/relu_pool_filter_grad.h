// The filter gradient of a convolution followed by a ReLU and a 2 x 2 stride-2 max pool, from the
// pooled dy and each window's tap, summing only the terms that carry a gradient.
#pragma once

#include <cstdint>

#include "conv.h"

namespace qbnn {
namespace fp32 {

// dfilter (HWIO) = conv2dNchwBackpropFilter(x, dz) with dz the scattered dy (dy at each window's
// tap, zero elsewhere), computed from the taps alone: dW[o, (kh, kw, c)] sums, over the windows of
// channel o whose maximum passed the ReLU, dy times the input patch at the tap. The dense product
// multiplies ~7 zeros for each such term (3 of the 4 taps of a window, and about half the windows).
// Sums run image by image in chunks cut by shape, so results do not depend on the thread count;
// they are not the dense product's bits (another order of the same float32 sums), and terms whose
// dz is zero are skipped, so an infinite or NaN input where dz is zero does not reach dfilter.
// Returns false (nothing written) when it does not apply: no AVX-512, a dilated row (dw != 1) or
// a window row of more than 128 floats (fw x ci).
bool reluMaxPoolFilterGradSparse(const ConvGeom& g, const float* x, const float* dy, const uint8_t* at,
                                 float* dfilter);

}  // namespace fp32
}  // namespace qbnn
