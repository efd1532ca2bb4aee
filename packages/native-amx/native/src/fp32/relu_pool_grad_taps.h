// The filter and input gradients of a convolution followed by a ReLU and a 2 x 2 stride-2 max
// pool, from the pooled dy and each window's tap, with only the terms that carry a gradient.
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
// Returns false (nothing written) when it does not apply: no AVX-512, a dilated row (dw != 1), or
// a kernel row (fw x ci floats) under 16 floats (mostly idle lanes: the dense kernel is faster)
// or over 128.
bool reluMaxPoolFilterGradSparse(const ConvGeom& g, const float* x, const float* dy, const uint8_t* at,
                                 float* dfilter);

// dx [n, ci, h, w] = conv2dNchwBackpropInput(dz, filter) the same way: each window and tap's terms
// add dy times their channels' filters into the input patch at the tap (image by image, in a fixed
// order, so again any thread count gives the same bits). Same conditions and caveats as
// reluMaxPoolFilterGradSparse.
bool reluMaxPoolInputGradSparse(const ConvGeom& g, const float* dy, const uint8_t* at, const float* filter,
                                float* dx);

}  // namespace fp32
}  // namespace qbnn
