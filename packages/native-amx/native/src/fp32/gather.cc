// See gather.h.
#include "gather.h"

#include <cstring>

#include "parallel.h"

namespace qbnn {
namespace fp32 {

bool gatherRows(const uint32_t* x, int64_t rows, int64_t row, const int32_t* indices, int64_t count, uint32_t* y) {
  for (int64_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= rows) return false;
  forRows(count, static_cast<double>(row) * 8, [&](int64_t i) {
    std::memcpy(y + i * row, x + static_cast<int64_t>(indices[i]) * row, sizeof(uint32_t) * row);
  });
  return true;
}

}  // namespace fp32
}  // namespace qbnn
