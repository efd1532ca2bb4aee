// AVX-512 quantised normal sampling (16 Philox blocks per iteration, two-level threshold
// lookup by gathers) and the AVX-512 fused Gaussian sampler.
#include "common.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq")

namespace qbnn {
namespace {

// hi and lo 32 bits of x * m for 16 uint32 lanes.
inline void mulhilo(__m512i x, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i pe = _mm512_mul_epu32(x, m);
  const __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);
  hi = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(pe, 32), po);
  lo = _mm512_mask_blend_epi32(0xaaaa, pe, _mm512_slli_epi64(po, 32));
}

inline __m128i mapWords(__m512i u, const uint8_t* lut, const uint32_t* t) {
  const __m512i h = _mm512_srli_epi32(u, 16);
  const __m512i base = _mm512_and_si512(_mm512_i32gather_epi32(h, lut, 1), _mm512_set1_epi32(0xff));
  const __m512i thr = _mm512_i32gather_epi32(base, t, 4);
  const __mmask16 ge = _mm512_cmpge_epu32_mask(u, thr) & _mm512_cmplt_epi32_mask(base, _mm512_set1_epi32(255));
  const __m512i cnt = _mm512_mask_add_epi32(base, ge, base, _mm512_set1_epi32(1));
  return _mm512_cvtepi32_epi8(_mm512_sub_epi32(cnt, _mm512_set1_epi32(128)));
}

// 16 consecutive blocks from `block`: 64 quantised normals in stream order.
inline void qnormal64(uint32_t k0, uint32_t k1, uint64_t block, int8_t* out, const uint8_t* lut, const uint32_t* t) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i blo = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(block)));
  __m512i x0 = _mm512_add_epi32(blo, iota);
  const __mmask16 carry = _mm512_cmplt_epu32_mask(x0, blo);
  __m512i x1 = _mm512_mask_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(block >> 32))), carry,
                                     _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(block >> 32))),
                                     _mm512_set1_epi32(1));
  __m512i x2 = _mm512_setzero_si512();
  __m512i x3 = _mm512_setzero_si512();
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xd2511f53u));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(0xcd9e8d57u));
  uint32_t a = k0, b = k1;
  for (int r = 0; r < 10; ++r) {
    __m512i hi0, lo0, hi1, lo1;
    mulhilo(x0, m0, hi0, lo0);
    mulhilo(x2, m1, hi1, lo1);
    x0 = _mm512_xor_si512(_mm512_xor_si512(hi1, x1), _mm512_set1_epi32(static_cast<int>(a)));
    x2 = _mm512_xor_si512(_mm512_xor_si512(hi0, x3), _mm512_set1_epi32(static_cast<int>(b)));
    x1 = lo1;
    x3 = lo0;
    a += 0x9e3779b9u;
    b += 0xbb67ae85u;
  }
  const __m128i b0 = mapWords(x0, lut, t);
  const __m128i b1 = mapWords(x1, lut, t);
  const __m128i b2 = mapWords(x2, lut, t);
  const __m128i b3 = mapWords(x3, lut, t);
  // Byte transpose: out[4 i + j] = bj[i].
  const __m128i t0 = _mm_unpacklo_epi8(b0, b1);
  const __m128i t1 = _mm_unpackhi_epi8(b0, b1);
  const __m128i t2 = _mm_unpacklo_epi8(b2, b3);
  const __m128i t3 = _mm_unpackhi_epi8(b2, b3);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(t0, t2));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_unpackhi_epi16(t0, t2));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), _mm_unpacklo_epi16(t1, t3));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48), _mm_unpackhi_epi16(t1, t3));
}

inline __m512d clampd(__m512d v, __m512d lo, __m512d hi) { return _mm512_min_pd(_mm512_max_pd(v, lo), hi); }

inline __m512d rhe(__m512d v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

}  // namespace

void qnormalAvx512(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count) {
  const uint8_t* lut = qnormalLut();
  const uint32_t* t = qnormalThresholds();
  size_t i = 0;
  // Head: up to the next block boundary.
  const size_t head = (4 - static_cast<size_t>(word0 & 3)) & 3;
  if (head > 0) {
    const size_t h = head < count ? head : count;
    qnormalScalar(k0, k1, word0, out, h);
    i = h;
  }
  for (; i + 64 <= count; i += 64) qnormal64(k0, k1, (word0 + i) >> 2, out + i, lut, t);
  if (i < count) {
    alignas(64) int8_t tmp[64];
    qnormal64(k0, k1, (word0 + i) >> 2, tmp, lut, t);
    for (size_t j = 0; i + j < count; ++j) out[i + j] = tmp[j];
  }
}

void qnormalMapWordsAvx512(const uint32_t* words, int8_t* out, size_t count) {
  const uint8_t* lut = qnormalLut();
  const uint32_t* t = qnormalThresholds();
  size_t i = 0;
  for (; i + 16 <= count; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), mapWords(_mm512_loadu_si512(words + i), lut, t));
  if (i < count) qnormalMapWordsScalar(words + i, out + i, count - i);
}

void sampleRowsAvx512(const SampleCtx& s, int32_t n0, int32_t n1) {
  Packed& p = *s.out;
  const size_t bs = p.blockBytes();
  const size_t k = static_cast<size_t>(s.k);
  int8_t* eps = static_cast<int8_t*>(_mm_malloc(k + 64, 64));
  int8_t* wrow = static_cast<int8_t*>(_mm_malloc(k + 64, 64));
  const __m512d qmin = _mm512_set1_pd(s.qmin);
  const __m512d qmax = _mm512_set1_pd(s.qmax);
  for (int32_t n = n0; n < n1; ++n) {
    const size_t row = static_cast<size_t>(n) * k;
    qnormalAvx512(s.key0, s.key1, s.position * 4 + row, eps, k);
    const __m512d m1 = _mm512_set1_pd(s.m1[n]);
    const __m512d m2 = _mm512_set1_pd(s.m2[n]);
    const __m512d m3 = _mm512_set1_pd(s.m3[n]);
    const __m256i zmu = _mm256_set1_epi32(s.muZp[n]);
    const __m256i zsig = _mm256_set1_epi32(s.sigmaZp[n]);
    const __m512d zn = _mm512_set1_pd(static_cast<double>(s.noiseZp[n]));
    const __m512d zw = _mm512_set1_pd(static_cast<double>(s.weightZp[n]));
    __m256i sums = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= k; i += 8) {
      const __m256i e32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(eps + i)));
      const __m256i s32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s.sigma + row + i)));
      const __m256i u32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s.mu + row + i)));
      const __m512d prod = _mm512_mul_pd(_mm512_cvtepi32_pd(e32), _mm512_cvtepi32_pd(_mm256_sub_epi32(s32, zsig)));
      const __m512d nq = clampd(_mm512_add_pd(rhe(_mm512_mul_pd(prod, m1)), zn), qmin, qmax);
      const __m512d a = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm256_sub_epi32(u32, zmu)), m2);
      const __m512d b = _mm512_mul_pd(_mm512_sub_pd(nq, zn), m3);
      const __m512d wq = clampd(_mm512_add_pd(rhe(_mm512_add_pd(a, b)), zw), qmin, qmax);
      const __m256i q = _mm512_cvttpd_epi32(wq);
      sums = _mm256_add_epi32(sums, q);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(wrow + i), _mm256_cvtepi32_epi8(q));
    }
    alignas(32) int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
    int32_t sum = 0;
    for (int l = 0; l < 8; ++l) sum += lanes[l];
    for (; i < k; ++i) {
      const double prod =
          static_cast<double>(eps[i]) * static_cast<double>(static_cast<int32_t>(s.sigma[row + i]) - s.sigmaZp[n]);
      double nq = roundHalfEven(prod * s.m1[n]) + static_cast<double>(s.noiseZp[n]);
      nq = nq < s.qmin ? s.qmin : (nq > s.qmax ? s.qmax : nq);
      const double a = static_cast<double>(static_cast<int32_t>(s.mu[row + i]) - s.muZp[n]) * s.m2[n];
      const double b = (nq - static_cast<double>(s.noiseZp[n])) * s.m3[n];
      double wq = roundHalfEven(a + b) + static_cast<double>(s.weightZp[n]);
      wq = wq < s.qmin ? s.qmin : (wq > s.qmax ? s.qmax : wq);
      const int32_t q = static_cast<int32_t>(wq);
      sum += q;
      wrow[i] = static_cast<int8_t>(q);
    }
    // Into the packed layout: 4-byte group g of row n goes to block n/16, group g, slot n%16.
    for (size_t j = k; j < ((k + 3) & ~static_cast<size_t>(3)); ++j) wrow[j] = 0;
    uint8_t* blk = p.data + static_cast<size_t>(n / 16) * bs + static_cast<size_t>(n % 16) * 4;
    const size_t groups = (k + 3) / 4;
    for (size_t g = 0; g < groups; ++g) {
      uint32_t v;
      __builtin_memcpy(&v, wrow + 4 * g, 4);
      __builtin_memcpy(blk + g * 64, &v, 4);
    }
    p.rowSums[n] = sum;
    p.zeroPoint[n] = s.weightZp[n];
  }
  _mm_free(eps);
  _mm_free(wrow);
}

}  // namespace qbnn

#pragma GCC pop_options

#else
namespace qbnn {
void qnormalAvx512(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count) {
  qnormalScalar(k0, k1, word0, out, count);
}
void sampleRowsAvx512(const SampleCtx& s, int32_t n0, int32_t n1) { sampleRowsScalar(s, n0, n1); }
void qnormalMapWordsAvx512(const uint32_t* words, int8_t* out, size_t count) { qnormalMapWordsScalar(words, out, count); }
}  // namespace qbnn
#endif
