// Decoding of core's packInts streams (quant/packing.ts): value i takes bits [i b, (i + 1) b) of
// a little-endian bit stream, b-bit two's complement when signed. The sampler and the weight
// packing read packed mu / sigma / weights a row at a time through these, so a layer's tensors
// stay packed in memory.
#include <cstring>

#include "common.h"
#include "driver.h"

#if QBNN_X86
#include <immintrin.h>
#endif

namespace qbnn {

void unpackIntsScalar(const uint8_t* src, size_t bytes, uint64_t first, size_t count, int bits, bool sign,
                      int8_t* out) {
  if (bits == 8) {
    std::memcpy(out, src + first, count);
    return;
  }
  const uint64_t bit0 = first * static_cast<uint64_t>(bits);
  size_t at = static_cast<size_t>(bit0 >> 3);
  uint32_t acc = 0;
  int have = 0;
  if (count > 0 && at < bytes) {
    acc = static_cast<uint32_t>(src[at++]) >> (bit0 & 7);
    have = 8 - static_cast<int>(bit0 & 7);
  }
  const uint32_t mask = (1u << bits) - 1, half = 1u << (bits - 1);
  for (size_t i = 0; i < count; ++i) {
    while (have < bits) {  // the stream holds every requested value (checked by the caller)
      acc |= static_cast<uint32_t>(src[at++]) << have;
      have += 8;
    }
    const uint32_t v = acc & mask;
    acc >>= bits;
    have -= bits;
    out[i] = static_cast<int8_t>(sign ? static_cast<int32_t>(v ^ half) - static_cast<int32_t>(half) : static_cast<int32_t>(v));
  }
}

#if QBNN_X86
// 64 values a step with VBMI: qword lane L takes the 8 source bytes from byte L b of the step
// (its 8 values are exactly b bytes, shifted by the start's bit offset o < 8, so o + 8 b <= 63
// bits of it for b <= 7: vpermb), vpmultishiftqb takes value j's 8 bits from bit o + j b of its
// lane, then a mask and, when signed, (v ^ h) - h with h = 2^(b-1). Loads are masked to the
// stream's length.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void unpackIntsVbmi(
    const uint8_t* src, size_t bytes, uint64_t first, size_t count, int bits, bool sign, int8_t* out) {
  const uint64_t bit0 = first * static_cast<uint64_t>(bits);
  const size_t base = static_cast<size_t>(bit0 >> 3);
  const int o = static_cast<int>(bit0 & 7);
  alignas(64) uint8_t perm[64], shift[64];
  for (int l = 0; l < 8; ++l)
    for (int j = 0; j < 8; ++j) {
      perm[8 * l + j] = static_cast<uint8_t>(l * bits + j);
      shift[8 * l + j] = static_cast<uint8_t>(o + j * bits);
    }
  const __m512i vperm = _mm512_load_si512(perm), vshift = _mm512_load_si512(shift);
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1 << bits) - 1));
  const __m512i half = _mm512_set1_epi8(static_cast<char>(sign ? 1 << (bits - 1) : 0));
  for (size_t i = 0; i < count; i += 64) {
    const size_t at = base + (i / 8) * static_cast<size_t>(bits);  // 64 values = 8 b bytes
    const size_t avail = at < bytes ? bytes - at : 0;
    const __mmask64 lm = avail >= 64 ? ~uint64_t{0} : (uint64_t{1} << avail) - 1;
    const __m512i raw = _mm512_maskz_loadu_epi8(lm, src + at);
    __m512i v = _mm512_and_si512(_mm512_multishift_epi64_epi8(vshift, _mm512_permutexvar_epi8(vperm, raw)), mask);
    v = _mm512_sub_epi8(_mm512_xor_si512(v, half), half);
    if (i + 64 <= count) _mm512_storeu_si512(out + i, v);
    else _mm512_mask_storeu_epi8(out + i, (~uint64_t{0}) >> (64 - (count - i)), v);
  }
}
#endif

void unpackInts(const uint8_t* src, size_t bytes, uint64_t first, size_t count, int bits, bool sign, int8_t* out) {
#if QBNN_X86
  if (bits < 8 && cpuFeatures().avx512vbmi && vectorRng()) {
    unpackIntsVbmi(src, bytes, first, count, bits, sign, out);
    return;
  }
#endif
  unpackIntsScalar(src, bytes, first, count, bits, sign, out);
}

}  // namespace qbnn
