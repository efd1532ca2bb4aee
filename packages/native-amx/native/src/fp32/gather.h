// Row gather (tfjs GatherV2 along axis 0): what a training loop runs to cut a batch out of the
// dataset every step.
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

// y[i] = x[indices[i]] for rows of `row` 4-byte values, i < count; false (nothing written) when an
// index is outside [0, rows).
bool gatherRows(const uint32_t* x, int64_t rows, int64_t row, const int32_t* indices, int64_t count, uint32_t* y);

}  // namespace fp32
}  // namespace qbnn
