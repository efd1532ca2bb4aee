// Element-wise kernels (see elementwise.h): plain loops the compiler vectorises, split into
// chunks of 16k elements over the thread pool.
#include "elementwise.h"

#include <algorithm>
#include <cmath>

#include "parallel.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr int64_t kChunk = 1 << 14;

template <typename Fn>
void chunks(int64_t n, Fn&& fn) {
  parallel((n + kChunk - 1) / kChunk, static_cast<double>(n) * 2, [&](int64_t t) {
    const int64_t i0 = t * kChunk;
    fn(i0, std::min(n, i0 + kChunk));
  });
}

// The loop with constant strides (1: a tensor, 0: a broadcast scalar), so that it vectorises.
// (Local __restrict copies: the addon builds with -fno-strict-aliasing, under which a store
// through `out` could change the captured pointers, and the loop would not vectorise.)
template <int SA, int SB, typename T, typename Op>
void loop(const float* a, const float* b, T* out, int64_t n, Op op) {
  chunks(n, [a, b, out, op](int64_t i0, int64_t i1) {
    const float* __restrict pa = a;
    const float* __restrict pb = b;
    T* __restrict po = out;
    for (int64_t i = i0; i < i1; ++i) po[i] = static_cast<T>(op(pa[i * SA], pb[i * SB]));
  });
}

template <typename T, typename Op>
void strided(const float* a, int64_t sa, const float* b, int64_t sb, T* out, int64_t n, Op op) {
  if (sa != 0 && sb != 0) return loop<1, 1>(a, b, out, n, op);
  if (sa == 0 && sb != 0) return loop<0, 1>(a, b, out, n, op);
  if (sa != 0) return loop<1, 0>(a, b, out, n, op);
  return loop<0, 0>(a, b, out, n, op);
}

template <typename Op>
void floatOp(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n, Op op) {
  strided<float>(a, sa, b, sb, out, n, op);
}

template <typename Op>
void compareOp(const float* a, int64_t sa, const float* b, int64_t sb, uint8_t* out, int64_t n, Op op) {
  strided<uint8_t>(a, sa, b, sb, out, n, op);
}

}  // namespace

void binary(int op, const float* a, int64_t sa, const float* b, int64_t sb, void* out, int64_t n) {
  float* f = static_cast<float*>(out);
  uint8_t* u = static_cast<uint8_t*>(out);
  switch (op) {
    case BIN_ADD: return floatOp(a, sa, b, sb, f, n, [](float x, float y) { return x + y; });
    case BIN_SUB: return floatOp(a, sa, b, sb, f, n, [](float x, float y) { return x - y; });
    case BIN_MUL: return floatOp(a, sa, b, sb, f, n, [](float x, float y) { return x * y; });
    case BIN_DIV: return floatOp(a, sa, b, sb, f, n, [](float x, float y) { return x / y; });
    case BIN_MAXIMUM:
      return floatOp(a, sa, b, sb, f, n, [](float x, float y) { return (x != x || y != y) ? x + y : ((x > y || (x == y && !std::signbit(x))) ? x : y); });
    case BIN_MINIMUM:
      return floatOp(a, sa, b, sb, f, n, [](float x, float y) { return (x != x || y != y) ? x + y : ((x < y || (x == y && std::signbit(x))) ? x : y); });
    case BIN_RELU_GRAD:
      // tfjs: mul(dy, cast(step(x))), step(NaN) = NaN: the same product, one pass
      return floatOp(a, sa, b, sb, f, n, [](float d, float x) {
        const float step = x > 0.f ? 1.f : 0.f;  // two selects (vectorised), not branches
        return d * (x == x ? step : x);
      });
    case BIN_LESS: return compareOp(a, sa, b, sb, u, n, [](float x, float y) { return x < y; });
    case BIN_LESS_EQUAL: return compareOp(a, sa, b, sb, u, n, [](float x, float y) { return x <= y; });
    case BIN_GREATER: return compareOp(a, sa, b, sb, u, n, [](float x, float y) { return x > y; });
    default: return compareOp(a, sa, b, sb, u, n, [](float x, float y) { return x >= y; });
  }
}

void select(const uint8_t* cond, const float* t, const float* e, float* out, int64_t n) {
  chunks(n, [cond, t, e, out](int64_t i0, int64_t i1) {
    const uint8_t* __restrict pc = cond;
    const float* __restrict pt = t;
    const float* __restrict pe = e;
    float* __restrict po = out;
    for (int64_t i = i0; i < i1; ++i) po[i] = pc[i] ? pt[i] : pe[i];
  });
}

}  // namespace fp32
}  // namespace qbnn
