// fp32 2-D convolutions on NHWC data with HWIO filters (tfjs layouts), as GEMMs whose A operand
// is packed straight from the image (no im2col buffer).
#pragma once

#include <cstdint>

#include "sgemm.h"

namespace qbnn {
namespace fp32 {

// x [n, h, w, ci], filter [fh, fw, ci, co], y [n, oh, ow, co]; the input pixel of output (i, j)
// and tap (kh, kw) is (i * sh + kh * dh - padTop, j * sw + kw * dw - padLeft), zero outside.
struct ConvGeom {
  int64_t n, h, w, ci, oh, ow, co, fh, fw, sh, sw, dh, dw, padTop, padLeft;
};

// y = conv(x, filter) (+ bias, activation).
void conv2d(const ConvGeom& g, const float* x, const float* filter, float* y, const Epilogue& ep);
// dx [n, h, w, ci] from dy [n, oh, ow, co] and the filter.
void conv2dBackpropInput(const ConvGeom& g, const float* dy, const float* filter, float* dx);
// dfilter [fh, fw, ci, co] from x and dy.
void conv2dBackpropFilter(const ConvGeom& g, const float* x, const float* dy, float* dfilter);

// The same on NCHW data (x [n, ci, h, w], dy and y [n, co, oh, ow]); the filter stays HWIO.
void conv2dNchw(const ConvGeom& g, const float* x, const float* filter, float* y, const Epilogue& ep);
void conv2dNchwBackpropInput(const ConvGeom& g, const float* dy, const float* filter, float* dx);
void conv2dNchwBackpropFilter(const ConvGeom& g, const float* x, const float* dy, float* dfilter);
// The layout of a fused convolution's filter (and of its filter gradient): tfjs's HWIO
// [fh, fw, ci, co], or PyTorch's OIHW [co, ci, fh, fw] as qbnn's layers hold it, which is the
// forward GEMM's A operand as it is (no transpose on the way in).
enum class FilterLayout { HWIO, OIHW };

// relu(maxpool2x2(conv(x) + bias)) on NCHW data without the convolution's output in memory: y
// [n, co, oh / 2, ow / 2] and each window's tap `at` (see biasReluMaxPoolPair in pooling.h), pooled
// from each image's outputs while they are in cache. The values equal conv2dNchw's with the bias
// then maxPool then a ReLU (up to the sign of a zero), for either filter layout.
void conv2dNchwReluMaxPool(const ConvGeom& g, const float* x, const float* filter, const float* bias, float* y,
                           uint8_t* at, FilterLayout layout = FilterLayout::HWIO);
// Its input and filter gradients from the pooled dy [n, co, oh / 2, ow / 2] and the taps: the same
// values as conv2dNchwBackpropInput / Filter of the scattered dy (reluMaxPoolScatter), without it.
// The filter and dfilter are in `layout`.
void conv2dNchwReluMaxPoolBackpropInput(const ConvGeom& g, const float* dy, const uint8_t* at, const float* filter,
                                        float* dx, FilterLayout layout = FilterLayout::HWIO);
void conv2dNchwReluMaxPoolBackpropFilter(const ConvGeom& g, const float* x, const float* dy, const uint8_t* at,
                                         float* dfilter, FilterLayout layout = FilterLayout::HWIO);

}  // namespace fp32
}  // namespace qbnn
