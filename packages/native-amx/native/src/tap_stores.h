// Stores of 16 channels' weight dwords into a direct convolution's tap order (common.h's
// TapOrder). Included by AVX-512 translation units only (it uses zmm masked stores).
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "common.h"

namespace qbnn {

// Where 16 channels' dwords of one source go: per channel block overlapping the 16 (at most
// 16 / 1 blocks), the lanes it takes and the address of lane 0's dword for source 0 (source s:
// + s * its channels). Lane L (channel ch0 + L) lands at (ch0 + L - blkStart): the base may
// precede the block's weights but not o.wt (blkWt >= blkStart); masked lanes are not written.
// `live`: the lanes (channels) to write at all.
struct TapStores {
  int n = 0;
  __mmask16 take[16];
  int32_t* base[16];
  int32_t stride[16];
  TapStores(const TapOrder& o, int32_t ch0, int32_t ch1, __mmask16 live = 0xffff) {
    int32_t b0 = 0;
    while (o.blkStart[b0] + o.blkNoc[b0] <= ch0) ++b0;
    for (int32_t bi = b0; bi < o.nblk && o.blkStart[bi] < ch1; ++bi, ++n) {
      const int32_t lo = std::max(o.blkStart[bi], ch0), hi = std::min(o.blkStart[bi] + o.blkNoc[bi], ch1);
      take[n] = static_cast<__mmask16>((((1u << (hi - lo)) - 1u) << (lo - ch0)) & live);
      base[n] = o.wt + o.blkWt[bi] - (o.blkStart[bi] - ch0);
      stride[n] = o.blkNoc[bi];
    }
  }
  void store(int32_t s, __m512i d) const {
    for (int i = 0; i < n; ++i) _mm512_mask_storeu_epi32(base[i] + static_cast<size_t>(s) * stride[i], take[i], d);
  }
  // A hint: the lines sources [s0, s1) will be stored to, fetched into L2 (the first and last
  // byte of each source's lanes).
  void prefetch(int32_t s0, int32_t s1) const {
    for (int i = 0; i < n; ++i) {
      if (take[i] == 0) continue;
      const size_t lo = static_cast<size_t>(__builtin_ctz(take[i])) * 4;
      const size_t hi = static_cast<size_t>(31 - __builtin_clz(take[i])) * 4 + 3;
      for (int32_t s = s0; s < s1; ++s) {
        const char* at = reinterpret_cast<const char*>(base[i] + static_cast<size_t>(s) * stride[i]);
        _mm_prefetch(at + lo, _MM_HINT_T1);
        _mm_prefetch(at + hi, _MM_HINT_T1);
      }
    }
  }
  // Sources s0 .. s0 + m - 1 (m <= 16) from d[0 .. m): block by block, so that the loop over
  // the sources has a fixed trip count when m = 16.
  void store16(int32_t s0, const __m512i* d, int m) const {
    for (int i = 0; i < n; ++i) {
      int32_t* at = base[i] + static_cast<size_t>(s0) * stride[i];
      if (m == 16)
        for (int j = 0; j < 16; ++j) _mm512_mask_storeu_epi32(at + j * stride[i], take[i], d[j]);
      else
        for (int j = 0; j < m; ++j) _mm512_mask_storeu_epi32(at + j * stride[i], take[i], d[j]);
    }
  }
};

}  // namespace qbnn
