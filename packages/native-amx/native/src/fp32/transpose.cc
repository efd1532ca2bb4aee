// Transpose: size-1 axes are dropped and axes that stay adjacent are merged first, so that e.g.
// NCHW -> NHWC with one channel is a plain copy; then rows of the output are gathered in tasks.
#include "transpose.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"

namespace qbnn {
namespace fp32 {

void transpose(const uint32_t* x, uint32_t* y, int rank, const int64_t* shape, const int32_t* perm) {
  // Input axes kept (size > 1), renumbered.
  int64_t size = 1;
  for (int d = 0; d < rank; ++d) size *= shape[d];
  if (size == 0) return;
  int newIndex[kMaxTransposeRank];
  int kept = 0;
  for (int d = 0; d < rank; ++d) newIndex[d] = shape[d] > 1 ? kept++ : -1;
  int64_t dims[kMaxTransposeRank];
  int p[kMaxTransposeRank];
  int r = 0;
  for (int d = 0; d < rank; ++d) {
    const int a = perm[d];
    if (shape[a] <= 1) continue;
    p[r++] = newIndex[a];
  }
  for (int d = 0; d < rank; ++d)
    if (shape[d] > 1) dims[newIndex[d]] = shape[d];
  // Merge output axes d, d + 1 when they are input axes a, a + 1.
  int64_t mdims[kMaxTransposeRank];  // merged input dims, by merged input axis
  int mp[kMaxTransposeRank];         // merged perm
  int groupOf[kMaxTransposeRank];    // input axis -> start of its output run
  int runs = 0;
  int runStart[kMaxTransposeRank];
  for (int d = 0; d < r; ++d) {
    if (d > 0 && p[d] == p[d - 1] + 1) continue;
    runStart[runs++] = d;
  }
  // Each run is one merged axis; its input position is the rank of its first input axis.
  int64_t runSize[kMaxTransposeRank];
  int runFirst[kMaxTransposeRank];
  for (int q = 0; q < runs; ++q) {
    const int end = q + 1 < runs ? runStart[q + 1] : r;
    runFirst[q] = p[runStart[q]];
    runSize[q] = 1;
    for (int d = runStart[q]; d < end; ++d) runSize[q] *= dims[p[d]];
  }
  for (int q = 0; q < runs; ++q) {
    int order = 0;
    for (int s = 0; s < runs; ++s)
      if (runFirst[s] < runFirst[q]) ++order;
    groupOf[q] = order;
    mdims[order] = runSize[q];
  }
  for (int q = 0; q < runs; ++q) mp[q] = groupOf[q];
  if (runs <= 1) {
    std::memcpy(y, x, sizeof(uint32_t) * static_cast<size_t>(size));
    return;
  }
  int64_t inStride[kMaxTransposeRank];
  inStride[runs - 1] = 1;
  for (int a = runs - 2; a >= 0; --a) inStride[a] = inStride[a + 1] * mdims[a + 1];
  int64_t outDims[kMaxTransposeRank], stride[kMaxTransposeRank];
  for (int d = 0; d < runs; ++d) {
    outDims[d] = mdims[mp[d]];
    stride[d] = inStride[mp[d]];
  }
  // [outer..., A, B] -> [outer..., B, A] (NCHW <-> NHWC, matrix transposes): 32 x 32 tiles.
  bool swapLast = mp[runs - 1] == runs - 2 && mp[runs - 2] == runs - 1;
  for (int d = 0; d + 2 < runs && swapLast; ++d) swapLast = mp[d] == d;
  if (swapLast) {
    const int64_t rowsA = mdims[runs - 2], colsB = mdims[runs - 1];
    const int64_t outer = size / (rowsA * colsB);
    const int64_t tilesA = (rowsA + 31) / 32;
    parallel(outer * tilesA, static_cast<double>(size) * 8, [&](int64_t t) {
      const int64_t o = t / tilesA, a0 = (t % tilesA) * 32, a1 = std::min(rowsA, a0 + 32);
      // Locals: under -fno-strict-aliasing the stores could otherwise alias the captured sizes.
      const int64_t ra = rowsA, cb = colsB;
      const uint32_t* __restrict in = x + o * ra * cb;
      uint32_t* __restrict out = y + o * ra * cb;
      for (int64_t b0 = 0; b0 < cb; b0 += 32) {
        const int64_t b1 = std::min(cb, b0 + 32);
        for (int64_t b = b0; b < b1; ++b)
          for (int64_t a = a0; a < a1; ++a) out[b * ra + a] = in[a * cb + b];
      }
    });
    return;
  }
  const int64_t inner = outDims[runs - 1];
  const int64_t innerStride = stride[runs - 1];
  const int64_t rows = size / inner;
  forRows(rows, static_cast<double>(inner) * 8, [&](int64_t row) {
    int64_t rest = row, src = 0;
    for (int d = runs - 2; d >= 0; --d) {
      src += (rest % outDims[d]) * stride[d];
      rest /= outDims[d];
    }
    uint32_t* __restrict out = y + row * inner;
    const uint32_t* __restrict in = x + src;
    const int64_t len = inner, step = innerStride;
    for (int64_t k = 0; k < len; ++k) out[k] = in[k * step];
  });
}

}  // namespace fp32
}  // namespace qbnn
