// u8 max / average pooling (the contract's qpool2d, packages/core/src/kernels/pool.ts): windows
// clipped to the input; avg divides the sum of (q - z) by the whole kernel area in float64 and
// rounds half to even, exactly like the reference.
#include "common.h"

#if QBNN_X86
#include <immintrin.h>
#endif

namespace qbnn {

#if QBNN_X86
namespace {
// The 2x2 / stride 2 max window, 32 outputs a step: the max of the two rows, then of each byte
// pair (as 16-bit lanes), narrowed back to bytes; masked loads and stores at row ends.
__attribute__((target("avx512f,avx512bw"))) void maxPool2x2Avx512(const uint8_t* x, int64_t planes, int64_t h,
                                                                 int64_t w, int64_t ho, int64_t wo, uint8_t* out) {
  const __m512i low = _mm512_set1_epi16(0x00ff);
  for (int64_t pl = 0; pl < planes; ++pl) {
    const uint8_t* src = x + pl * h * w;
    uint8_t* dst = out + pl * ho * wo;
    for (int64_t oy = 0; oy < ho; ++oy) {
      const uint8_t* r0 = src + 2 * oy * w;
      const uint8_t* r1 = r0 + w;
      uint8_t* d = dst + oy * wo;
      for (int64_t ox = 0; ox < wo; ox += 32) {
        const int64_t n = wo - ox < 32 ? wo - ox : 32;
        const __mmask64 in = n == 32 ? ~__mmask64{0} : (__mmask64{1} << (2 * n)) - 1;
        const __m512i m = _mm512_max_epu8(_mm512_maskz_loadu_epi8(in, r0 + 2 * ox), _mm512_maskz_loadu_epi8(in, r1 + 2 * ox));
        const __m512i pair = _mm512_max_epu16(_mm512_and_si512(m, low), _mm512_srli_epi16(m, 8));
        const __mmask32 o = n == 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1;
        _mm512_mask_cvtepi16_storeu_epi8(d + ox, o, pair);
      }
    }
  }
}
}  // namespace
#endif

void poolPlanesU8(const uint8_t* x, int64_t planes, int64_t h, int64_t w, int32_t z, const PoolGeometry& g,
                  uint8_t* out) {
  const double area = static_cast<double>(g.kh) * g.kw;
  // The usual 2x2 / stride 2 max window, without clipping (auto-vectorised).
  if (g.kind == 0 && g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0) {
#if QBNN_X86
    if (cpuFeatures().avx512vnni) return maxPool2x2Avx512(x, planes, h, w, g.ho, g.wo, out);
#endif
    for (int64_t pl = 0; pl < planes; ++pl) {
      const uint8_t* src = x + pl * h * w;
      uint8_t* dst = out + pl * g.ho * g.wo;
      for (int64_t oy = 0; oy < g.ho; ++oy) {
        const uint8_t* r0 = src + 2 * oy * w;
        const uint8_t* r1 = r0 + w;
        uint8_t* d = dst + oy * g.wo;
        for (int64_t ox = 0; ox < g.wo; ++ox) {
          const uint8_t a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
          const uint8_t b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
          d[ox] = a > b ? a : b;
        }
      }
    }
    return;
  }
  for (int64_t pl = 0; pl < planes; ++pl) {
    const uint8_t* src = x + pl * h * w;
    uint8_t* dst = out + pl * g.ho * g.wo;
    for (int64_t oy = 0; oy < g.ho; ++oy) {
      const int64_t y0 = oy * g.sh - g.ph < 0 ? 0 : oy * g.sh - g.ph;
      const int64_t y1 = oy * g.sh - g.ph + g.kh > h ? h : oy * g.sh - g.ph + g.kh;
      for (int64_t ox = 0; ox < g.wo; ++ox) {
        const int64_t x0 = ox * g.sw - g.pw < 0 ? 0 : ox * g.sw - g.pw;
        const int64_t x1 = ox * g.sw - g.pw + g.kw > w ? w : ox * g.sw - g.pw + g.kw;
        int32_t m = 0;
        int64_t s = 0;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t i = x0; i < x1; ++i) {
            const int32_t v = src[y * w + i];
            m = v > m ? v : m;
            s += v - z;
          }
        if (g.kind == 0) {
          dst[oy * g.wo + ox] = static_cast<uint8_t>(m);
        } else {
          double q = roundHalfEven(static_cast<double>(s) / area) + static_cast<double>(z);
          q = q < 0.0 ? 0.0 : q > 255.0 ? 255.0 : q;
          dst[oy * g.wo + ox] = static_cast<uint8_t>(static_cast<int32_t>(q));
        }
      }
    }
  }
}

}  // namespace qbnn
