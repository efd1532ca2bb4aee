// Permutation of a tensor of 4-byte elements (tfjs Transpose: y.shape[d] = x.shape[perm[d]]).
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

constexpr int kMaxTransposeRank = 8;

// Requires rank <= kMaxTransposeRank and perm a permutation of [0, rank).
void transpose(const uint32_t* x, uint32_t* y, int rank, const int64_t* shape, const int32_t* perm);

}  // namespace fp32
}  // namespace qbnn
