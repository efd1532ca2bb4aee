// AVX-512 quantised normal sampling and the AVX-512 fused Gaussian sampler. With VBMI: Philox
// in 4 interleaved chains of 8 blocks, then the byte-lane table mapping of 64 words at a time
// (no gathers; ~4x the gather mapping here). Without VBMI: 16 blocks per iteration and the
// two-level threshold lookup by gathers. The fused sampler draws a block of 16 rows' normals as
// one run of the stream, combines each row in float32 with a proof-checked float64 fallback
// (sample_f32.h), decodes packed mu / sigma a row at a time, and stores the block into the
// packed layout a cache line at a time.
#include "common.h"

#include <cstring>

#if QBNN_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

#include "philox_avx512.h"
#include "sample_f32.h"
#include "tap_stores.h"

namespace qbnn {
namespace {

// The threshold table as the levels of a branchless binary search, in registers. Level s
// (s = 128, 64, ..., 1) compares u with T[idx + s - 1] where idx is a multiple of 2s, so it
// needs the 128 / s candidates T[i * 2s + s - 1]: one value for s = 128, one zmm (permuted by
// vpermd) for s = 64..8, two zmm (vpermi2d) for s = 4, four for s = 2 and eight for s = 1.
// The result idx = #{ j : u >= T[j] } exactly, as the reference's table walk.
struct SearchTables {
  __m512i t128;
  __m512i t64, t32, t16, t8;
  __m512i t4[2];
  __m512i t2[4];
  __m512i t1[8];
};

inline void loadTables(SearchTables& st) {
  const uint32_t* l = qnormalSearchLevels();
  st.t128 = _mm512_set1_epi32(static_cast<int>(l[0]));
  st.t64 = _mm512_load_si512(l + 16);
  st.t32 = _mm512_load_si512(l + 32);
  st.t16 = _mm512_load_si512(l + 48);
  st.t8 = _mm512_load_si512(l + 64);
  for (int r = 0; r < 2; ++r) st.t4[r] = _mm512_load_si512(l + 80 + 16 * r);
  for (int r = 0; r < 4; ++r) st.t2[r] = _mm512_load_si512(l + 112 + 16 * r);
  for (int r = 0; r < 8; ++r) st.t1[r] = _mm512_load_si512(l + 176 + 16 * r);
}

inline __m128i mapWords(__m512i u, const SearchTables& st) {
  __m512i idx = _mm512_maskz_mov_epi32(_mm512_cmpge_epu32_mask(u, st.t128), _mm512_set1_epi32(128));
#define QBNN_LEVEL(S, SHIFT, CAND)                                                        \
  {                                                                                        \
    const __m512i c = CAND;                                                                \
    idx = _mm512_mask_add_epi32(idx, _mm512_cmpge_epu32_mask(u, c), idx, _mm512_set1_epi32(S)); \
  }
  QBNN_LEVEL(64, 7, _mm512_permutexvar_epi32(_mm512_srli_epi32(idx, 7), st.t64))
  QBNN_LEVEL(32, 6, _mm512_permutexvar_epi32(_mm512_srli_epi32(idx, 6), st.t32))
  QBNN_LEVEL(16, 5, _mm512_permutexvar_epi32(_mm512_srli_epi32(idx, 5), st.t16))
  QBNN_LEVEL(8, 4, _mm512_permutexvar_epi32(_mm512_srli_epi32(idx, 4), st.t8))
  QBNN_LEVEL(4, 3, _mm512_permutex2var_epi32(st.t4[0], _mm512_srli_epi32(idx, 3), st.t4[1]))
  {
    const __m512i i2 = _mm512_srli_epi32(idx, 2);  // 0..63
    const __mmask16 hi = _mm512_test_epi32_mask(i2, _mm512_set1_epi32(32));
    const __m512i a = _mm512_permutex2var_epi32(st.t2[0], i2, st.t2[1]);
    const __m512i b = _mm512_permutex2var_epi32(st.t2[2], i2, st.t2[3]);
    QBNN_LEVEL(2, 2, _mm512_mask_blend_epi32(hi, a, b))
  }
  {
    const __m512i i1 = _mm512_srli_epi32(idx, 1);  // 0..127
    const __mmask16 b5 = _mm512_test_epi32_mask(i1, _mm512_set1_epi32(32));
    const __mmask16 b6 = _mm512_test_epi32_mask(i1, _mm512_set1_epi32(64));
    const __m512i a = _mm512_mask_blend_epi32(b5, _mm512_permutex2var_epi32(st.t1[0], i1, st.t1[1]),
                                              _mm512_permutex2var_epi32(st.t1[2], i1, st.t1[3]));
    const __m512i b = _mm512_mask_blend_epi32(b5, _mm512_permutex2var_epi32(st.t1[4], i1, st.t1[5]),
                                              _mm512_permutex2var_epi32(st.t1[6], i1, st.t1[7]));
    QBNN_LEVEL(1, 1, _mm512_mask_blend_epi32(b6, a, b))
  }
#undef QBNN_LEVEL
  return _mm512_cvtepi32_epi8(_mm512_sub_epi32(idx, _mm512_set1_epi32(128)));
}

// One gather per 16 words: guide[h] for the 4096 buckets of 2^20 words (h = u >> 20) packs
// base = #{ j : T[j] <= h << 20 } (bits 0-7) and the offset inside the bucket of the one
// threshold T[base] that may lie inside it (bits 8-28; 2^20 = "none"), so the count is
// base + ((u & 0xfffff) >= offset). Buckets holding two or more thresholds (the far tails,
// about 0.7% of the probability) carry bit 31 and their vectors take the full search.
inline __m128i mapWordsGuided(__m512i u, const uint32_t* guide, const SearchTables& st) {
  const __m512i e = _mm512_i32gather_epi32(_mm512_srli_epi32(u, 20), guide, 4);
  const __mmask16 multi = _mm512_movepi32_mask(e);
  if (__builtin_expect(multi != 0, 0)) return mapWords(u, st);
  const __m512i base = _mm512_and_si512(e, _mm512_set1_epi32(0xff));
  const __m512i off = _mm512_srli_epi32(e, 8);
  const __mmask16 ge = _mm512_cmpge_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0xfffff)), off);
  const __m512i cnt = _mm512_mask_add_epi32(base, ge, base, _mm512_set1_epi32(1));
  return _mm512_cvtepi32_epi8(_mm512_sub_epi32(cnt, _mm512_set1_epi32(128)));
}

// 16 consecutive blocks from `block`: 64 quantised normals in stream order.
inline void qnormal64(uint32_t k0, uint32_t k1, uint64_t block, int8_t* out, const SearchTables& st,
                      const uint32_t* guide) {
  __m256i lo[4], hi[4];
  philox8(k0, k1, block, lo);
  philox8(k0, k1, block + 8, hi);
  __m128i bytes[4];
  for (int j = 0; j < 4; ++j)
    bytes[j] = mapWordsGuided(_mm512_inserti64x4(_mm512_castsi256_si512(lo[j]), hi[j], 1), guide, st);
  // Byte transpose: out[4 i + j] = bytes[j][i].
  const __m128i t0 = _mm_unpacklo_epi8(bytes[0], bytes[1]);
  const __m128i t1 = _mm_unpackhi_epi8(bytes[0], bytes[1]);
  const __m128i t2 = _mm_unpacklo_epi8(bytes[2], bytes[3]);
  const __m128i t3 = _mm_unpackhi_epi8(bytes[2], bytes[3]);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(t0, t2));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_unpackhi_epi16(t0, t2));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), _mm_unpacklo_epi16(t1, t3));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48), _mm_unpackhi_epi16(t1, t3));
}

// ---- Byte-lane mapping (VBMI): 64 words at once, no gathers (see QnormalByteTables).
#define QBNN_VBMI __attribute__((target("avx512vbmi")))

struct ByteTables {
  __m512i centre[4][2];  // per kind, the 128-entry table as two registers (vpermi2b)
  __m512i tail[4][4];  // per kind, the 256-entry table as four registers
  __m512i plane[4];  // byte p of word L: vpermt2b index into a pair of word registers
  __mmask64 second;  // lanes whose word is in the second pair
  __m512i tailTop;
};

// Byte p of the word that lane L of a step maps, as a vpermt2b index into its pair of word
// registers, for an order given as (register, dword) per lane; `second`: lanes of registers 2-3.
struct PlaneIndex {
  alignas(64) uint8_t ix[4][64];
  __mmask64 second = 0;
  template <class Order>
  explicit PlaneIndex(Order order) {
    for (int l = 0; l < 64; ++l) {
      int r = 0, d = 0;
      order(l, r, d);
      for (int p = 0; p < 4; ++p) ix[p][l] = static_cast<uint8_t>((r & 1) * 64 + d * 4 + p);
      if (r >= 2) second |= uint64_t{1} << l;
    }
  }
};

// Stream order from 4 registers of 16 consecutive words.
const PlaneIndex kStreamOrder([](int l, int& r, int& d) { r = l / 16, d = l % 16; });
// Philox order: register j holds word j of 16 consecutive blocks (as philox8 leaves them).
const PlaneIndex kPhiloxOrder([](int l, int& r, int& d) { r = l % 4, d = l / 4; });

QBNN_VBMI inline void loadByteTables(ByteTables& bt, const PlaneIndex& order) {
  const QnormalByteTables& t = qnormalByteTables();
  for (int k = 0; k < 4; ++k) {
    for (int h = 0; h < 2; ++h) bt.centre[k][h] = _mm512_load_si512(t.centre[k] + 64 * h);
    for (int q = 0; q < 4; ++q) bt.tail[k][q] = _mm512_load_si512(t.tail[k] + 64 * q);
  }
  for (int p = 0; p < 4; ++p) bt.plane[p] = _mm512_load_si512(order.ix[p]);
  bt.second = order.second;
  bt.tailTop = _mm512_set1_epi8(static_cast<char>(t.tailTop));
}

// 64 quantised normals of the words in u[0..3] (lane order as loadByteTables was told).
QBNN_VBMI inline __m512i mapBytes(const __m512i u[4], const ByteTables& bt) {
  __m512i v[4], ti[4];
  const __m512i floor22 = _mm512_set1_epi32(149 << 5);  // float exponent field of 2^22, 5 mantissa bits
  for (int r = 0; r < 4; ++r) {
    v[r] = _mm512_xor_si512(u[r], _mm512_srai_epi32(u[r], 31));  // u or ~u, < 2^31
    // Tail bucket: v's octave and next 5 bits from its float (truncated, so a floor), from 2^22.
    const __m512i bits = _mm512_castps_si512(_mm512_cvt_roundepi32_ps(v[r], _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
    ti[r] = _mm512_subs_epu16(_mm512_srli_epi32(bits, 18), floor22);
  }
  auto plane = [&](const __m512i* w, int p) {
    const __m512i a = _mm512_permutex2var_epi8(w[0], bt.plane[p], w[1]);
    const __m512i b = _mm512_permutex2var_epi8(w[2], bt.plane[p], w[3]);
    return _mm512_mask_blend_epi8(bt.second, a, b);
  };
  // u's top byte: its sign picks the half, and v's top byte is it or its complement (the smaller)
  const __m512i u3 = plane(u, 3);
  const __mmask64 right = _mm512_movepi8_mask(u3);
  const __m512i b3 = _mm512_min_epu8(u3, _mm512_ternarylogic_epi32(u3, u3, u3, 0x55));
  const __m512i b2 = plane(v, 2), b1 = plane(v, 1), b0 = plane(v, 0);
  const __m512i idx = plane(ti, 0);
  const __mmask64 tail = _mm512_cmplt_epu8_mask(b3, bt.tailTop);
  const __mmask64 idxHi = _mm512_movepi8_mask(idx);
  __m512i k[4];
  for (int q = 0; q < 4; ++q) {
    const __m512i c = _mm512_permutex2var_epi8(bt.centre[q][0], b3, bt.centre[q][1]);
    const __m512i t = _mm512_mask_blend_epi8(idxHi, _mm512_permutex2var_epi8(bt.tail[q][0], idx, bt.tail[q][1]),
                                             _mm512_permutex2var_epi8(bt.tail[q][2], idx, bt.tail[q][3]));
    k[q] = _mm512_mask_blend_epi8(tail, c, t);
  }
  // v's low 3 bytes >= the bucket's threshold's (lexicographic): the bucket fixes the rest.
  const __mmask64 gt2 = _mm512_cmpgt_epu8_mask(b2, k[1]), eq2 = _mm512_cmpeq_epu8_mask(b2, k[1]);
  const __mmask64 gt1 = _mm512_cmpgt_epu8_mask(b1, k[2]), eq1 = _mm512_cmpeq_epu8_mask(b1, k[2]);
  const __mmask64 ge = gt2 | (eq2 & (gt1 | (eq1 & _mm512_cmpge_epu8_mask(b0, k[3]))));
  const __m512i one = _mm512_set1_epi8(1);
  __m512i e = _mm512_mask_add_epi8(k[0], ge, k[0], one);  // #{T <= v} - 128
  // Upper half: ~e + [v >= T[0]], and v >= T[0] exactly when some threshold is at or below v.
  const __mmask64 geT0 = _mm512_cmpneq_epi8_mask(e, _mm512_set1_epi8(-128));
  e = _mm512_mask_sub_epi8(e, right, _mm512_set1_epi8(-1), e);
  return _mm512_mask_add_epi8(e, right & geT0, e, one);
}

QBNN_VBMI void qnormalBytes(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count) {
  ByteTables bt;
  loadByteTables(bt, kPhiloxOrder);
  size_t i = 0;
  const size_t head = (4 - static_cast<size_t>(word0 & 3)) & 3;
  if (head > 0) {
    const size_t h = head < count ? head : count;
    qnormalScalar(k0, k1, word0, out, h);
    i = h;
  }
  // Low dwords of two registers of 8 qwords -> one register of 16 dwords.
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  constexpr int kChains = 4;  // measured: 2 chains 1.9, 4 chains 2.2, 8 chains 2.2 G words/s
  for (; i < count; i += 32 * kChains) {
    __m512i x[kChains][4];
    philoxChains<kChains>(k0, k1, (word0 + i) >> 2, x);
    for (int half = 0; half < kChains / 2 && i + 64 * half < count; ++half) {
      __m512i u[4];
      for (int j = 0; j < 4; ++j) u[j] = _mm512_permutex2var_epi32(x[2 * half][j], evens, x[2 * half + 1][j]);
      const __m512i e = mapBytes(u, bt);
      const size_t at = i + 64 * half;
      if (at + 64 <= count) _mm512_storeu_si512(out + at, e);
      else _mm512_mask_storeu_epi8(out + at, (~uint64_t{0}) >> (64 - (count - at)), e);
    }
  }
}

inline __m512d clampd(__m512d v, __m512d lo, __m512d hi) { return _mm512_min_pd(_mm512_max_pd(v, lo), hi); }

inline __m512d rhe(__m512d v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

}  // namespace

void qnormalAvx512(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count) {
  if (qnormalByteTables().ready && cpuFeatures().avx512vbmi) {
    qnormalBytes(k0, k1, word0, out, count);
    return;
  }
  SearchTables st;
  loadTables(st);
  const uint32_t* guide = qnormalGuide();
  size_t i = 0;
  // Head: up to the next block boundary.
  const size_t head = (4 - static_cast<size_t>(word0 & 3)) & 3;
  if (head > 0) {
    const size_t h = head < count ? head : count;
    qnormalScalar(k0, k1, word0, out, h);
    i = h;
  }
    for (; i + 64 <= count; i += 64) qnormal64(k0, k1, (word0 + i) >> 2, out + i, st, guide);
  if (i < count) {
    alignas(64) int8_t tmp[64];
    qnormal64(k0, k1, (word0 + i) >> 2, tmp, st, guide);
    for (size_t j = 0; i + j < count; ++j) out[i + j] = tmp[j];
  }
}

void qnormalMapWordsAvx512(const uint32_t* words, int8_t* out, size_t count) {
  SearchTables st;
  loadTables(st);
  const uint32_t* guide = qnormalGuide();
  size_t i = 0;
  for (; i + 16 <= count; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), mapWordsGuided(_mm512_loadu_si512(words + i), guide, st));
  if (i < count) qnormalMapWordsScalar(words + i, out + i, count - i);
}

QBNN_VBMI void qnormalMapWordsAvx512Bytes(const uint32_t* words, int8_t* out, size_t count) {
  ByteTables bt;
  loadByteTables(bt, kStreamOrder);
  size_t i = 0;
  for (; i + 64 <= count; i += 64) {
    __m512i u[4];
    for (int r = 0; r < 4; ++r) u[r] = _mm512_loadu_si512(words + i + 16 * r);
    _mm512_storeu_si512(out + i, mapBytes(u, bt));
  }
  if (i < count) qnormalMapWordsScalar(words + i, out + i, count - i);
}

void qnormalMapWordsAvx512Search(const uint32_t* words, int8_t* out, size_t count) {
  SearchTables st;
  loadTables(st);
  size_t i = 0;
  for (; i + 16 <= count; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), mapWords(_mm512_loadu_si512(words + i), st));
  if (i < count) qnormalMapWordsScalar(words + i, out + i, count - i);
}

namespace {

// Row n of the sampler: its weights from the row's quantised normals eps[0, k) into w[0, k)
// (zero past k up to a multiple of 16); returns their sum. 16 weights a step in float32
// (Float32Row), a step redone in float64 when a lane is not proven, in the contract's order:
// the clamps moved before the roundings (integer bounds, so RHE(clamp(x, L, H)) =
// clamp(RHE(x), L, H)) with the zero points folded into them, n' = nq - Zn = RHE(clamp(prod m1,
// qmin - Zn, qmax - Zn)), q = RHE(clamp(a + n' m3, qmin - Zw, qmax - Zw)) + Zw. eps (sigma - Zsig)
// is an exact integer (|.| < 2^24), so forming it in int32 and converting once equals the
// float64 product. 64 weights are packed to bytes at once (saturating packs: exact, the values
// are in range or `saturate` makes the pack the clamp) and summed by vpdpbusd against ones.
// ZeroSig (the row's Zsig is 0, as PTQ gives every zoo model's rows): eps sigma by vpmaddwd of
// eps (sign-extended dwords) and sigma (zero-extended: high words 0), the same integer, without
// the subtraction of Zsig.
template <bool ZeroSig>
int32_t sampleRowT(const SampleCtx& s, int32_t n, const int8_t* eps, const int8_t* mu, const uint8_t* sigma,
                   int8_t* w) {
  const size_t k = static_cast<size_t>(s.k);
  const Float32Row f(s, n);
  const __m512d m1 = _mm512_set1_pd(s.m1[n]), m2 = _mm512_set1_pd(s.m2[n]), m3 = _mm512_set1_pd(s.m3[n]);
  const int32_t zwi = s.weightZp[n], zni = s.noiseZp[n];
  const __m512d nLo = _mm512_set1_pd(s.qmin - zni), nHi = _mm512_set1_pd(s.qmax - zni);
  const __m512d wLo = _mm512_set1_pd(s.qmin - zwi), wHi = _mm512_set1_pd(s.qmax - zwi);
  const __m512i zsig = _mm512_set1_epi32(s.sigmaZp[n]), zmu = _mm512_set1_epi32(s.muZp[n]);
  const __m512i zw = _mm512_set1_epi32(zwi);
  // 16 weights at i (int32, zero point added); lanes past k (live = 0) read 0.
  auto step = [&](size_t i, __mmask16 live) {
    const __m512i e32 = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(live, eps + i));
    const __m512i s32 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(live, sigma + i));
    const __m512i u32 = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(live, mu + i));
    const __m512i prod = ZeroSig ? _mm512_madd_epi16(e32, s32) : _mm512_mullo_epi32(e32, _mm512_sub_epi32(s32, zsig));
    const __m512i dmu = _mm512_sub_epi32(u32, zmu);
    __m512i q;
    if (__builtin_expect(f.combine(prod, dmu, q), 1)) return q;
    __m256i h2[2];
    for (int h = 0; h < 2; ++h) {
      const __m256i ph = h ? _mm512_extracti64x4_epi64(prod, 1) : _mm512_castsi512_si256(prod);
      const __m256i mh = h ? _mm512_extracti64x4_epi64(dmu, 1) : _mm512_castsi512_si256(dmu);
      const __m512d nq = rhe(clampd(_mm512_mul_pd(_mm512_cvtepi32_pd(ph), m1), nLo, nHi));
      const __m512d sum = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(mh), m2), _mm512_mul_pd(nq, m3));
      h2[h] = _mm512_cvt_roundpd_epi32(clampd(sum, wLo, wHi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    return _mm512_add_epi32(_mm512_inserti64x4(_mm512_castsi256_si512(h2[0]), h2[1], 1), zw);
  };
  // byte 4 j + c of a packs result holds value j of register c (per 128-bit lane): back to order
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i sums = _mm512_setzero_si512();
  auto step64 = [&](size_t i) {
    const __m512i q0 = step(i, 0xffff), q1 = step(i + 16, 0xffff), q2 = step(i + 32, 0xffff),
                  q3 = step(i + 48, 0xffff);
    const __m512i b = _mm512_permutexvar_epi32(
        order, _mm512_packs_epi16(_mm512_packs_epi32(q0, q1), _mm512_packs_epi32(q2, q3)));
    _mm512_store_si512(w + i, b);
    sums = _mm512_dpbusd_epi32(sums, ones, b);
  };
  size_t i = 0;
  for (; i + 64 <= k; i += 64) step64(i);
  for (; i < k; i += 16) {
    const __mmask16 live = k - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - i)) - 1);
    const __m512i q = _mm512_maskz_mov_epi32(
        live, _mm512_min_epi32(_mm512_max_epi32(step(i, live), _mm512_set1_epi32(-128)), _mm512_set1_epi32(127)));
    sums = _mm512_add_epi32(sums, q);
    _mm_store_si128(reinterpret_cast<__m128i*>(w + i), _mm512_cvtepi32_epi8(q));
  }
  return _mm512_reduce_add_epi32(sums);
}

int32_t sampleRow(const SampleCtx& s, int32_t n, const int8_t* eps, const int8_t* mu, const uint8_t* sigma,
                  int8_t* w) {
  return s.sigmaZp[n] == 0 ? sampleRowT<true>(s, n, eps, mu, sigma, w) : sampleRowT<false>(s, n, eps, mu, sigma, w);
}

// 16 x 16 dwords: r[i] = 16 dwords of row i on entry, dword j of rows 0..15 on return.
inline void transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4 i + c], 128-bit lane L: dword 4 L + c of rows 4 i .. 4 i + 3.
  __m512i u[16];
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Lane transpose: dword 4 L + c takes lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
  for (int c = 0; c < 4; ++c) {
    const __m512i ab01 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), ab23 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xee);
    const __m512i cd01 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
    const __m512i cd23 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xee);
    r[c] = _mm512_shuffle_i32x4(ab01, cd01, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(ab01, cd01, 0xdd);
    r[8 + c] = _mm512_shuffle_i32x4(ab23, cd23, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(ab23, cd23, 0xdd);
  }
}


}  // namespace

// Row n of the layer into w (sampleRow), its mu / sigma decoded into muRow / sigmaRow first when
// packed below 8 bits; its rowSums and zeroPoint into the pack.
static void sampleRowOf(const SampleCtx& s, int32_t n, const int8_t* eps, int8_t* muRow, uint8_t* sigmaRow, int8_t* w) {
  const size_t k = static_cast<size_t>(s.k);
  const size_t row = static_cast<size_t>(n) * k;
  const int8_t* mu = s.mu + row;
  const uint8_t* sigma = s.sigma + row;
  if (s.muBits < 8) {
    unpackInts(reinterpret_cast<const uint8_t*>(s.mu), s.muBytes, row, k, s.muBits, true, muRow);
    mu = muRow;
  }
  if (s.sigmaBits < 8) {
    unpackInts(s.sigma, s.sigmaBytes, row, k, s.sigmaBits, false, reinterpret_cast<int8_t*>(sigmaRow));
    sigma = sigmaRow;
  }
  s.out->rowSums[n] = sampleRow(s, n, eps, mu, sigma, w);
  s.out->zeroPoint[n] = s.weightZp[n];
}

// Rows [n0, n1) in blocks of 16 rows (block b: rows 16 b.., [r0, r1) of them in the range): a
// block's normals are one run of the stream, drawn at once; row n is sampled into dest(n - 16 b)
// and handed to rowDone(n, w), then the block to blockDone(b, r0, r1). `buffers`: the
// normals and decoded mu / sigma rows, 18 (k + 64) bytes.
template <class Dest, class RowDone, class BlockDone>
inline void sampleBlocks(const SampleCtx& s, int32_t n0, int32_t n1, uint8_t* buffers, Dest dest, RowDone rowDone,
                         BlockDone blockDone) {
  const size_t k = static_cast<size_t>(s.k);
  int8_t* eps = reinterpret_cast<int8_t*>(buffers);
  int8_t* muRow = eps + 16 * k + 64;
  uint8_t* sigmaRow = reinterpret_cast<uint8_t*>(muRow + k + 64);
  for (int32_t b = n0 / 16; b * 16 < n1; ++b) {
    const int32_t r0 = b * 16 > n0 ? b * 16 : n0;
    const int32_t r1 = b * 16 + 16 < n1 ? b * 16 + 16 : n1;
    qnormalAvx512(s.key0, s.key1, s.position * 4 + static_cast<size_t>(r0) * k, eps, static_cast<size_t>(r1 - r0) * k);
    for (int32_t n = r0; n < r1; ++n) {
      int8_t* w = dest(n - b * 16);
      sampleRowOf(s, n, eps + static_cast<size_t>(n - r0) * k, muRow, sigmaRow, w);
      rowDone(n, w);
    }
    blockDone(b, r0, r1);
  }
}

void sampleRowsAvx512(const SampleCtx& s, int32_t n0, int32_t n1) {
  Packed& p = *s.out;
  const size_t bs = p.blockBytes();
  const size_t k = static_cast<size_t>(s.k);
  // A block's 16 rows are sampled into contiguous rows (zero past k), then written to the packed
  // layout a cache line (16 rows x 4 bytes) at a time. Rows outside [n0, n1) are never stored
  // (masked), so they need no initial value. Packed mu / sigma are decoded a row at a time.
  const size_t rowBytes = static_cast<size_t>(p.kstride) * 4;
  // The block's normals are one run of the stream (rows are consecutive in it): drawn at once.
  thread_local Scratch scratch;
  uint8_t* rows = static_cast<uint8_t*>(scratch.get(16 * rowBytes + 18 * (k + 64)));
  if (rows == nullptr) {  // no memory for the buffers: the scalar path needs none
    sampleRowsScalar(s, n0, n1);
    return;
  }
  auto dest = [&](int32_t j) { return reinterpret_cast<int8_t*>(rows + static_cast<size_t>(j) * rowBytes); };
  // Row n also fetches a 16th of the next block's lines into L2 ahead of their stores (a drawn
  // layer's pack is seldom still cached from its previous draw).
  auto zeroTail = [&](int32_t n, int8_t* w) {
    std::memset(w + k, 0, rowBytes - k);
    if ((n / 16 + 1) * 16 >= n1) return;
    const size_t part = (bs + 15) / 16;
    const char* at = reinterpret_cast<const char*>(p.data) + static_cast<size_t>(n / 16 + 1) * bs +
                     static_cast<size_t>(n % 16) * part;
    for (size_t o = 0; o < part; o += 64) _mm_prefetch(at + o, _MM_HINT_T1);
  };
  sampleBlocks(s, n0, n1, rows + 16 * rowBytes, dest, zeroTail, [&](int32_t b, int32_t r0, int32_t r1) {
    const __mmask16 live = static_cast<__mmask16>(((1u << (r1 - b * 16)) - 1) & ~((1u << (r0 - b * 16)) - 1));
    uint8_t* blk = p.data + static_cast<size_t>(b) * bs;
    for (size_t g = 0; g < static_cast<size_t>(p.kstride); g += 16) {
      __m512i r[16];
      for (int j = 0; j < 16; ++j) r[j] = _mm512_load_si512(rows + static_cast<size_t>(j) * rowBytes + g * 4);
      transpose16x16(r);
      if (live == 0xffff)
        for (int j = 0; j < 16; ++j) _mm512_storeu_si512(blk + (g + static_cast<size_t>(j)) * 64, r[j]);
      else
        for (int j = 0; j < 16; ++j) _mm512_mask_storeu_epi32(blk + (g + static_cast<size_t>(j)) * 64, live, r[j]);
    }
  });
}

// Rows [n0, n1) sampled one at a time into a row buffer (L1) and, instead of being packed,
// dotted at once with the single input row x[0, k): dots[n] = sum_k x w (rowSums and zeroPoint
// still written to the pack for the epilogue). Batch 1 reads each weight once, so packing it for
// a GEMM would cost a store, a transpose and a reload for nothing.
bool sampleRowsDotAvx512(const SampleCtx& s, const uint8_t* x, int32_t n0, int32_t n1, int32_t* dots) {
  const size_t k = static_cast<size_t>(s.k);
  const size_t k64 = (k + 63) / 64 * 64;
  thread_local Scratch scratch;
  int8_t* w = static_cast<int8_t*>(scratch.get(k64 + 18 * (k + 64)));
  if (w == nullptr) return false;
  auto dot = [&](int32_t n, int8_t*) {
    __m512i acc = _mm512_setzero_si512();
    for (size_t i = 0; i < k; i += 64) {
      const __mmask64 live = k - i >= 64 ? ~__mmask64{0} : (~__mmask64{0}) >> (64 - (k - i));
      acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(live, x + i), _mm512_maskz_loadu_epi8(live, w + i));
    }
    dots[n] = _mm512_reduce_add_epi32(acc);
  };
  sampleBlocks(s, n0, n1, reinterpret_cast<uint8_t*>(w + k64), [&](int32_t) { return w; }, dot,
               [](int32_t, int32_t, int32_t) {});
  return true;
}

// Rows [n0, n1) in blocks of 16 as sampleRowsAvx512, but each row is reordered in place to the
// tap order (per quad of 4 channels, its 4 taps-long channel runs interleaved into dwords: one
// vpermb of the quad's <= 64 bytes), and the block's rows are transposed 16 dwords at a time
// into the convolution's channel blocks (TapStores) instead of the packed layout.
QBNN_VBMI bool sampleRowsTapsAvx512(const SampleCtx& s, int32_t n0, int32_t n1, const TapOrder* orders, int count) {
  const size_t k = static_cast<size_t>(s.k);
  const int32_t taps = orders[0].taps, quads = orders[0].quads;
  const int32_t nsrc = quads * taps;
  const size_t quadBytes = static_cast<size_t>(4 * taps);
  // a block's rows in tap order (nsrc * 4 >= k bytes; 64 bytes of slack for the last quad's
  // whole-vector store), and one row in column order (taps > 1)
  const size_t rowBytes = (static_cast<size_t>(nsrc) * 4 + 63) / 64 * 64 + 64;
  const size_t colBytes = (k + 63) / 64 * 64 + 64;
  thread_local Scratch scratch;
  uint8_t* rows = static_cast<uint8_t*>(scratch.get(16 * rowBytes + colBytes + 18 * (k + 64)));
  if (rows == nullptr || taps > 16) return false;
  int8_t* col = reinterpret_cast<int8_t*>(rows + 16 * rowBytes);
  // byte 4 tap + t of a quad's dwords takes byte t taps + tap of its channels' runs
  alignas(64) uint8_t ix[64] = {};
  for (int32_t tap = 0; tap < taps; ++tap)
    for (int t = 0; t < 4; ++t) ix[4 * tap + t] = static_cast<uint8_t>(t * taps + tap);
  const __m512i perm = _mm512_load_si512(ix);
  auto row = [&](int32_t j) { return reinterpret_cast<int8_t*>(rows + static_cast<size_t>(j) * rowBytes); };
  // one tap: column order is tap order (zero past k: the last quad's missing channels)
  auto dest = [&](int32_t j) { return taps == 1 ? row(j) : col; };
  // the last quad's bytes up to k (past k: 0), every other quad's 4 taps bytes
  const size_t lastReal = k - static_cast<size_t>(quads - 1) * quadBytes;
  const __mmask64 quadMask = quadBytes >= 64 ? ~__mmask64{0} : (__mmask64{1} << quadBytes) - 1;
  const __mmask64 lastMask = lastReal >= 64 ? ~__mmask64{0} : (__mmask64{1} << lastReal) - 1;
  // Row n also fetches a 16th of the next block's destinations into L2 ahead of their stores (a
  // drawn layer's weights are seldom still cached from its previous draw).
  auto prefetchNext = [&](int32_t n) {
    const int32_t c0 = (n / 16 + 1) * 16;
    if (c0 >= n1) return;
    const int32_t c1 = std::min(n1, c0 + 16), j = n % 16;
    const __mmask16 live = static_cast<__mmask16>((1u << (c1 - c0)) - 1);
    for (int o = 0; o < count; ++o)
      TapStores(orders[o], c0, std::min(s.n, c0 + 16), live).prefetch(nsrc * j / 16, nsrc * (j + 1) / 16);
  };
  auto reorder = [&](int32_t n, int8_t*) {
    prefetchNext(n);
    if (taps == 1) return;
    // out of place, whole vectors in increasing order (each overwrites the previous one's
    // spill): a load from bytes just stored in part (masked, or across two stores) waits.
    // Locals: the byte stores may alias anything the lambda captured by reference.
    const int8_t* src = col;
    int8_t* w = row(n % 16);
    const __m512i pm = perm;
    const size_t step = quadBytes;
    const int32_t full = quads - 1;
    for (int32_t q = 0; q < full; ++q, src += step, w += step)
      _mm512_storeu_si512(w, _mm512_permutexvar_epi8(pm, _mm512_maskz_loadu_epi8(quadMask, src)));
    _mm512_storeu_si512(w, _mm512_permutexvar_epi8(pm, _mm512_maskz_loadu_epi8(lastMask, src)));
  };
  sampleBlocks(s, n0, n1, rows + 16 * rowBytes + colBytes, dest, reorder, [&](int32_t b, int32_t r0, int32_t r1) {
    const __mmask16 live = static_cast<__mmask16>(((1u << (r1 - b * 16)) - 1) & ~((1u << (r0 - b * 16)) - 1));
    const int32_t ch1 = std::min(s.n, b * 16 + 16);
    TapStores st0(orders[0], b * 16, ch1, live);
    TapStores st1(orders[count > 1 ? 1 : 0], b * 16, ch1, live);
    for (int32_t g = 0; g < nsrc; g += 16) {
      __m512i r[16];
      for (int j = 0; j < 16; ++j) r[j] = _mm512_load_si512(row(j) + static_cast<size_t>(g) * 4);
      transpose16x16(r);
      const int32_t m = std::min(16, nsrc - g);
      st0.store16(g, r, m);
      if (count > 1) st1.store16(g, r, m);
    }
  });
  return true;
}

}  // namespace qbnn

#pragma GCC pop_options

#else
namespace qbnn {
void qnormalAvx512(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count) {
  qnormalScalar(k0, k1, word0, out, count);
}
void sampleRowsAvx512(const SampleCtx& s, int32_t n0, int32_t n1) { sampleRowsScalar(s, n0, n1); }
bool sampleRowsDotAvx512(const SampleCtx&, const uint8_t*, int32_t, int32_t, int32_t*) { return false; }
bool sampleRowsTapsAvx512(const SampleCtx&, int32_t, int32_t, const TapOrder*, int) { return false; }
void qnormalMapWordsAvx512(const uint32_t* words, int8_t* out, size_t count) { qnormalMapWordsScalar(words, out, count); }
void qnormalMapWordsAvx512Search(const uint32_t* words, int8_t* out, size_t count) {
  qnormalMapWordsScalar(words, out, count);
}
void qnormalMapWordsAvx512Bytes(const uint32_t* words, int8_t* out, size_t count) {
  qnormalMapWordsScalar(words, out, count);
}
}  // namespace qbnn
#endif
