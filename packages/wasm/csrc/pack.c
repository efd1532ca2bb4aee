// Packing s8 weights [n, k] into the panel layout of common.h, with their row sums.
#include "common.h"

void pack_weights(const int8_t* w, int32_t n, int32_t k, int8_t* packed, int32_t* row_sums) {
  const int32_t kg = k_groups(k);
  const int32_t np = panels(n);
  const int32_t panel_bytes = kg * PANEL * 4;
  for (int32_t c = 0; c < np * PANEL; c++) {
    int8_t* dst = packed + (c / PANEL) * panel_bytes + (c % PANEL) * 4;
    if (c >= n) {
      for (int32_t g = 0; g < kg; g++) *(int32_t*)(dst + g * PANEL * 4) = 0;
      continue;
    }
    const int8_t* src = w + c * k;
    int32_t sum = 0;
    for (int32_t g = 0; g < kg; g++) {
      int8_t* d = dst + g * PANEL * 4;
      for (int32_t kk = 0; kk < 4; kk++) {
        const int32_t i = 4 * g + kk;
        const int8_t v = i < k ? src[i] : 0;
        d[kk] = v;
        sum += v;
      }
    }
    row_sums[c] = sum;
  }
}

// packed: panels(n) * k_groups(k) * PANEL * 4 bytes; row_sums: n int32.
EXPORT("qbnn_pack")
void qbnn_pack(const int8_t* w, int32_t n, int32_t k, int8_t* packed, int32_t* row_sums) {
  pack_weights(w, n, k, packed, row_sums);
}

EXPORT("qbnn_panel") int32_t qbnn_panel(void) { return PANEL; }
