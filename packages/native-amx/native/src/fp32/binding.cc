// Node-API entry points of the fp32 kernels. Tensors arrive as typed-array views (of the
// tfjs-backend-wasm heap, usually) and are used in place; every length, shape and geometry is
// checked before any memory is touched, and a bad argument is a thrown TypeError / RangeError.
#include "binding.h"

#include <cmath>
#include <ctime>
#include <initializer_list>
#include <string>
#include <vector>

#include "../common.h"
#include "adam.h"
#include "conv.h"
#include "dropout.h"
#include "elementwise.h"
#include "gaussian_kl.h"
#include "normal.h"
#include "pooling.h"
#include "sgemm.h"
#include "squared_distance.h"
#include "gather.h"
#include "locscale.h"
#include "reduce.h"
#include "transpose.h"
#include "unary.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr double kMaxDim = 1 << 30;

[[noreturn]] void typeError(Napi::Env env, const std::string& m) { throw Napi::TypeError::New(env, m); }
[[noreturn]] void rangeError(Napi::Env env, const std::string& m) { throw Napi::RangeError::New(env, m); }

struct Buf {
  void* data = nullptr;
  size_t length = 0;  // elements
  napi_typedarray_type type = napi_float32_array;
};

// A typed array argument; null/undefined gives an empty Buf when `optional`.
Buf array(const Napi::CallbackInfo& info, size_t i, const char* name, bool optional = false) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) {
    if (optional) return {};
    typeError(env, std::string(name) + " is required");
  }
  if (!info[i].IsTypedArray()) typeError(env, std::string(name) + " must be a typed array");
  Buf b;
  napi_value ab;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, info[i], &b.type, &b.length, &b.data, &ab, &offset) != napi_ok)
    typeError(env, std::string(name) + ": cannot read the typed array");
  if (b.length > 0 && b.data == nullptr) typeError(env, std::string(name) + " is detached");
  return b;
}

float* floats(const Napi::CallbackInfo& info, size_t i, const char* name, double need, bool optional = false) {
  const Buf b = array(info, i, name, optional);
  if (b.data == nullptr && optional && b.length == 0 && (info[i].IsNull() || info[i].IsUndefined())) return nullptr;
  if (b.type != napi_float32_array) typeError(info.Env(), std::string(name) + " must be a Float32Array");
  if (static_cast<double>(b.length) < need)
    rangeError(info.Env(), std::string(name) + " holds " + std::to_string(b.length) + " floats, needs " +
                               std::to_string(static_cast<int64_t>(need)));
  return static_cast<float*>(b.data);
}

// Argument i as a number, NaN when it is missing or not a number (callers range-check it).
double numberArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : NAN;
}

// An Int32Array of exactly `count` values, each in [lo, kMaxDim].
std::vector<int64_t> ints(const Napi::CallbackInfo& info, size_t i, const char* name, size_t count, int64_t lo) {
  const Buf b = array(info, i, name);
  if (b.type != napi_int32_array || b.length != count)
    typeError(info.Env(), std::string(name) + " must be an Int32Array of " + std::to_string(count) + " values");
  std::vector<int64_t> v(count);
  for (size_t k = 0; k < count; ++k) {
    v[k] = static_cast<const int32_t*>(b.data)[k];
    if (v[k] < lo)
      rangeError(info.Env(), std::string(name) + "[" + std::to_string(k) + "] must be >= " + std::to_string(lo) +
                                 ", got " + std::to_string(v[k]));
  }
  return v;
}

Epilogue epilogue(const Napi::CallbackInfo& info, size_t i, double n) {
  Epilogue ep;
  ep.bias = floats(info, i, "bias", n, true);
  if (info.Length() > i + 1 && info[i + 1].IsNumber()) {
    const int act = info[i + 1].As<Napi::Number>().Int32Value();
    if (act < ACT_LINEAR || act > ACT_SIGMOID) rangeError(info.Env(), "activation must be 0..4");
    ep.act = act;
  }
  if (info.Length() > i + 2 && info[i + 2].IsNumber()) ep.alpha = info[i + 2].As<Napi::Number>().FloatValue();
  return ep;
}

// matmul(a, b, out, dims [batchA, batchB, M, K, N, transA, transB], bias?, act?, alpha?):
// out[batch] = op(a[batch]) op(b[batch]) for batch < max(batchA, batchB), a batch of 1 broadcast.
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto d = ints(info, 3, "dims", 7, 0);
  const int64_t ba = d[0], bb = d[1], M = d[2], K = d[3], N = d[4];
  const bool ta = d[5] != 0, tb = d[6] != 0;
  if (ba < 1 || bb < 1 || (ba != bb && ba != 1 && bb != 1))
    rangeError(env, "batch sizes must be equal or one of them 1, got " + std::to_string(ba) + ", " + std::to_string(bb));
  const int64_t batch = ba > bb ? ba : bb;
  const float* a = floats(info, 0, "a", static_cast<double>(ba) * M * K);
  const float* b = floats(info, 1, "b", static_cast<double>(bb) * K * N);
  float* out = floats(info, 2, "out", static_cast<double>(batch) * M * N);
  const Epilogue ep = epilogue(info, 4, static_cast<double>(N));
  for (int64_t t = 0; t < batch; ++t) {
    const float* at = a + (ba == 1 ? 0 : t) * M * K;
    const float* bt = b + (bb == 1 ? 0 : t) * K * N;
    gemmDense(M, N, K, at, ta, bt, tb, out + t * M * N, ep);
  }
  return env.Undefined();
}

// geometry [n, h, w, ci, oh, ow, co, fh, fw, sh, sw, dh, dw, padTop, padLeft]
ConvGeom convGeom(const Napi::CallbackInfo& info, size_t i) {
  const auto v = ints(info, i, "geometry", 15, 0);
  ConvGeom g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]};
  if (g.fh < 1 || g.fw < 1 || g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1)
    rangeError(info.Env(), "geometry: filter size, strides and dilations must be >= 1");
  return g;
}

// The element counts of x, dy and the filter are the same in both layouts; `Nchw` picks the kernels.
template <bool Nchw>
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  const ConvGeom g = convGeom(info, 3);
  const float* x = floats(info, 0, "x", static_cast<double>(g.n) * g.h * g.w * g.ci);
  const float* f = floats(info, 1, "filter", static_cast<double>(g.fh) * g.fw * g.ci * g.co);
  float* y = floats(info, 2, "y", static_cast<double>(g.n) * g.oh * g.ow * g.co);
  (Nchw ? conv2dNchw : conv2d)(g, x, f, y, epilogue(info, 4, static_cast<double>(g.co)));
  return info.Env().Undefined();
}

template <bool Nchw>
Napi::Value Conv2dBackpropInput(const Napi::CallbackInfo& info) {
  const ConvGeom g = convGeom(info, 3);
  const float* dy = floats(info, 0, "dy", static_cast<double>(g.n) * g.oh * g.ow * g.co);
  const float* f = floats(info, 1, "filter", static_cast<double>(g.fh) * g.fw * g.ci * g.co);
  float* dx = floats(info, 2, "dx", static_cast<double>(g.n) * g.h * g.w * g.ci);
  (Nchw ? conv2dNchwBackpropInput : conv2dBackpropInput)(g, dy, f, dx);
  return info.Env().Undefined();
}

template <bool Nchw>
Napi::Value Conv2dBackpropFilter(const Napi::CallbackInfo& info) {
  const ConvGeom g = convGeom(info, 3);
  const float* x = floats(info, 0, "x", static_cast<double>(g.n) * g.h * g.w * g.ci);
  const float* dy = floats(info, 1, "dy", static_cast<double>(g.n) * g.oh * g.ow * g.co);
  float* df = floats(info, 2, "dfilter", static_cast<double>(g.fh) * g.fw * g.ci * g.co);
  (Nchw ? conv2dNchwBackpropFilter : conv2dBackpropFilter)(g, x, dy, df);
  return info.Env().Undefined();
}

// An Int32Array used as `need` bytes (a tfjs int32 tensor holding four bytes an element).
uint8_t* packedBytes(const Napi::CallbackInfo& info, size_t i, const char* name, double need) {
  const Buf b = array(info, i, name);
  if (b.type != napi_int32_array) typeError(info.Env(), std::string(name) + " must be an Int32Array");
  if (static_cast<double>(b.length) * 4 < need)
    rangeError(info.Env(), std::string(name) + " holds " + std::to_string(b.length * 4) + " bytes, needs " +
                               std::to_string(static_cast<int64_t>(need)));
  return static_cast<uint8_t*>(b.data);
}

// Argument i as a filter layout: 'OIHW', or 'HWIO' / missing / undefined.
FilterLayout filterLayout(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return FilterLayout::HWIO;
  const std::string s = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (s == "HWIO") return FilterLayout::HWIO;
  if (s == "OIHW") return FilterLayout::OIHW;
  typeError(info.Env(), "layout must be 'HWIO' or 'OIHW'");
}

// conv2dNchwReluMaxPool(x, filter, y, at, geometry, bias?, layout?): y [n, co, oh / 2, ow / 2] and
// the windows' taps, one byte each in `at`; the filter HWIO (default) or OIHW.
Napi::Value Conv2dReluMaxPool(const Napi::CallbackInfo& info) {
  const ConvGeom g = convGeom(info, 4);
  const double pooled = static_cast<double>(g.n) * g.co * (g.oh / 2) * (g.ow / 2);
  const float* x = floats(info, 0, "x", static_cast<double>(g.n) * g.h * g.w * g.ci);
  const float* f = floats(info, 1, "filter", static_cast<double>(g.fh) * g.fw * g.ci * g.co);
  float* y = floats(info, 2, "y", pooled);
  uint8_t* at = packedBytes(info, 3, "at", pooled);
  const float* bias = floats(info, 5, "bias", static_cast<double>(g.co), true);
  conv2dNchwReluMaxPool(g, x, f, bias, y, at, filterLayout(info, 6));
  return info.Env().Undefined();
}

// conv2dNchwReluMaxPoolBackpropInput(dy, at, filter, dx, geometry, layout?) and
// conv2dNchwReluMaxPoolBackpropFilter(x, dy, at, dfilter, geometry, layout?): the convolution's
// gradients from the pooled dy [n, co, oh / 2, ow / 2] and the taps; filter and dfilter in `layout`.
Napi::Value Conv2dReluMaxPoolBackpropInput(const Napi::CallbackInfo& info) {
  const ConvGeom g = convGeom(info, 4);
  const double pooled = static_cast<double>(g.n) * g.co * (g.oh / 2) * (g.ow / 2);
  const float* dy = floats(info, 0, "dy", pooled);
  const uint8_t* at = packedBytes(info, 1, "at", pooled);
  const float* f = floats(info, 2, "filter", static_cast<double>(g.fh) * g.fw * g.ci * g.co);
  float* dx = floats(info, 3, "dx", static_cast<double>(g.n) * g.h * g.w * g.ci);
  conv2dNchwReluMaxPoolBackpropInput(g, dy, at, f, dx, filterLayout(info, 5));
  return info.Env().Undefined();
}

Napi::Value Conv2dReluMaxPoolBackpropFilter(const Napi::CallbackInfo& info) {
  const ConvGeom g = convGeom(info, 4);
  const double pooled = static_cast<double>(g.n) * g.co * (g.oh / 2) * (g.ow / 2);
  const float* x = floats(info, 0, "x", static_cast<double>(g.n) * g.h * g.w * g.ci);
  const float* dy = floats(info, 1, "dy", pooled);
  const uint8_t* at = packedBytes(info, 2, "at", pooled);
  float* df = floats(info, 3, "dfilter", static_cast<double>(g.fh) * g.fw * g.ci * g.co);
  conv2dNchwReluMaxPoolBackpropFilter(g, x, dy, at, df, filterLayout(info, 5));
  return info.Env().Undefined();
}

// reluMaxPoolBiasGrad(dy, at, out, dims [n, c, h, w]): the bias gradient, sum of the scattered dy
// over every axis but c (sum's values bit for bit).
Napi::Value ReluMaxPoolBiasGrad(const Napi::CallbackInfo& info) {
  const auto d = ints(info, 3, "dims", 4, 0);
  const double pooled = static_cast<double>(d[0]) * d[1] * (d[2] / 2) * (d[3] / 2);
  const float* dy = floats(info, 0, "dy", pooled);
  const uint8_t* at = packedBytes(info, 1, "at", pooled);
  float* out = floats(info, 2, "out", static_cast<double>(d[1]));
  reluMaxPoolBiasGrad(d[0], d[1], d[2], d[3], dy, at, out);
  return info.Env().Undefined();
}

// geometry [n, h, w, c, oh, ow, fh, fw, sh, sw, padTop, padLeft]
PoolGeom poolGeom(const Napi::CallbackInfo& info, size_t i) {
  const auto v = ints(info, i, "geometry", 12, 0);
  PoolGeom g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
  if (g.fh < 1 || g.fw < 1 || g.sh < 1 || g.sw < 1)
    rangeError(info.Env(), "geometry: filter size and strides must be >= 1");
  return g;
}

// pool(kind 'max' | 'avg', x, y, geometry)
Napi::Value Pool(const Napi::CallbackInfo& info) {
  const bool max = info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "max";
  const PoolGeom g = poolGeom(info, 3);
  const float* x = floats(info, 1, "x", static_cast<double>(g.n) * g.h * g.w * g.c);
  float* y = floats(info, 2, "y", static_cast<double>(g.n) * g.oh * g.ow * g.c);
  (max ? maxPool : avgPool)(g, x, y);
  return info.Env().Undefined();
}

// poolGrad(kind, x (max only; null for avg), dy, dx, geometry)
Napi::Value PoolGrad(const Napi::CallbackInfo& info) {
  const bool max = info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "max";
  const PoolGeom g = poolGeom(info, 4);
  const double image = static_cast<double>(g.n) * g.h * g.w * g.c;
  const float* dy = floats(info, 2, "dy", static_cast<double>(g.n) * g.oh * g.ow * g.c);
  float* dx = floats(info, 3, "dx", image);
  if (max) maxPoolGrad(g, floats(info, 1, "x", image), dy, dx);
  else avgPoolGrad(g, dy, dx);
  return info.Env().Undefined();
}

// transpose(x, y, shape Int32Array, perm Int32Array): 4-byte elements (float32, int32).
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf x = array(info, 0, "x"), y = array(info, 1, "y");
  const Buf shapeBuf = array(info, 2, "shape");
  const size_t rank = shapeBuf.length;
  if (rank > static_cast<size_t>(kMaxTransposeRank)) rangeError(env, "transpose: rank must be <= 8");
  const auto shape = ints(info, 2, "shape", rank, 0);
  const auto perm = ints(info, 3, "perm", rank, 0);
  std::vector<int32_t> p(rank);
  std::vector<bool> seen(rank, false);
  double size = 1;
  for (size_t d = 0; d < rank; ++d) {
    if (perm[d] >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(perm[d])])
      rangeError(env, "transpose: perm must be a permutation of [0, rank)");
    seen[static_cast<size_t>(perm[d])] = true;
    p[d] = static_cast<int32_t>(perm[d]);
    size *= static_cast<double>(shape[d]);
  }
  for (const Buf* b : {&x, &y}) {
    const bool fourBytes = b->type == napi_float32_array || b->type == napi_int32_array || b->type == napi_uint32_array;
    if (!fourBytes) typeError(env, "transpose: x and y must be Float32Array, Int32Array or Uint32Array");
    if (static_cast<double>(b->length) < size) rangeError(env, "transpose: x or y is shorter than the shape");
  }
  transpose(static_cast<const uint32_t*>(x.data), static_cast<uint32_t*>(y.data), static_cast<int>(rank),
            shape.data(), p.data());
  return env.Undefined();
}

int opIndex(const Napi::CallbackInfo& info, const char* what, std::initializer_list<const char*> names) {
  const std::string op = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  int i = 0;
  for (const char* n : names) {
    if (op == n) return i;
    ++i;
  }
  std::string all;
  for (const char* n : names) all += std::string(all.empty() ? "" : ", ") + n;
  typeError(info.Env(), std::string(what) + ": op must be one of " + all + ", got '" + op + "'");
}

// unary(op, x, y): y = op(x) element-wise (softplus, sigmoid, exp, log, sqrt).
Napi::Value UnaryOp(const Napi::CallbackInfo& info) {
  const int op = opIndex(info, "unary", {"softplus", "sigmoid", "exp", "log", "sqrt"});
  const Buf x = array(info, 1, "x");
  const float* xs = floats(info, 1, "x", 0);
  float* y = floats(info, 2, "y", static_cast<double>(x.length));
  unary(op, xs, y, static_cast<int64_t>(x.length));
  return info.Env().Undefined();
}

// binary(op, a, b, out): a and b of equal length, or either of length 1 (broadcast); out is a
// Float32Array (add, sub, mul, div, maximum, minimum, reluGrad) or a Uint8Array of 0/1 (the comparisons).
Napi::Value BinaryOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int op = opIndex(info, "binary",
                         {"add", "sub", "mul", "div", "maximum", "minimum", "reluGrad", "less", "lessEqual", "greater",
                          "greaterEqual"});
  const Buf a = array(info, 1, "a"), b = array(info, 2, "b"), out = array(info, 3, "out");
  if (a.type != napi_float32_array || b.type != napi_float32_array) typeError(env, "binary: a and b must be Float32Array");
  const size_t n = a.length > b.length ? a.length : b.length;
  if ((a.length != n && a.length != 1) || (b.length != n && b.length != 1))
    rangeError(env, "binary: a and b must have equal lengths or one of them 1");
  const bool compare = op >= BIN_LESS;
  if (out.type != (compare ? napi_uint8_array : napi_float32_array))
    typeError(env, compare ? "binary: out must be a Uint8Array" : "binary: out must be a Float32Array");
  if (out.length < n) rangeError(env, "binary: out is too short");
  binary(op, static_cast<const float*>(a.data), a.length == 1 ? 0 : 1, static_cast<const float*>(b.data),
         b.length == 1 ? 0 : 1, out.data, static_cast<int64_t>(n));
  return env.Undefined();
}

// sum(x, out, dims [outer, kept, inner]): out[k] = sum of x[o, k, i] over o and i.
Napi::Value SumOp(const Napi::CallbackInfo& info) {
  const auto d = ints(info, 2, "dims", 3, 0);
  const float* x = floats(info, 0, "x", static_cast<double>(d[0]) * d[1] * d[2]);
  float* out = floats(info, 1, "out", static_cast<double>(d[1]));
  sumOuterInner(x, d[0], d[1], d[2], out);
  return info.Env().Undefined();
}

// locScaleSample(mu, rho, eps, w) and locScaleSampleGrad(dw, rho, eps, drho): Float32Arrays, the
// output at least as long as the first input, the others too.
template <bool Grad>
Napi::Value LocScaleOp(const Napi::CallbackInfo& info) {
  const Buf first = array(info, 0, Grad ? "dw" : "mu");
  const double n = static_cast<double>(first.length);
  const float* a = floats(info, 0, Grad ? "dw" : "mu", n);
  const float* rho = floats(info, 1, "rho", n);
  const float* eps = floats(info, 2, "eps", n);
  float* out = floats(info, 3, Grad ? "drho" : "w", n);
  (Grad ? locScaleSampleGrad : locScaleSample)(a, rho, eps, out, static_cast<int64_t>(first.length));
  return info.Env().Undefined();
}

// gather(x, indices, out, row): out[i] = x row indices[i], rows of `row` values, x and out
// Float32Array or Int32Array alike; returns false when an index is out of range.
Napi::Value GatherOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf x = array(info, 0, "x"), idx = array(info, 1, "indices"), out = array(info, 2, "out");
  if (!info[3].IsNumber()) typeError(env, "gather: row must be a number");
  const int64_t row = info[3].As<Napi::Number>().Int64Value();
  const bool word = [](napi_typedarray_type t) { return t == napi_float32_array || t == napi_int32_array; }(x.type);
  if (!word || out.type != x.type) typeError(env, "gather: x and out must be both Float32Array or both Int32Array");
  if (idx.type != napi_int32_array) typeError(env, "gather: indices must be an Int32Array");
  if (row < 1 || x.length % static_cast<size_t>(row) != 0)
    rangeError(env, "gather: row must be >= 1 and divide x's length");
  if (out.length < idx.length * static_cast<size_t>(row)) rangeError(env, "gather: out is too short");
  const bool ok = gatherRows(static_cast<const uint32_t*>(x.data), static_cast<int64_t>(x.length) / row, row,
                             static_cast<const int32_t*>(idx.data), static_cast<int64_t>(idx.length),
                             static_cast<uint32_t*>(out.data));
  return Napi::Boolean::New(env, ok);
}

// select(cond Uint8Array, t, e, out): out = cond ? t : e, all of one length.
Napi::Value SelectOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf c = array(info, 0, "cond");
  if (c.type != napi_uint8_array) typeError(env, "select: cond must be a Uint8Array");
  const double n = static_cast<double>(c.length);
  const float* t = floats(info, 1, "t", n);
  const float* e = floats(info, 2, "e", n);
  float* out = floats(info, 3, "out", n);
  select(static_cast<const uint8_t*>(c.data), t, e, out, static_cast<int64_t>(c.length));
  return env.Undefined();
}

// A uint32 number argument (a Philox key word).
uint32_t u32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  const double v = i < info.Length() && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= 0 && v <= 4294967295.0 && v == static_cast<double>(static_cast<uint64_t>(v))))
    rangeError(info.Env(), std::string(name) + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(v);
}

// The arguments (k0, k1, firstBlock, out Float32Array) of a fill from the Philox stream.
struct StreamFill {
  uint32_t k0, k1;
  uint64_t first;
  float* out;
  int64_t count;
};
StreamFill streamFill(const Napi::CallbackInfo& info, const std::string& name) {
  Napi::Env env = info.Env();
  const uint32_t k0 = u32(info, 0, (name + ": k0").c_str());
  const uint32_t k1 = u32(info, 1, (name + ": k1").c_str());
  const double first = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
  if (!(first >= 0 && first <= 9007199254740991.0 && first == std::floor(first)))
    rangeError(env, name + ": firstBlock must be a non-negative safe integer");
  const Buf out = array(info, 3, (name + ": out").c_str());
  if (out.type != napi_float32_array) typeError(env, name + ": out must be a Float32Array");
  return {k0, k1, static_cast<uint64_t>(first), static_cast<float*>(out.data), static_cast<int64_t>(out.length)};
}

// normal(k0, k1, firstBlock, out): out.length standard normals of the stream with key (k0, k1)
// from block firstBlock (a safe integer), equal to @qbnn/core's normalsFromWords.
Napi::Value Normal(const Napi::CallbackInfo& info) {
  const StreamFill f = streamFill(info, "normal");
  normalFill(f.k0, f.k1, f.first, f.out, f.count);
  return info.Env().Undefined();
}

// normalLocScale(k0, k1, firstBlock, w, mu, sigma): w = mu + sigma * the normals normal() writes,
// mu and sigma Float32Arrays at least as long as w.
Napi::Value NormalLocScaleOp(const Napi::CallbackInfo& info) {
  const StreamFill f = streamFill(info, "normalLocScale");
  const double n = static_cast<double>(f.count);
  const float* mu = floats(info, 4, "mu", n);
  const float* sigma = floats(info, 5, "sigma", n);
  normalLocScale(f.k0, f.k1, f.first, mu, sigma, f.out, f.count);
  return info.Env().Undefined();
}

// setNormalFastMode(mode): tests of the normals' checked short evaluation (normal.h).
Napi::Value SetNormalFastMode(const Napi::CallbackInfo& info) {
  const double m = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(m == 0 || m == 1 || m == 2)) rangeError(info.Env(), "setNormalFastMode: mode must be 0, 1 or 2");
  setNormalFastMode(static_cast<int>(m));
  return info.Env().Undefined();
}

// normalsFromWords(words Uint32Array, out Float32Array) -> bool: tests of the AVX-512 body on
// chosen words (out.length == words.length, a multiple of 64); false where it is not compiled in.
Napi::Value NormalsFromWords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf words = array(info, 0, "words"), out = array(info, 1, "out");
  if (words.type != napi_uint32_array || out.type != napi_float32_array)
    typeError(env, "normalsFromWords: words must be a Uint32Array and out a Float32Array");
  if (out.length != words.length || words.length % 64 != 0)
    rangeError(env, "normalsFromWords: out and words must have one length, a multiple of 64");
  if (!usingAvx512()) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, normalsFromWordsAvx512(static_cast<const uint32_t*>(words.data),
                                                        static_cast<int64_t>(words.length / 4),
                                                        static_cast<float*>(out.data)));
}

// uniform(k0, k1, firstBlock, out): out.length uniforms of that stream, equal to Rng.uniform's.
Napi::Value Uniform(const Napi::CallbackInfo& info) {
  const StreamFill f = streamFill(info, "uniform");
  uniformFill(f.k0, f.k1, f.first, f.out, f.count);
  return info.Env().Undefined();
}

// Argument i: an Adam step's Float64Array [lr, beta1, beta2, epsilon, c1, c2], finite, c1, c2 > 0.
AdamStep adamStep(const Napi::CallbackInfo& info, size_t i, const std::string& fn) {
  Napi::Env env = info.Env();
  const Buf a = array(info, i, (fn + ": attrs").c_str());
  if (a.type != napi_float64_array || a.length != 6) typeError(env, fn + ": attrs must be a Float64Array of 6 values");
  const double* x = static_cast<const double*>(a.data);
  for (int k = 0; k < 6; ++k)
    if (!std::isfinite(x[k])) rangeError(env, fn + ": attrs must be finite");
  if (!(x[4] > 0 && x[5] > 0)) rangeError(env, fn + ": the bias corrections must be > 0");
  return AdamStep{x[0], x[1], x[2], x[3], x[4], x[5]};
}

// adam(p, m, v, g, outP, outM, outV, attrs Float64Array [lr, beta1, beta2, epsilon, c1, c2]):
// one Adam step, all Float32Arrays of p's length.
Napi::Value Adam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf pb = array(info, 0, "adam: p");
  const double n = static_cast<double>(pb.length);
  const float* p = floats(info, 0, "adam: p", n);
  const float* m = floats(info, 1, "adam: m", n);
  const float* v = floats(info, 2, "adam: v", n);
  const float* g = floats(info, 3, "adam: g", n);
  float* outP = floats(info, 4, "adam: outP", n);
  float* outM = floats(info, 5, "adam: outM", n);
  float* outV = floats(info, 6, "adam: outV", n);
  adamUpdate(p, m, v, g, outP, outM, outV, static_cast<int64_t>(pb.length), adamStep(info, 7, "adam"));
  return env.Undefined();
}

// adamMany(p[], m[], v[], g[], outP[], attrs): adam of every tensor k (arrays of Float32Arrays, each
// tensor's five of one length): m[k], v[k] rewritten in place from g[k], the new parameter in
// outP[k], in one call.
Napi::Value AdamMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* names[5] = {"adamMany: p", "adamMany: m", "adamMany: v", "adamMany: g", "adamMany: outP"};
  std::vector<Napi::Array> lists;
  for (size_t i = 0; i < 5; ++i) {
    if (i >= info.Length() || !info[i].IsArray()) typeError(env, std::string(names[i]) + " must be an array");
    lists.push_back(info[i].As<Napi::Array>());
  }
  const uint32_t count = lists[0].Length();
  for (const auto& l : lists)
    if (l.Length() != count) rangeError(env, "adamMany: p, m, v, g and outP must list as many tensors");
  const AdamStep step = adamStep(info, 5, "adamMany");
  std::vector<AdamTensor> tensors(count);
  for (uint32_t k = 0; k < count; ++k) {
    float* ptr[5];
    size_t n = 0;
    for (size_t i = 0; i < 5; ++i) {
      const Napi::Value e = lists[i].Get(k);
      if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        typeError(env, std::string(names[i]) + "[" + std::to_string(k) + "] must be a Float32Array");
      Napi::Float32Array f = e.As<Napi::Float32Array>();
      if (i == 0) n = f.ElementLength();
      if (f.ElementLength() != n)
        rangeError(env, std::string(names[i]) + "[" + std::to_string(k) + "] holds " +
                            std::to_string(f.ElementLength()) + " floats, p[k] " + std::to_string(n));
      if (n > 0 && f.Data() == nullptr) typeError(env, std::string(names[i]) + " is detached");
      ptr[i] = f.Data();
    }
    tensors[k] = AdamTensor{ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], static_cast<int64_t>(n)};
  }
  adamUpdateMany(tensors.data(), count, step);
  return env.Undefined();
}

// The inputs shared by the Gaussian KL kernels: mu, rho (Float32Arrays of one length) and the
// prior, a Float64Array [m0, s0] with s0 > 0.
struct KlArgs {
  const float* mu;
  const float* rho;
  int64_t n;
  double m0, s0;
};

KlArgs klArgs(const Napi::CallbackInfo& info, const std::string& fn) {
  const Buf mb = array(info, 0, (fn + ": mu").c_str());
  const double n = static_cast<double>(mb.length);
  KlArgs k{floats(info, 0, (fn + ": mu").c_str(), n), floats(info, 1, (fn + ": rho").c_str(), n),
           static_cast<int64_t>(mb.length), 0, 0};
  const Buf a = array(info, 2, (fn + ": prior").c_str());
  if (a.type != napi_float64_array || a.length != 2) typeError(info.Env(), fn + ": prior must be a Float64Array [mean, sigma]");
  k.m0 = static_cast<const double*>(a.data)[0];
  k.s0 = static_cast<const double*>(a.data)[1];
  if (!std::isfinite(k.m0) || !(k.s0 > 0 && std::isfinite(k.s0)))
    rangeError(info.Env(), fn + ": the prior mean must be finite and sigma finite and > 0");
  return k;
}

// gaussianKl(mu, rho, prior) -> the summed KL (a number).
Napi::Value GaussianKl(const Napi::CallbackInfo& info) {
  const KlArgs k = klArgs(info, "gaussianKl");
  return Napi::Number::New(info.Env(), gaussianKlSum(k.mu, k.rho, k.n, k.m0, k.s0));
}

// gaussianKlGrad(mu, rho, prior, dy, dMu, dRho): dy times the KL's gradient.
Napi::Value GaussianKlGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const KlArgs k = klArgs(info, "gaussianKlGrad");
  const double dy = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(dy)) rangeError(env, "gaussianKlGrad: dy must be a finite number");
  float* dMu = floats(info, 4, "gaussianKlGrad: dMu", static_cast<double>(k.n));
  float* dRho = floats(info, 5, "gaussianKlGrad: dRho", static_cast<double>(k.n));
  gaussianKlGrad(k.mu, k.rho, k.n, k.m0, k.s0, dy, dMu, dRho);
  return env.Undefined();
}

// gaussianSampleKl(mu, rho, prior, eps, w) -> the summed KL; writes the sample w = mu + sigma eps.
Napi::Value GaussianSampleKl(const Napi::CallbackInfo& info) {
  const KlArgs k = klArgs(info, "gaussianSampleKl");
  const double n = static_cast<double>(k.n);
  const float* eps = floats(info, 3, "gaussianSampleKl: eps", n);
  float* w = floats(info, 4, "gaussianSampleKl: w", n);
  return Napi::Number::New(info.Env(), gaussianSampleKl(k.mu, k.rho, eps, w, k.n, k.m0, k.s0));
}

// gaussianSampleKlGrad(mu, rho, prior, eps, dw, dkl, dMu, dRho): the sample's gradient from dw plus
// dkl times the KL's.
Napi::Value GaussianSampleKlGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const KlArgs k = klArgs(info, "gaussianSampleKlGrad");
  const double n = static_cast<double>(k.n);
  const float* eps = floats(info, 3, "gaussianSampleKlGrad: eps", n);
  const float* dw = floats(info, 4, "gaussianSampleKlGrad: dw", n);
  const double dkl = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(dkl)) rangeError(env, "gaussianSampleKlGrad: dkl must be a finite number");
  float* dMu = floats(info, 6, "gaussianSampleKlGrad: dMu", n);
  float* dRho = floats(info, 7, "gaussianSampleKlGrad: dRho", n);
  gaussianSampleKlGrad(k.mu, k.rho, eps, dw, k.n, k.m0, k.s0, dkl, dMu, dRho);
  return env.Undefined();
}

// dropout(x, maskSize, key Uint32Array [k0, k1], firstBlock, p, out): out = x * the mask of
// maskSize elements (repeated over x's rows) from the Philox stream, as @qbnn/core's dropoutApply.
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf xb = array(info, 0, "dropout: x");
  const double n = static_cast<double>(xb.length);
  const float* x = floats(info, 0, "dropout: x", n);
  const double maskSize = numberArg(info, 1), firstBlock = numberArg(info, 3), p = numberArg(info, 4);
  if (!(maskSize >= 1 && maskSize == std::floor(maskSize) && std::fmod(n, maskSize) == 0))
    rangeError(env, "dropout: maskSize must be an integer >= 1 dividing x's length");
  const Buf kb = array(info, 2, "dropout: key");
  if (kb.type != napi_uint32_array || kb.length != 2) typeError(env, "dropout: key must be a Uint32Array [k0, k1]");
  if (!(firstBlock >= 0 && firstBlock <= 9007199254740991.0 && firstBlock == std::floor(firstBlock)))
    rangeError(env, "dropout: firstBlock must be a non-negative safe integer");
  if (!(p >= 0 && p < 1)) rangeError(env, "dropout: p must be in [0, 1)");
  float* out = floats(info, 5, "dropout: out", n);
  const uint32_t* k = static_cast<const uint32_t*>(kb.data);
  dropoutApply(k[0], k[1], static_cast<uint64_t>(firstBlock), p, static_cast<float>(1 / (1 - p)), x,
               static_cast<int64_t>(n), static_cast<int64_t>(maskSize), out);
  return env.Undefined();
}

// squaredDistance(x, center) -> sum((x - center)^2) (a number, float64 sums).
Napi::Value SquaredDistance(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf b = array(info, 0, "squaredDistance: x");
  const float* x = floats(info, 0, "squaredDistance: x", static_cast<double>(b.length));
  const double c = numberArg(info, 1);
  if (!std::isfinite(c)) rangeError(env, "squaredDistance: center must be a finite number");
  return Napi::Number::New(env, squaredDistanceSum(x, static_cast<int64_t>(b.length), c));
}

// squaredDistanceGrad(x, center, k, dx): dx = k (x - center).
Napi::Value SquaredDistanceGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Buf b = array(info, 0, "squaredDistanceGrad: x");
  const double n = static_cast<double>(b.length);
  const float* x = floats(info, 0, "squaredDistanceGrad: x", n);
  const double c = numberArg(info, 1), k = numberArg(info, 2);
  if (!std::isfinite(c) || !std::isfinite(k)) rangeError(env, "squaredDistanceGrad: center and k must be finite numbers");
  squaredDistanceGrad(x, static_cast<int64_t>(b.length), c, k, floats(info, 3, "squaredDistanceGrad: dx", n));
  return env.Undefined();
}

// normalCoefficients() -> { log, sin, cos } Float64Arrays: the polynomials normal() evaluates.
Napi::Value NormalCoefficientsOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NormalCoefficients& c = normalCoefficients();
  auto o = Napi::Object::New(env);
  auto put = [&](const char* name, const double* v, size_t n) {
    auto a = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; ++i) a[i] = v[i];
    o.Set(name, a);
  };
  put("log", c.log, NormalCoefficients::kLogTerms);
  put("sin", c.sin, NormalCoefficients::kTrigTerms);
  put("cos", c.cos, NormalCoefficients::kTrigTerms);
  return o;
}

// peak(iters) -> GFLOPS of zmm FMA on the calling thread (CPU time), or null without AVX-512.
Napi::Value Peak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double iters = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 5e7;
  if (!(iters >= 1 && iters <= 1e10)) rangeError(env, "peak: iters must be in [1, 1e10]");
  if (!usingAvx512()) return env.Null();
  timespec t0{}, t1{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  const double flops = fmaPeakFlops(static_cast<int64_t>(iters));
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  const double s = static_cast<double>(t1.tv_sec - t0.tv_sec) + static_cast<double>(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  return Napi::Number::New(env, flops / s / 1e9);
}

// setPortable(bool): tests run the portable microkernel beside the AVX-512 one.
Napi::Value SetPortable(const Napi::CallbackInfo& info) {
  forcePortable(info.Length() > 0 && info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), usingAvx512());
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("avx512", Napi::Boolean::New(env, usingAvx512()));
  o.Set("mr", Napi::Number::New(env, kMr));
  o.Set("nr", Napi::Number::New(env, kNr));
  return o;
}

}  // namespace

Napi::Object makeExports(Napi::Env env) {
  auto o = Napi::Object::New(env);
  o.Set("matmul", Napi::Function::New(env, MatMul));
  o.Set("conv2d", Napi::Function::New(env, Conv2d<false>));
  o.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2dBackpropInput<false>));
  o.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2dBackpropFilter<false>));
  o.Set("conv2dNchw", Napi::Function::New(env, Conv2d<true>));
  o.Set("conv2dNchwBackpropInput", Napi::Function::New(env, Conv2dBackpropInput<true>));
  o.Set("conv2dNchwBackpropFilter", Napi::Function::New(env, Conv2dBackpropFilter<true>));
  o.Set("conv2dNchwReluMaxPool", Napi::Function::New(env, Conv2dReluMaxPool));
  o.Set("conv2dNchwReluMaxPoolBackpropInput", Napi::Function::New(env, Conv2dReluMaxPoolBackpropInput));
  o.Set("conv2dNchwReluMaxPoolBackpropFilter", Napi::Function::New(env, Conv2dReluMaxPoolBackpropFilter));
  o.Set("reluMaxPoolBiasGrad", Napi::Function::New(env, ReluMaxPoolBiasGrad));
  o.Set("pool", Napi::Function::New(env, Pool));
  o.Set("poolGrad", Napi::Function::New(env, PoolGrad));
  o.Set("transpose", Napi::Function::New(env, Transpose));
  o.Set("unary", Napi::Function::New(env, UnaryOp));
  o.Set("binary", Napi::Function::New(env, BinaryOp));
  o.Set("select", Napi::Function::New(env, SelectOp));
  o.Set("sum", Napi::Function::New(env, SumOp));
  o.Set("gather", Napi::Function::New(env, GatherOp));
  o.Set("locScaleSample", Napi::Function::New(env, LocScaleOp<false>));
  o.Set("locScaleSampleGrad", Napi::Function::New(env, LocScaleOp<true>));
  o.Set("normal", Napi::Function::New(env, Normal));
  o.Set("normalLocScale", Napi::Function::New(env, NormalLocScaleOp));
  o.Set("setNormalFastMode", Napi::Function::New(env, SetNormalFastMode));
  o.Set("normalsFromWords", Napi::Function::New(env, NormalsFromWords));
  o.Set("uniform", Napi::Function::New(env, Uniform));
  o.Set("adam", Napi::Function::New(env, Adam));
  o.Set("adamMany", Napi::Function::New(env, AdamMany));
  o.Set("gaussianKl", Napi::Function::New(env, GaussianKl));
  o.Set("gaussianKlGrad", Napi::Function::New(env, GaussianKlGrad));
  o.Set("gaussianSampleKl", Napi::Function::New(env, GaussianSampleKl));
  o.Set("gaussianSampleKlGrad", Napi::Function::New(env, GaussianSampleKlGrad));
  o.Set("dropout", Napi::Function::New(env, Dropout));
  o.Set("squaredDistance", Napi::Function::New(env, SquaredDistance));
  o.Set("squaredDistanceGrad", Napi::Function::New(env, SquaredDistanceGrad));
  o.Set("normalCoefficients", Napi::Function::New(env, NormalCoefficientsOf));
  o.Set("setPortable", Napi::Function::New(env, SetPortable));
  o.Set("peak", Napi::Function::New(env, Peak));
  o.Set("info", Napi::Function::New(env, Info));
  return o;
}

}  // namespace fp32
}  // namespace qbnn
