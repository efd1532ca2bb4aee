// Direct int8 convolution on AVX-512 VNNI, no im2col. Output pixels (flattened (ho, wo) of one
// image) run along the 16 lanes of a zmm and output channels along separate accumulators, so
// the NCHW output is written 16 contiguous pixels at a time and small channel counts waste no
// lanes. The input of one image and group is laid out once as "quad planes": plane q holds, for
// every padded pixel (hp, wp), the dword of 4 consecutive virtual input channels 4q..4q+3
// (padding reads the zero point; channels past the last are 0 with weight 0). One kernel tap
// (plane q, row i, column j) of 16 output pixels is then a dword vector at a constant offset
// from the pixels' positions: one load when the positions are consecutive, else two loads and
// vpermt2d (positions within 32 dwords), else a gather. Weights are broadcast dwords. When the
// pixel groups are not consecutive and several channel blocks would repeat those permutes, each
// image's groups are gathered once ([source][group][16 dwords]) and the kernels load plainly.
// The planes are built 64 pixels at a time with byte permutes (VBMI) when the CPU has them.
//
// Few input channels (the first layer: C = 1, 2, 3): virtual channel (jj, c) is channel c
// shifted jj * dilation columns, so one dword holds J taps of a kernel row (J = 4 for C = 1), the
// kernel shrinks to ceil(kw / J) columns at J times the dilation, and the quad is not 3/4 empty.
//
// The int32 sum is exact (wrapping), so the order of the taps does not matter: every output is
// bit-identical to the im2col GEMM of the reference, then the same float64 epilogue runs.
#include "common.h"
#include "pool.h"

#if QBNN_X86
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

#include "tap_stores.h"

namespace qbnn {
namespace {

// The kernels' initial accumulators: an epilogue's init(o, g) (terms it would otherwise add to
// every sum: the int32 sums wrap, so where they are added does not change them), else 0.
template <class E>
inline auto accInitOf(E& e, int o, int g, int) -> decltype(e.init(o, g)) {
  return e.init(o, g);
}
template <class E>
inline __m512i accInitOf(E&, int, int, long) {
  return _mm512_setzero_si512();
}
template <class E>
inline __m512i accInit(E& e, int o, int g) {
  return accInitOf(e, o, g, 0);
}

#include "conv_avx512_micro.inc"

struct FetchLoad {
  __m512i fetch(const uint8_t* p, int) const { return _mm512_loadu_si512(p); }
};
struct FetchPerm {
  __m512i idx[4];
  __m512i fetch(const uint8_t* p, int g) const {
    return _mm512_permutex2var_epi32(_mm512_loadu_si512(p), idx[g], _mm512_loadu_si512(p + 64));
  }
};
struct FetchGather {
  __m512i idx[4];
  __m512i fetch(const uint8_t* p, int g) const { return _mm512_i32gather_epi32(idx[g], p, 4); }
};

enum Mode : int { MODE_LOAD = 0, MODE_PERM = 1, MODE_GATHER = 2 };
constexpr int kShapeNpg[3] = {1, 2, 4};
constexpr int kShapeMaxNoc[3] = {24, 12, 6};
constexpr size_t kSlack = 2048;  // bytes readable past the last plane (tails, vpermt2d windows)

// One group of 16 output pixels: the dword position of its first pixel in a plane, the offsets
// of its 16 pixels from that one (lanes past the last pixel continue by +1) and the fetch mode.
struct PixelGroup {
  int64_t pos0;
  alignas(64) int32_t idx[16];
  int mode;
  int valid;
  // row-pool geometry (ConvGeometry::rowPool), the first group of a pair: where its 8 pooled
  // values go in the pooled plane, and how many of them exist
  int64_t pooledAt = 0;
  int pooledValid = 0;
  // wide rows (ConvGeometry::wide), the first group of a pair: its 8 pooled values go to up to 3
  // images of the layout's row, runs of lanes [lane0, lane0 + lanes) of pooled vector lanes 0-7:
  // image partImg (in the unit), pooled position partAt of its plane for lane lane0
  int parts = 0;
  int partImg[3] = {0, 0, 0}, partLane0[3] = {0, 0, 0}, partLanes[3] = {0, 0, 0};
  int64_t partAt[3] = {0, 0, 0};
};

// Everything about one convolution group that does not depend on the image.
struct GroupPlan {
  int32_t cv = 0, quads = 0, kwv = 0, dwv = 0, shift = 0;
  int32_t nsrc = 0;
  std::vector<int32_t> off;  // byte offset of each source from a pixel's position
  std::vector<int32_t> wt;  // per block: [nsrc][noc] weight dwords
  std::vector<int32_t> ones;  // [nsrc] dwords of 1 at real taps: sum_k a (when some Zw != 0)
  // One tap per dword (J = 1): sum_k a is a box sum of per-pixel channel sums (see boxSums);
  // boxOff: byte offset of each tap (row i, column jv) in a layout of one int32 plane per copy.
  std::vector<int32_t> boxOff;
  std::vector<int32_t> blkStart, blkNoc;
  std::vector<size_t> blkWt;
  std::vector<int32_t> colTerm, zw;
  std::vector<double> mult;
  std::vector<float> mult32;  // mult in float32, for channels with m32ok (the float32 u8 epilogue)
  std::vector<uint8_t> m32ok;
  bool allM32ok = false;  // every channel m32ok (the fused float32 epilogue)
  bool bigM = false;  // some |mult| >= 1/2 (the fused epilogue then clamps in float32 above too)
  bool needAsum = false;
};

int8_t packedAt(const Packed& p, int32_t o, int32_t k) {
  return static_cast<int8_t>(
      p.data[static_cast<size_t>(o / 16) * p.blockBytes() + static_cast<size_t>(k >> 2) * 64 + (o % 16) * 4 + (k & 3)]);
}

// The kernels' plain epilogue: the accumulators to `out` as [noc][npg][16] int32.
struct StoreAcc {
  int32_t* out;
  void channel(int o, __m512i a) const { _mm512_store_si512(out + o * 16, a); }
  void channel(int o, __m512i a, __m512i b) const {
    _mm512_store_si512(out + o * 32, a);
    _mm512_store_si512(out + o * 32 + 16, b);
  }
  void channel(int o, __m512i a, __m512i b, __m512i c, __m512i d) const {
    _mm512_store_si512(out + o * 64, a);
    _mm512_store_si512(out + o * 64 + 16, b);
    _mm512_store_si512(out + o * 64 + 32, c);
    _mm512_store_si512(out + o * 64 + 48, d);
  }
};

template <class F, class E>
void runKernel(int shape, int noc, const F& f, const uint8_t* const* base, const int32_t* off, int32_t nsrc,
               const int32_t* wt, E& e) {
  using K = ConvKernels<F, E>;
  (shape == 0 ? K::npg1 : shape == 1 ? K::npg2 : K::npg4)[noc - 1](f, base, off, nsrc, wt, e);
}

// Accumulators of `noc` channels x `npg` pixel groups over `nsrc` sources at offsets `off` from
// each group's position; group g reads the planes at layouts[g]. `gathered`: the layouts hold
// each group's pixels already gathered (plain loads from layouts[g]).
void tile(const int32_t* off, int32_t nsrc, bool gathered, const uint8_t* const* layouts,
          const PixelGroup* const* pgs, int npg, int noc, const int32_t* wt, int32_t* acc) {
  const int shape = npg == 4 ? 2 : npg - 1;
  const uint8_t* base[4];
  int mode = MODE_LOAD;
  for (int g = 0; g < npg; ++g) {
    base[g] = gathered ? layouts[g] : layouts[g] + pgs[g]->pos0 * 4;
    if (!gathered) mode = std::max(mode, pgs[g]->mode);
  }
  StoreAcc e{acc};
  if (mode == MODE_LOAD) {
    runKernel(shape, noc, FetchLoad{}, base, off, nsrc, wt, e);
  } else if (mode == MODE_PERM) {
    FetchPerm f;
    for (int g = 0; g < npg; ++g) f.idx[g] = _mm512_load_si512(pgs[g]->idx);
    runKernel(shape, noc, f, base, off, nsrc, wt, e);
  } else {
    FetchGather f;
    for (int g = 0; g < npg; ++g) f.idx[g] = _mm512_load_si512(pgs[g]->idx);
    runKernel(shape, noc, f, base, off, nsrc, wt, e);
  }
}

// A tile of 4 pixel groups with plain loads (the planes' groups consecutive, or gathered) whose
// epilogue runs inside the kernel (E); false when some group needs vpermt2d or a gather.
template <class E>
bool tileLoad4(const int32_t* off, int32_t nsrc, bool gathered, const uint8_t* const* layouts,
               const PixelGroup* const* pgs, int noc, const int32_t* wt, E& e) {
  const uint8_t* base[4];
  for (int g = 0; g < 4; ++g) {
    if (!gathered && pgs[g]->mode != MODE_LOAD) return false;
    base[g] = gathered ? layouts[g] : layouts[g] + pgs[g]->pos0 * 4;
  }
  ConvKernels<FetchLoad, E>::npg4[noc - 1](FetchLoad{}, base, off, nsrc, wt, e);
  return true;
}

// Where the pixel groups of one kernel call go: output element of the group's first pixel in
// channel 0 of the convolution group (+ oc * hw for channel oc), the lanes to store, and the groups' sums of activations (when some Zw != 0).
struct TileOut {
  int n;
  bool whole4;  // 4 full groups of consecutive output pixels (64 bytes of u8 output per channel)
  __mmask16 mask[4];
  size_t at[4];
  const int32_t* asum[4];
  // row pool: lane j of the pooled vector takes the column pair pick[j] / 2 of the two pairs' row
  // maxima (pair 0's values first, then pair 1's), stored at at[0] under mask[0] and, unless the
  // pairs are contiguous in the output (one store then), at at[1] - (pair 0's values) under mask[1]
  const int32_t* pick;
  bool joined;
  // wide rows: the stores instead (up to 3 a pair): byte lanes mask partMask[i] of the pooled
  // vector at partAt[i] (+ oc * phw; the address of lane 0, which may lie before the run)
  int nparts = 0;
  size_t partAt[6];
  __mmask16 partMask[6];
};

// pick tables of TileOut: kPick[v] puts the v pooled values of pair 0 first, then pair 1's.
struct PickTable {
  alignas(64) int32_t even[9][16];
  PickTable() {
    for (int v = 0; v <= 8; ++v)
      for (int j = 0; j < 16; ++j) even[v][j] = j < v ? 2 * j : 16 + 2 * (j - v);
  }
};
const PickTable kPick;

// The epilogue of a kernel call's accumulators [noc][n][16], one specialisation per output kind.
// The contract's float64 requantisation of 16 accumulators (int32 sum + column term) to u8:
// round half to even of v * m, + zo, clamped to [lo, 255]. As epilogue(): clamp to 2^30 from
// above, INT_MIN below is taken by the clamp to lo. `Big`: |m| may be 0.5 or more; below that
// |v * m| < 2^30 for every int32 v, so the clamp cannot change anything and is left out.
template <bool Big>
inline __m128i requantU8(__m512i v, __m512d m, __m512i zo, __m512i lo) {
  const __m512d big = _mm512_set1_pd(1073741824.0);
  __m512d vlo = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(v)), m);
  __m512d vhi = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1)), m);
  if (Big) {
    vlo = _mm512_min_pd(vlo, big);
    vhi = _mm512_min_pd(vhi, big);
  }
  const __m256i qlo = _mm512_cvt_roundpd_epi32(vlo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i qhi = _mm512_cvt_roundpd_epi32(vhi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512i q = _mm512_add_epi32(_mm512_inserti64x4(_mm512_castsi256_si512(qlo), qhi, 1), zo);
  return _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, lo));
}

// The same requantisation in float32, exact where it is used. f = fl32(fl32(v) m32 + zo) (one
// fma) is within 2^-22 (|v m| + zo) of the float64 t + zo; clamped to [lo, 255] first, so a lane
// that rounds differently must have |f| <= 255, |v m| < 511 and an error below 2^-13: its rounding
// can differ only if f lies within 2^-12 of a half-integer (the clamp is exact either way: out of
// range by more than the error means out of range for t, whatever the rounding). `dmax` collects
// max |f - round(f)| (vreduceps, vrangeps); a channel whose dmax reaches 1/2 - 2^-12 is redone in
// float64 by the caller. Only for 0 <= zo <= 255 and m = 0 or 2^-60 <= |m| <= 2^60 (planGroup's
// m32ok: no float32 overflow, no denormal multiplier). requantF32: the u8 values as dwords.
inline __m512i requantF32(__m512i v, __m512 m, __m512 zo, __m512 lo, __m512 hi, __m512& dmax) {
  constexpr int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512 f = _mm512_fmadd_round_ps(_mm512_cvt_roundepi32_ps(v, rn), m, zo, rn);
  const __m512 c = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
  dmax = _mm512_range_ps(dmax, _mm512_reduce_ps(c, 0x08), 0x0B);  // max(|dmax|, |c - rhe(c)|)
  return _mm512_cvt_roundps_epi32(c, rn);
}
inline __m128i requantU8F32(__m512i v, __m512 m, __m512 zo, __m512 lo, __m512 hi, __m512& dmax) {
  return _mm512_cvtepi32_epi8(requantF32(v, m, zo, lo, hi, dmax));
}
constexpr float kTieMargin = 0.5f - 1.0f / 4096;

// requantU8F32 of 4 vectors into 64 bytes (vector k at bytes 16k..16k+15), with the tie check's
// maximum of the 4 in `dmax`. Only the lower clamp is in float32 (lanes below it would otherwise
// fail the tie check for nothing); the upper one is the packs' signed saturation (packssdw, then
// packuswb: exactly min(255, x) for x >= 0), so a lane above 255 only makes the tie check more
// cautious. `Big` (some |m| >= 1/2): f may pass 2^31, which the conversion does not saturate
// (it returns INT_MIN), so f is clamped to 255 first. The packs leave the dwords in in-lane
// order, undone by one dword permute (fewer uops than 4 vpmovdb + 3 inserts).
template <bool Big>
__attribute__((always_inline)) inline __m512i requantU8F32x4(__m512i v0, __m512i v1, __m512i v2, __m512i v3, __m512 m,
                                                             __m512 zo, __m512 lo, __m512& dmax) {
  constexpr int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  __m512 c[4];
  const __m512i v[4] = {v0, v1, v2, v3};
  for (int k = 0; k < 4; ++k) {
    c[k] = _mm512_max_ps(_mm512_fmadd_round_ps(_mm512_cvt_roundepi32_ps(v[k], rn), m, zo, rn), lo);
    if (Big) c[k] = _mm512_min_ps(c[k], _mm512_set1_ps(255.0f));
  }
  // max |c - rhe(c)| of the 4 (vrangeps 0x0B: the larger magnitude, sign cleared)
  const __m512 d01 = _mm512_range_ps(_mm512_reduce_ps(c[0], 0x08), _mm512_reduce_ps(c[1], 0x08), 0x0B);
  const __m512 d23 = _mm512_range_ps(_mm512_reduce_ps(c[2], 0x08), _mm512_reduce_ps(c[3], 0x08), 0x0B);
  dmax = _mm512_range_ps(d01, d23, 0x0B);
  auto q = [&](int k) { return _mm512_cvt_roundps_epi32(c[k], rn); };
  const __m512i w01 = _mm512_packs_epi32(q(0), q(1)), w23 = _mm512_packs_epi32(q(2), q(3));
  // 128-bit lane L of the bytes: dwords [v0 L, v1 L, v2 L, v3 L]: gather each vector's 4 dwords
  const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  return _mm512_permutexvar_epi32(order, _mm512_packus_epi16(w01, w23));
}

// The u8 epilogue of a tile of 4 pixel groups inside the kernel (64 output bytes a channel: one
// store when the groups are consecutive in the output, else 16 a group under its mask), while the accumulators are in registers (no store and reload of them): requantU8F32
// per channel (every channel m32ok); a channel with a lane within 2^-12 of a rounding half
// leaves its raw accumulators at raw[o][4][16] and its bit in `redo` instead (the caller redoes
// it in float64). Scalars are read per channel through pointers set before the kernel. `Big`:
// some channel's |m| >= 1/2 (requantU8F32x4).
template <bool Asum, bool Big>
struct FusedU8 {
  const float* m32;  // the block's channels
  const int32_t* ct;
  const int32_t* zw;
  const int32_t* const* asum;  // the tile's 4 groups' activation sums (Asum)
  uint8_t* out;  // the block's channel 0 (+ o * hw for channel o)
  size_t hw;
  const TileOut* t;  // where the groups go: at[k] under mask[k], or 64 bytes at at[0] (whole4)
  int32_t* raw;
  float zo, lo;
  uint32_t redo = 0;
  // the accumulators start at the column term - Zw * the group's activation sums: each channel's
  // sums come out of the kernel whole (one vpaddd a vector less here)
  __m512i init(int o, int g) const {
    const __m512i c = _mm512_set1_epi32(ct[o]);
    if (!Asum) return c;
    return _mm512_sub_epi32(c, _mm512_mullo_epi32(_mm512_set1_epi32(zw[o]), _mm512_load_si512(asum[g])));
  }
  // inlined into the kernel (GCC had stopped inlining it: 0.98-0.99x the time inlined)
  __attribute__((always_inline)) void channel(int o, __m512i a0, __m512i a1, __m512i a2, __m512i a3) {
    const __m512 m = _mm512_set1_ps(m32[o]), z = _mm512_set1_ps(zo), l = _mm512_set1_ps(lo);
    __m512 d;
    const __m512i b = requantU8F32x4<Big>(a0, a1, a2, a3, m, z, l, d);
    if (_mm512_cmp_ps_mask(d, _mm512_set1_ps(kTieMargin), _CMP_GE_OQ) == 0) {
      uint8_t* dst = out + static_cast<size_t>(o) * hw;
      if (t->whole4) {
        _mm512_storeu_si512(dst + t->at[0], b);
      } else {  // groups of different images, or a last partial one
        _mm_mask_storeu_epi8(dst + t->at[0], t->mask[0], _mm512_castsi512_si128(b));
        _mm_mask_storeu_epi8(dst + t->at[1], t->mask[1], _mm512_extracti32x4_epi32(b, 1));
        _mm_mask_storeu_epi8(dst + t->at[2], t->mask[2], _mm512_extracti32x4_epi32(b, 2));
        _mm_mask_storeu_epi8(dst + t->at[3], t->mask[3], _mm512_extracti32x4_epi32(b, 3));
      }
      return;
    }
    // the raw sums, as the float64 redo (ChannelSums) takes them
    StoreAcc{raw}.channel(o, _mm512_sub_epi32(a0, init(o, 0)), _mm512_sub_epi32(a1, init(o, 1)),
                          _mm512_sub_epi32(a2, init(o, 2)), _mm512_sub_epi32(a3, init(o, 3)));
    redo |= 1u << o;
  }
};

// Software-pipelined u8 epilogue (the pipelined kernels, PipedKernels): a tile's accumulators,
// corrected as FusedU8's (init), are left in a small buffer (StashU8) and requantised by the next
// tile's kernel between its segments of sources (PendingU8::channel), where the epilogue's
// float operations overlap that kernel's vpdpbusd instead of following its own. Same arithmetic
// as FusedU8 (requantU8F32x4, its tie check, the float64 redo requantU8 on the same sums).
template <bool Asum>
struct StashU8 {
  const int32_t* ct;  // the block's channels
  const int32_t* zw;
  const int32_t* const* asum;
  int32_t* stash;  // [channel][4][16]
  __m512i init(int o, int g) const {
    const __m512i c = _mm512_set1_epi32(ct[o]);
    if (!Asum) return c;
    return _mm512_sub_epi32(c, _mm512_mullo_epi32(_mm512_set1_epi32(zw[o]), _mm512_load_si512(asum[g])));
  }
  __attribute__((always_inline)) void channel(int o, __m512i a0, __m512i a1, __m512i a2, __m512i a3) {
    int32_t* d = stash + o * 64;
    _mm512_store_si512(d, a0);
    _mm512_store_si512(d + 16, a1);
    _mm512_store_si512(d + 32, a2);
    _mm512_store_si512(d + 48, a3);
  }
};

// The channels of the previous tile still to requantise (n of them, 0: none).
struct PendingU8 {
  int n = 0;
  const int32_t* stash = nullptr;
  const float* m32 = nullptr;  // the tile's block's channels
  const double* mult = nullptr;
  uint8_t* out = nullptr;  // the block's channel 0 (+ o * hw for channel o)
  size_t hw = 0;
  TileOut t{};
  float zo = 0, lo = 0;
  int32_t zoI = 0, loI = 0;
  bool big = false;
  int count() const { return n; }
  template <bool Big>
  __attribute__((always_inline)) void finish(int o) {
    const int32_t* v = stash + o * 64;
    const __m512i v0 = _mm512_load_si512(v), v1 = _mm512_load_si512(v + 16), v2 = _mm512_load_si512(v + 32),
                  v3 = _mm512_load_si512(v + 48);
    __m512 d;
    const __m512i b = requantU8F32x4<Big>(v0, v1, v2, v3, _mm512_set1_ps(m32[o]), _mm512_set1_ps(zo), _mm512_set1_ps(lo), d);
    uint8_t* dst = out + static_cast<size_t>(o) * hw;
    if (_mm512_cmp_ps_mask(d, _mm512_set1_ps(kTieMargin), _CMP_GE_OQ) == 0) {
      if (t.whole4) {
        _mm512_storeu_si512(dst + t.at[0], b);
      } else {
        _mm_mask_storeu_epi8(dst + t.at[0], t.mask[0], _mm512_castsi512_si128(b));
        _mm_mask_storeu_epi8(dst + t.at[1], t.mask[1], _mm512_extracti32x4_epi32(b, 1));
        _mm_mask_storeu_epi8(dst + t.at[2], t.mask[2], _mm512_extracti32x4_epi32(b, 2));
        _mm_mask_storeu_epi8(dst + t.at[3], t.mask[3], _mm512_extracti32x4_epi32(b, 3));
      }
      return;
    }
    redo(o, Big);
  }
  // the float64 requantisation of channel o (a lane came near a rounding half)
  __attribute__((noinline)) void redo(int o, bool bigM) const {
    const __m512d m = _mm512_set1_pd(mult[o]);
    const __m512i z = _mm512_set1_epi32(zoI), l = _mm512_set1_epi32(loI);
    uint8_t* dst = out + static_cast<size_t>(o) * hw;
    for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_load_si512(stash + o * 64 + j * 16);
      _mm_mask_storeu_epi8(dst + t.at[j], t.mask[j], bigM ? requantU8<true>(v, m, z, l) : requantU8<false>(v, m, z, l));
    }
  }
  __attribute__((always_inline)) void channel(int o) {
    if (big) finish<true>(o);
    else finish<false>(o);
  }
  void flush() {
    for (int o = 0; o < n; ++o) channel(o);
    n = 0;
  }
};

// Channel oc's (accumulator row o's) corrected int32 sums: sum(k) = the accumulators of pixel
// group k of the tile + the column term - Zw * the group's activation sums.
template <bool Asum>
struct ChannelSums {
  const int32_t* acc;
  const TileOut& t;
  __m512i zw, ct;
  ChannelSums(const GroupPlan& gp, const int32_t* accs, int o, int32_t oc, const TileOut& tile)
      : acc(accs + o * tile.n * 16),
        t(tile),
        zw(_mm512_set1_epi32(gp.zw[oc])),
        ct(_mm512_set1_epi32(gp.colTerm[oc])) {}
  __m512i operator()(int k) const {
    __m512i v = _mm512_load_si512(acc + k * 16);
    if (Asum) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(zw, _mm512_load_si512(t.asum[k])));
    return _mm512_add_epi32(v, ct);
  }
};

// The u8 epilogue of one channel in float32 (requantU8F32); false when some lane came within
// 2^-12 of a rounding half (the caller then redoes the channel in float64, overwriting it).
template <bool Asum>
bool epilogueChannelF32(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* acc, int o, int32_t oc, size_t hw,
                        const TileOut& t) {
  const __m512 zo = _mm512_set1_ps(static_cast<float>(a.zo));
  const __m512 lo = _mm512_set1_ps(static_cast<float>(a.relu ? a.zo : 0)), hi = _mm512_set1_ps(255.0f);
  const __m512 m = _mm512_set1_ps(gp.mult32[oc]);
  __m512 dmax = _mm512_setzero_ps();
  const ChannelSums<Asum> sum(gp, acc, o, oc, t);
  uint8_t* out = static_cast<uint8_t*>(a.out) + static_cast<size_t>(oc) * hw;
  if (t.whole4) {  // 64 consecutive output bytes: one store
    const __m512i b = std::fabs(gp.mult[oc]) < 0.5 ? requantU8F32x4<false>(sum(0), sum(1), sum(2), sum(3), m, zo, lo, dmax)
                                                    : requantU8F32x4<true>(sum(0), sum(1), sum(2), sum(3), m, zo, lo, dmax);
    _mm512_storeu_si512(out + t.at[0], b);
  } else {
    for (int k = 0; k < t.n; ++k) {
      const __m128i b = requantU8F32(sum(k), m, zo, lo, hi, dmax);
      if (t.mask[k] == 0xffff) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + t.at[k]), b);
      else _mm_mask_storeu_epi8(out + t.at[k], t.mask[k], b);
    }
  }
  return _mm512_cmp_ps_mask(dmax, _mm512_set1_ps(kTieMargin), _CMP_GE_OQ) == 0;
}

template <int Kind, bool Asum, bool Big>
void epilogueChannel(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* acc, int o, int32_t oc, size_t hw,
                     const TileOut& t) {
  const __m512i zo = _mm512_set1_epi32(a.zo), lo = _mm512_set1_epi32(a.relu ? a.zo : 0);
  const __m512d m = _mm512_set1_pd(gp.mult[oc]);
  const ChannelSums<Asum> sum(gp, acc, o, oc, t);
  if (Kind == OUT_U8 && t.whole4) {  // 64 consecutive output bytes: one store
    __m512i b = _mm512_castsi128_si512(requantU8<Big>(sum(0), m, zo, lo));
    b = _mm512_inserti32x4(b, requantU8<Big>(sum(1), m, zo, lo), 1);
    b = _mm512_inserti32x4(b, requantU8<Big>(sum(2), m, zo, lo), 2);
    b = _mm512_inserti32x4(b, requantU8<Big>(sum(3), m, zo, lo), 3);
    _mm512_storeu_si512(static_cast<uint8_t*>(a.out) + t.at[0] + static_cast<size_t>(oc) * hw, b);
    return;
  }
  for (int k = 0; k < t.n; ++k) {
    const __m512i v = sum(k);
    const size_t at = t.at[k] + static_cast<size_t>(oc) * hw;
    if (Kind == OUT_I32) {
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(a.out) + at, t.mask[k], v);
      continue;
    }
    if (Kind == OUT_F32) {
      const __m512d vlo = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(v)), m);
      const __m512d vhi = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1)), m);
      const __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(vlo)), _mm512_cvtpd_ps(vhi), 1);
      _mm512_mask_storeu_ps(static_cast<float*>(a.out) + at, t.mask[k], f);
      continue;
    }
    const __m128i b = requantU8<Big>(v, m, zo, lo);
    uint8_t* dst = static_cast<uint8_t*>(a.out) + at;
    if (t.mask[k] == 0xffff) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), b);
    else _mm_mask_storeu_epi8(dst, t.mask[k], b);
  }
}

template <int Kind, bool Asum>
void epilogueTileT(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* acc, int noc, int32_t o0, size_t hw,
                   const TileOut& t) {
  for (int o = 0; o < noc; ++o) {
    const int32_t oc = o0 + o;
    if (Kind == OUT_U8 && gp.m32ok[oc] && epilogueChannelF32<Asum>(a, gp, acc, o, oc, hw, t)) continue;
    if (Kind == OUT_U8 && std::fabs(gp.mult[oc]) < 0.5) epilogueChannel<Kind, Asum, false>(a, gp, acc, o, oc, hw, t);
    else epilogueChannel<Kind, Asum, true>(a, gp, acc, o, oc, hw, t);
  }
}

void epilogueTile(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* acc, int noc, int32_t o0, size_t hw,
                  const TileOut& t) {
  if (gp.needAsum) {
    if (a.outKind == OUT_U8) epilogueTileT<OUT_U8, true>(a, gp, acc, noc, o0, hw, t);
    else if (a.outKind == OUT_F32) epilogueTileT<OUT_F32, true>(a, gp, acc, noc, o0, hw, t);
    else epilogueTileT<OUT_I32, true>(a, gp, acc, noc, o0, hw, t);
  } else {
    if (a.outKind == OUT_U8) epilogueTileT<OUT_U8, false>(a, gp, acc, noc, o0, hw, t);
    else if (a.outKind == OUT_F32) epilogueTileT<OUT_F32, false>(a, gp, acc, noc, o0, hw, t);
    else epilogueTileT<OUT_I32, false>(a, gp, acc, noc, o0, hw, t);
  }
}

// The 2x2 stride-2 max pool of a kernel tile's sums while they are in L1 (row-pool geometry):
// groups (0, 1), and (2, 3) when there are 4, are rows 2y and 2y + 1 of the same 16 columns, so
// the max of the two rows and then of each column pair gives 8 pooled values a pair; both pairs'
// values are requantised once as one vector (exact: requantisation is monotone, m >= 0) and
// stored at t.at[pair] (+ oc * phw) under t.mask[pair]. Every channel's pooled sums first, then
// their requantisations (independent chains): in float32 (requantU8F32) when every channel of
// the block allows it, with one tie check for all of them (rarely failing: the block is then
// redone in float64).
template <bool Asum>
void poolTileT(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* acc, int noc, int32_t o0, size_t phw,
               const TileOut& t) {
  alignas(64) int32_t pooled[24 * 16];
  const __m512i even = _mm512_load_si512(t.pick);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int o = 0; o < noc; ++o) {
    const ChannelSums<Asum> sum(gp, acc, o, o0 + o, t);
    const __m512i r0 = _mm512_max_epi32(sum(0), sum(1));
    const __m512i r1 = t.n == 4 ? _mm512_max_epi32(sum(2), sum(3)) : r0;
    _mm512_store_si512(pooled + o * 16, _mm512_max_epi32(_mm512_permutex2var_epi32(r0, even, r1),
                                                          _mm512_permutex2var_epi32(r0, odd, r1)));
  }
  const uintptr_t out0 = reinterpret_cast<uintptr_t>(a.out);
  auto store = [&](int32_t oc, __m128i q) {
    const uintptr_t out = out0 + static_cast<uintptr_t>(oc) * phw;
    if (t.nparts > 0) {
      for (int i = 0; i < t.nparts; ++i) _mm_mask_storeu_epi8(reinterpret_cast<void*>(out + t.partAt[i]), t.partMask[i], q);
      return;
    }
    _mm_mask_storeu_epi8(reinterpret_cast<void*>(out + t.at[0]), t.mask[0], q);
    if (!t.joined) _mm_mask_storeu_epi8(reinterpret_cast<void*>(out + t.at[1]), t.mask[1], q);
  };
  bool all32 = true;
  for (int o = 0; o < noc; ++o) all32 = all32 && gp.m32ok[o0 + o];
  if (all32) {
    const __m512 zo32 = _mm512_set1_ps(static_cast<float>(a.zo));
    const __m512 lo32 = _mm512_set1_ps(static_cast<float>(a.relu ? a.zo : 0)), hi32 = _mm512_set1_ps(255.0f);
    __m512 dmax = _mm512_setzero_ps();
    for (int o = 0; o < noc; ++o)
      store(o0 + o, requantU8F32(_mm512_load_si512(pooled + o * 16), _mm512_set1_ps(gp.mult32[o0 + o]), zo32, lo32,
                                 hi32, dmax));
    if (_mm512_cmp_ps_mask(dmax, _mm512_set1_ps(kTieMargin), _CMP_GE_OQ) == 0) return;
  }
  const __m512i zo = _mm512_set1_epi32(a.zo), lo = _mm512_set1_epi32(a.relu ? a.zo : 0);
  for (int o = 0; o < noc; ++o) {
    const int32_t oc = o0 + o;
    const __m512i w = _mm512_load_si512(pooled + o * 16);
    const __m512d m = _mm512_set1_pd(gp.mult[oc]);
    store(oc, std::fabs(gp.mult[oc]) < 0.5 ? requantU8<false>(w, m, zo, lo) : requantU8<true>(w, m, zo, lo));
  }
}

// The 2x2 stride-2 max pool of one channel's int32 sums `v` (Ho x Wo, already corrected: the
// OUT_I32 epilogue), requantised once per window to u8 at `out` ((Ho / 2) x (Wo / 2)). Requantising
// is monotone non-decreasing in the sum (m >= 0), so this equals requantising then pooling.
template <bool Big>
void poolRequantChannel(const int32_t* v, int64_t Ho, int64_t Wo, double mult, int32_t zo, int32_t lo, uint8_t* out) {
  const int64_t hp = Ho / 2, wp = Wo / 2;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512d m = _mm512_set1_pd(mult);
  const __m512i zoV = _mm512_set1_epi32(zo), loV = _mm512_set1_epi32(lo);
  for (int64_t y = 0; y < hp; ++y) {
    const int32_t* r0 = v + 2 * y * Wo;
    const int32_t* r1 = r0 + Wo;
    for (int64_t x0 = 0; x0 < wp; x0 += 16) {
      const int64_t n = std::min<int64_t>(16, wp - x0);
      const __mmask16 m0 = static_cast<__mmask16>(n >= 8 ? 0xffff : (1u << (2 * n)) - 1u);
      const __mmask16 m1 = static_cast<__mmask16>(n <= 8 ? 0 : n >= 16 ? 0xffff : (1u << (2 * n - 16)) - 1u);
      const __m512i a = _mm512_max_epi32(_mm512_maskz_loadu_epi32(m0, r0 + 2 * x0), _mm512_maskz_loadu_epi32(m0, r1 + 2 * x0));
      const __m512i b =
          _mm512_max_epi32(_mm512_maskz_loadu_epi32(m1, r0 + 2 * x0 + 16), _mm512_maskz_loadu_epi32(m1, r1 + 2 * x0 + 16));
      const __m512i w = _mm512_max_epi32(_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b));
      const __m128i q = requantU8<Big>(w, m, zoV, loV);
      _mm_mask_storeu_epi8(out + y * wp + x0, static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1u), q);
    }
  }
}

// 16 bytes of each of 4 rows -> 16 dwords (byte k of dword i = rows[k][i]) at dst (64 bytes).
inline void interleave4(const __m128i rows[4], void* dst) {
  const __m128i lo01 = _mm_unpacklo_epi8(rows[0], rows[1]), hi01 = _mm_unpackhi_epi8(rows[0], rows[1]);
  const __m128i lo23 = _mm_unpacklo_epi8(rows[2], rows[3]), hi23 = _mm_unpackhi_epi8(rows[2], rows[3]);
  __m128i* d = static_cast<__m128i*>(dst);
  _mm_storeu_si128(d + 0, _mm_unpacklo_epi16(lo01, lo23));
  _mm_storeu_si128(d + 1, _mm_unpackhi_epi16(lo01, lo23));
  _mm_storeu_si128(d + 2, _mm_unpacklo_epi16(hi01, hi23));
  _mm_storeu_si128(d + 3, _mm_unpackhi_epi16(hi01, hi23));
}

// Where layout pixel (r, w) of the planes reads the input: row r * rowStep + rowOff, column
// w * colStep + colOff (+ the virtual channel's shift). A 1x1 convolution reads only the pixels
// it uses (steps = its strides) and then runs as a stride-1 convolution over Ho x Wo planes.
struct LayoutMap {
  int64_t hp, wp, rowStep, colStep, rowOff, colOff;
};

// Quad planes of image b, group g: plane q, layout pixel (r, w) -> the 4 bytes of virtual
// channels 4q..4q+3 (outside the image: the zero point; past the last channel: 0). 16 columns
// at a time: each channel row is a masked load (masked-off lanes take the zero point and cannot
// fault; for column step 2, 32 bytes whose even bytes are kept), then two rounds of unpacking
// interleave the 4 rows into dwords.
void buildLayout(const ConvDirectArgs& a, const GroupPlan& gp, const LayoutMap& m, int64_t b, int64_t g,
                 uint8_t* layout) {
  const int64_t cg = a.C / a.G;
  const int64_t plane = m.hp * m.wp;
  const int64_t chunks = (m.wp + 15) / 16;
  const __m128i zaV = _mm_set1_epi8(static_cast<char>(a.za));
  const __m256i zaV2 = _mm256_set1_epi8(static_cast<char>(a.za));
  thread_local std::vector<uint64_t> maskTab;
  thread_local std::vector<int64_t> colTab;
  maskTab.resize(static_cast<size_t>(chunks) * 4);
  colTab.resize(static_cast<size_t>(chunks) * 4);
  // plain pointers: GCC otherwise looks the thread-local tables up (__tls_get_addr) in the loops
  uint64_t* const masks = maskTab.data();
  int64_t* const cols = colTab.data();
  for (int32_t q = 0; q < gp.quads; ++q) {
    const uint8_t* src[4];
    for (int k = 0; k < 4; ++k) {
      const int32_t v = 4 * q + k;
      src[k] = v < gp.cv ? a.x + (b * a.C + g * cg + v % cg) * a.H * a.W : nullptr;
      const int64_t shift = v < gp.cv ? (v / cg) * a.dw + m.colOff : 0;
      // Per chunk: the source column of lane 0 and the loaded bytes that are inside the image.
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t col0 = c * 16 * m.colStep + shift;
        uint64_t bits = 0;
        for (int l = 0; l < 16; ++l) {
          const int64_t col = col0 + l * m.colStep;
          if (col >= 0 && col < a.W) bits |= uint64_t{1} << (l * m.colStep);
        }
        masks[c * 4 + k] = bits;
        cols[c * 4 + k] = col0;
      }
    }
    for (int64_t r = 0; r < m.hp; ++r) {
      const int64_t y = r * m.rowStep + m.rowOff;
      const bool rowIn = y >= 0 && y < a.H;
      uint8_t* dst = layout + (q * plane + r * m.wp) * 4;
      // The last store may run past this row: the next row overwrites it, the slack absorbs
      // the last one.
      for (int64_t c = 0; c < chunks; ++c) {
        __m128i row[4];
        for (int k = 0; k < 4; ++k) {
          const uint64_t bits = masks[c * 4 + k];
          if (src[k] == nullptr) {
            row[k] = _mm_setzero_si128();
          } else if (!rowIn || bits == 0) {
            row[k] = zaV;
          } else {
            const uintptr_t at = reinterpret_cast<uintptr_t>(src[k]) +
                                 static_cast<uintptr_t>(y * a.W + cols[c * 4 + k]);
            const void* ptr = reinterpret_cast<const void*>(at);
            if (m.colStep == 1) {
              row[k] = _mm_mask_loadu_epi8(zaV, static_cast<__mmask16>(bits), ptr);
            } else if (m.colStep == 2) {
              row[k] = _mm256_cvtepi16_epi8(_mm256_mask_loadu_epi8(zaV2, static_cast<__mmask32>(bits), ptr));
            } else {
              alignas(16) uint8_t lane[16];
              for (int l = 0; l < 16; ++l)
                lane[l] = (bits >> (l * m.colStep)) & 1 ? static_cast<const uint8_t*>(ptr)[l * m.colStep]
                                                          : static_cast<uint8_t>(a.za);
              row[k] = _mm_load_si128(reinterpret_cast<const __m128i*>(lane));
            }
          }
        }
        interleave4(row, dst + c * 64);
      }
    }
  }
}

// The fast plane build for unit column and row steps (every convolution but a strided 1x1):
// layout pixels are cut into chunks of 64 consecutive pixels (across rows), and the source bytes
// of one channel for a chunk lie in a window of at most 128 consecutive input bytes, so each
// channel's chunk is one or two masked loads and one byte permute (vpermb / vpermt2b), padding
// blended in as the zero point. The permute puts pixel 16j + 4L + m at byte 16L + 4j + m, so the
// two rounds of in-lane unpacking that interleave 4 channels into dwords leave register j
// holding pixels 16j..16j+15 in order.
struct ChunkMap {
  int64_t src0;  // first input byte of the window (offset inside the channel plane)
  uint64_t load0, load1;  // bytes of the two 64-byte halves of the window inside the plane
  uint64_t valid;  // lanes inside the image (the others take the zero point)
  int32_t wide;  // 1: the window needs 128 bytes (vpermt2b)
  alignas(64) uint8_t idx[64];
};

// Chunk maps of one virtual channel copy whose layout pixel px reads input byte srcOf(px) of its
// channel (-1: padding, the zero point); false when some window exceeds 128 bytes.
template <class SrcOf>
bool mapChunks(const ConvDirectArgs& a, int64_t plane, const SrcOf& srcOf, std::vector<ChunkMap>& out) {
  const int64_t chunks = (plane + 63) / 64, hw = a.H * a.W;
  out.resize(static_cast<size_t>(chunks));
  for (int64_t c = 0; c < chunks; ++c) {
    ChunkMap& cm = out[static_cast<size_t>(c)];
    int64_t src[64];
    int64_t lo = -1, hi = -1;
    for (int i = 0; i < 64; ++i) {
      const int64_t px = c * 64 + i;
      src[i] = px < plane ? srcOf(px) : -1;
      if (src[i] >= 0) {  // not monotone in i in pool order
        lo = lo < 0 ? src[i] : std::min(lo, src[i]);
        hi = std::max(hi, src[i]);
      }
    }
    cm.src0 = lo < 0 ? 0 : lo;
    if (lo >= 0 && hi - lo >= 128) return false;
    cm.wide = lo >= 0 && hi - lo >= 64 ? 1 : 0;
    cm.valid = 0;
    cm.load0 = cm.load1 = 0;
    for (int i = 0; i < 64; ++i) {
      const int pos = 16 * ((i >> 2) & 3) + 4 * (i >> 4) + (i & 3);
      cm.idx[pos] = src[i] >= 0 ? static_cast<uint8_t>(src[i] - cm.src0) : 0;
      if (src[i] >= 0) cm.valid |= uint64_t{1} << pos;
    }
    if (lo >= 0)
      for (int i = 0; i < 128; ++i)
        if (cm.src0 + i < hw && cm.src0 + i <= hi) (i < 64 ? cm.load0 : cm.load1) |= uint64_t{1} << (i & 63);
  }
  return true;
}

// VBMI (vpermb) only here: the CPU check is cpuFeatures().avx512vbmi.
__attribute__((target("avx512vbmi"), noinline)) void buildLayoutFast(const ConvDirectArgs& a, const GroupPlan& gp, const LayoutMap& m,
                     const std::vector<ChunkMap>* maps, int64_t b, int64_t g, uint8_t* layout) {
  const int64_t cg = a.C / a.G, plane = m.hp * m.wp, hw = a.H * a.W;
  const int64_t chunks = (plane + 63) / 64;
  const __m512i zaV = _mm512_set1_epi8(static_cast<char>(a.za));
  for (int32_t q = 0; q < gp.quads; ++q) {
    const uint8_t* src[4];
    const ChunkMap* cms[4];
    for (int k = 0; k < 4; ++k) {
      const int32_t v = 4 * q + k;
      src[k] = v < gp.cv ? a.x + (b * a.C + g * cg + v % cg) * hw : nullptr;
      cms[k] = v < gp.cv ? maps[v / cg].data() : nullptr;
    }
    uint8_t* dst = layout + q * plane * 4;
    for (int64_t c = 0; c < chunks; ++c, dst += 256) {
      __m512i r[4];
      for (int k = 0; k < 4; ++k) {
        if (src[k] == nullptr) {
          r[k] = _mm512_setzero_si512();
          continue;
        }
        const ChunkMap& cm = cms[k][c];
        const uint8_t* p = src[k] + cm.src0;
        const __m512i idx = _mm512_load_si512(cm.idx);
        __m512i v = _mm512_maskz_loadu_epi8(cm.load0, p);
        if (cm.wide) v = _mm512_permutex2var_epi8(v, idx, _mm512_maskz_loadu_epi8(cm.load1, p + 64));
        else v = _mm512_permutexvar_epi8(idx, v);
        r[k] = _mm512_mask_blend_epi8(cm.valid, zaV, v);
      }
      const __m512i t0 = _mm512_unpacklo_epi8(r[0], r[1]), t1 = _mm512_unpackhi_epi8(r[0], r[1]);
      const __m512i t2 = _mm512_unpacklo_epi8(r[2], r[3]), t3 = _mm512_unpackhi_epi8(r[2], r[3]);
      _mm512_storeu_si512(dst, _mm512_unpacklo_epi16(t0, t2));
      _mm512_storeu_si512(dst + 64, _mm512_unpackhi_epi16(t0, t2));
      _mm512_storeu_si512(dst + 128, _mm512_unpacklo_epi16(t1, t3));
      _mm512_storeu_si512(dst + 192, _mm512_unpackhi_epi16(t1, t3));
    }
  }
}

// Pixel groups per kernel call: the most the batch tile allows (each fetched pixel vector then
// feeds `noc` vpdpbusd and each broadcast weight `npg`). Depends on the geometry only.
int chooseShape(int64_t groupsOfPixels) {
  if (groupsOfPixels >= 4) return 2;
  if (groupsOfPixels >= 2) return 1;
  return 0;
}

// Taps of a kernel row per dword (J): J shifted copies per input channel when that needs fewer
// dwords per tap row (few input channels).
int32_t tapsPerDword(int64_t cg, int64_t kw) {
  int32_t bestJ = 1;
  int64_t bestCost = -1;
  for (int32_t j : {1, 2, 4}) {
    if (j > 1 && (j > kw || cg * j > 4)) continue;
    const int64_t cost = (cg * j + 3) / 4 * ((kw + j - 1) / j);
    if (bestCost < 0 || cost < bestCost) {
      bestCost = cost;
      bestJ = j;
    }
  }
  return bestJ;
}

// The weight dwords of one tap per dword (J = 1): source s = q * taps1 + tap, byte t of its
// dword is weight k = (4q + t) * taps1 + tap. The pack holds byte k & 3 of 16 channels' dwords
// in its 64-byte VNNI group k >> 2, so one source's dwords of 16 channels are byte k & 3 of 4
// group vectors moved to byte t (a masked in-lane vpshufb each); each channel block then takes
// its lanes (one masked store).
TapOrder tapOrderOf(GroupPlan& gp, int64_t cg, int32_t taps1) {
  TapOrder o;
  o.wt = gp.wt.data();
  o.blkStart = gp.blkStart.data();
  o.blkNoc = gp.blkNoc.data();
  o.blkWt = gp.blkWt.data();
  o.nblk = static_cast<int32_t>(gp.blkStart.size());
  o.quads = gp.quads;
  o.taps = taps1;
  o.cg = static_cast<int32_t>(cg);
  return o;
}

void reorderTaps(const Packed& p, int64_t cg, int32_t taps1, int64_t og, GroupPlan& gp) {
  const TapOrder order = tapOrderOf(gp, cg, taps1);
  const __m512i dwordBase = _mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0);
  __m512i from[4];  // byte 4i + t of each lane takes byte 4i + f
  for (int f = 0; f < 4; ++f) from[f] = _mm512_add_epi8(dwordBase, _mm512_set1_epi8(static_cast<char>(f)));
  for (int32_t pb = 0; pb * 16 < og; ++pb) {
    const uint8_t* blk = p.data + static_cast<size_t>(pb) * p.blockBytes();
    const TapStores st(order, pb * 16, static_cast<int32_t>(std::min<int64_t>(og, pb * 16 + 16)));
    for (int32_t q = 0; q < gp.quads; ++q)
      for (int32_t tap = 0; tap < taps1; ++tap) {
        __m512i d = _mm512_setzero_si512();
        for (int t = 0; t < 4 && 4 * q + t < cg; ++t) {
          const int32_t k = (4 * q + t) * taps1 + tap;
          const __m512i g = _mm512_loadu_si512(blk + static_cast<size_t>(k >> 2) * 64);
          d = _mm512_mask_shuffle_epi8(d, 0x1111111111111111ull << t, g, from[k & 3]);
        }
        st.store(q * taps1 + tap, d);
      }
  }
}

// Phase planes (stride 2, see ConvGeometry): padded pixel (y, x) is pixel (y / 2, x / 2) of phase
// (py, px) = (y & 1, x & 1); kernel tap (i, j) of output (ho, wo) is pixel (ho + i / 2, wo + j / 2)
// of phase (i & 1, j & 1).

// Where the phase planes lie in a layout (dwords): sets of quad planes of hp2 rows, rowStride
// apart. Separate: 4 sets, one per phase, rows of wp2 cells. Joined: 2 sets, one per row phase,
// whose rows hold column phase 0's wp2 cells and then column phase 1's, so that a padded row's
// two phase rows are one run of 2 wp2 cells (the build stores it with half the stores).
struct PhaseLayout {
  int64_t hp2 = 0, wp2 = 0, rowStride = 0, plane = 0;
  bool joined = false;
  PhaseLayout() = default;
  PhaseLayout(int64_t hp, int64_t wp, bool join)
      : hp2((hp + 1) / 2), wp2((wp + 1) / 2), rowStride(join ? 2 * wp2 : wp2), plane(hp2 * rowStride), joined(join) {}
  int32_t sets() const { return joined ? 2 : 4; }
  // cell (r, c) of phase (py, px), quad q of `quads`
  int64_t at(int32_t py, int32_t px, int32_t quads, int32_t q, int64_t r, int64_t c) const {
    const int64_t set = joined ? py : 2 * py + px;
    return (set * quads + q) * plane + r * rowStride + (joined && px ? wp2 : 0) + c;
  }
};

// The phase planes (laid out as L) of full padded planes [quad][hp][wp]: each row
// split into its even and odd dwords 32 at a time (vpermt2d; reads may run past a row into the
// next or the slack, stores are masked). Cells no padded pixel maps to (the last row of phases
// 2, 3 when hp is odd, the last column of phases 1, 3 when wp is odd) are set to 0: only lanes
// of no output read them.
void splitPhases(const uint8_t* full, int32_t quads, int64_t hp, int64_t wp, const PhaseLayout& L, uint8_t* out) {
  const int64_t hp2 = L.hp2, wp2 = L.wp2;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  int32_t* o = reinterpret_cast<int32_t*>(out);
  auto row = [&](int32_t phase, int32_t q, int64_t r) { return o + L.at(phase >> 1, phase & 1, quads, q, r, 0); };
  for (int32_t q = 0; q < quads; ++q) {
    for (int64_t y = 0; y < hp; ++y) {
      const int32_t* src = reinterpret_cast<const int32_t*>(full) + (q * hp + y) * wp;
      int32_t* de = row(static_cast<int32_t>(y & 1) * 2, q, y >> 1);
      int32_t* dodd = row(static_cast<int32_t>(y & 1) * 2 + 1, q, y >> 1);
      for (int64_t x0 = 0; x0 < wp; x0 += 32) {
        const __m512i lo = _mm512_loadu_si512(src + x0), hi = _mm512_loadu_si512(src + x0 + 16);
        const int64_t ne = std::min<int64_t>(16, (wp - x0 + 1) / 2), no = std::min<int64_t>(16, (wp - x0) / 2);
        _mm512_mask_storeu_epi32(de + x0 / 2, static_cast<__mmask16>((1u << ne) - 1u), _mm512_permutex2var_epi32(lo, even, hi));
        _mm512_mask_storeu_epi32(dodd + x0 / 2, static_cast<__mmask16>((1u << no) - 1u), _mm512_permutex2var_epi32(lo, odd, hi));
      }
      if (wp & 1) dodd[wp2 - 1] = 0;
    }
    if (hp & 1) {
      std::memset(row(2, q, hp2 - 1), 0, static_cast<size_t>(wp2) * 4);
      std::memset(row(3, q, hp2 - 1), 0, static_cast<size_t>(wp2) * 4);
    }
  }
}

// The phase planes straight from the input (VBMI; input rows of at most 32 pixels, phase rows of
// at most 32 cells): per quad and padded row y, the 4 channels' input rows are loaded as two
// 64-byte tables ([row of channel 4q | 4q + 1], [4q + 2 | 4q + 3]), and each group of 16 output
// dwords is one vpermt2b that deinterleaves even / odd columns and interleaves the 4 channels at
// once, padding pixels or'ed in as the zero point. The phase rows' cells (row y / 2 of phases
// (y & 1) * 2 and (y & 1) * 2 + 1, wp2 cells each) run consecutively through the permutes' lanes
// and are stored with masks. Cells no padded pixel maps to are 0, as splitPhases leaves them. No
// full plane, no second pass.
struct PhaseRowProgram {
  struct Perm {
    alignas(64) uint8_t idx[64];  // lane -> byte of the two tables
    uint64_t in = 0;  // lanes read from the input
    uint64_t pad = 0;  // lanes that are padding pixels (the zero point)
    // two masked stores, one per phase column px (either may be empty): lanes under mask[px] go
    // to dwords at[px] + lane from the start of the phase row of column 0 (column 1: its plane)
    int64_t at[2] = {0, 0};
    __mmask16 mask[2] = {0, 0};
  };
  Perm perms[4];
  int32_t nperm = 0;
  uint32_t rowMask = 0;  // bytes of an input row
  bool ok = false;
  bool joined = false;  // PhaseLayout::joined: permute p's lanes are the row's cells 16p.. (one store)
  PhaseRowProgram() = default;
  PhaseRowProgram(int64_t wp, int64_t pw, int64_t W, int64_t colPlaneDwords) {
    const int64_t wp2 = (wp + 1) / 2;
    if (W > 32 || wp2 > 32) return;
    joined = colPlaneDwords == wp2;
    rowMask = W >= 32 ? ~0u : (1u << W) - 1u;
    const int32_t slots = static_cast<int32_t>(2 * wp2);
    nperm = (slots + 15) / 16;
    for (int32_t i = 0; i < slots; ++i) {
      const int32_t px = i < wp2 ? 0 : 1, cell = static_cast<int32_t>(i < wp2 ? i : i - wp2);
      Perm& pr = perms[i / 16];
      const int32_t lane = i % 16;
      const int64_t x = 2 * cell + px, col = x - pw;
      for (int m = 0; m < 4; ++m) {
        const int bit = 4 * lane + m;
        pr.idx[bit] = static_cast<uint8_t>(col >= 0 && col < W ? (m & 1) * 32 + (m >> 1) * 64 + col : 0);
        if (x < wp && col >= 0 && col < W) pr.in |= uint64_t{1} << bit;
        else if (x < wp) pr.pad |= uint64_t{1} << bit;
      }
      // a permute's lanes of column 0 come first, then those of column 1: one store each
      pr.at[px] = (px ? colPlaneDwords : 0) + cell - lane;
      pr.mask[px] = static_cast<__mmask16>(pr.mask[px] | (1u << lane));
    }
    ok = true;
  }
};

// Rows of the phase planes of one quad, NP permutes a padded row (see PhaseRowProgram): channel
// k of the quad at x + off[k] (off[0] = 0), q0 its quad's plane in phase 0, rows rowStride apart.
// Joined (PhaseLayout::joined): one store a permute, plain but for the last.
template <int NP, bool Full, bool Joined>
__attribute__((target("avx512vbmi"), always_inline)) inline void phaseQuadRows(
    const PhaseRowProgram& pg, const uint8_t* x, const int64_t* off, uint64_t realLanes, __m512i zaV, int64_t hp,
    int64_t hp2, int64_t rowOff, int64_t H, int64_t W, int64_t rowStride, int64_t rowPhaseDwords, int32_t* q0) {
  __m512i idx[NP], padV[NP], padRowV[NP];
  __mmask64 inQ[NP];
  __mmask16 mask[NP][2];
  int64_t at[NP][2];
  for (int p = 0; p < NP; ++p) {
    const PhaseRowProgram::Perm& pr = pg.perms[p];
    idx[p] = _mm512_load_si512(pr.idx);
    inQ[p] = pr.in & realLanes;
    padV[p] = _mm512_maskz_mov_epi8(pr.pad & realLanes, zaV);
    padRowV[p] = _mm512_maskz_mov_epi8((pr.in | pr.pad) & realLanes, zaV);
    for (int c = 0; c < 2; ++c) {
      mask[p][c] = pr.mask[c];
      at[p][c] = pr.at[c];
    }
  }
  const __mmask32 rowMask = pg.rowMask;
  const int64_t o1 = off[1], o2 = off[2], o3 = off[3];
  // rows 2r and 2r + 1 of the padded planes: row r of phases 0, 1 and of phases 2, 3
  int32_t* row0 = q0;
  int32_t* row1 = q0 + rowPhaseDwords;
  const __mmask16 lastMask = static_cast<__mmask16>(pg.perms[NP - 1].mask[0] | pg.perms[NP - 1].mask[1]);
  for (int64_t r = 0; r < hp2; ++r, row0 += rowStride, row1 += rowStride)
    for (int py = 0; py < 2; ++py) {
      const int64_t y = 2 * r + py, yi = y + rowOff;
      __m512i v[NP];
      if (y >= hp) {  // the row past an odd padded height: no pixel maps there
        for (int p = 0; p < NP; ++p) v[p] = _mm512_setzero_si512();
      } else if (yi < 0 || yi >= H) {
        for (int p = 0; p < NP; ++p) v[p] = padRowV[p];
      } else {
        const uint8_t* s = x + yi * W;
        // rows of 32 bytes: plain loads (stride-2 3x3 on 32x32: ~0.95x time against byte-masked ones)
        auto row = [&](const uint8_t* p) {
          return Full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi8(rowMask, p);
        };
        const __m512i ta = _mm512_inserti64x4(_mm512_castsi256_si512(row(s)), row(s + o1), 1);
        const __m512i tb = _mm512_inserti64x4(_mm512_castsi256_si512(row(s + o2)), row(s + o3), 1);
        for (int p = 0; p < NP; ++p)
          v[p] = _mm512_or_si512(_mm512_maskz_permutex2var_epi8(inQ[p], ta, idx[p], tb), padV[p]);
      }
      int32_t* row = py ? row1 : row0;
      if (Joined) {
        for (int p = 0; p + 1 < NP; ++p) _mm512_storeu_si512(row + 16 * p, v[p]);
        _mm512_mask_storeu_epi32(row + 16 * (NP - 1), lastMask, v[NP - 1]);
        continue;
      }
      // masked stores, empty ones included (no branches; nothing is written under a zero mask)
      for (int p = 0; p < NP; ++p)
        for (int c = 0; c < 2; ++c) _mm512_mask_storeu_epi32(row + at[p][c], mask[p][c], v[p]);
    }
}

__attribute__((target("avx512vbmi"), noinline)) void buildPhasesFast(const ConvDirectArgs& a, const GroupPlan& gp,
                                                                    const LayoutMap& m, const PhaseLayout& L,
                                                                    const PhaseRowProgram& pg, int64_t b, int64_t g,
                                                                    uint8_t* out) {
  const int64_t cg = a.C / a.G, hw = a.H * a.W;
  const int64_t hp2 = L.hp2, rs = L.rowStride;
  const int32_t quads = gp.quads, cv = gp.cv;
  const __m512i zaV = _mm512_set1_epi8(static_cast<char>(a.za));
  int32_t* o = reinterpret_cast<int32_t*>(out);
  const uint8_t* x0 = a.x + (b * a.C + g * cg) * hw;
  const int64_t rowPhase = L.at(1, 0, quads, 0, 0, 0);  // row phase 1 from row phase 0
  for (int32_t q = 0; q < quads; ++q) {
    // channels past the last: their lanes are masked off (and read channel 4q's plane)
    const int real = std::min<int32_t>(4, cv - 4 * q);
    const uint64_t realLanes = 0x1111111111111111ull * ((1u << real) - 1u);
    int64_t off[4];
    for (int k = 0; k < 4; ++k) off[k] = k < real ? k * hw : 0;
    const uint8_t* x = x0 + static_cast<int64_t>(4 * q) * hw;
    int32_t* q0 = o + L.at(0, 0, quads, q, 0, 0);
    const bool full = a.W == 32;
#define QBNN_PHASE_ROWS(NP, F, J) \
  phaseQuadRows<NP, F, J>(pg, x, off, realLanes, zaV, m.hp, hp2, m.rowOff, a.H, a.W, rs, rowPhase, q0)
    switch (pg.nperm * 4 + (full ? 2 : 0) + (pg.joined ? 1 : 0)) {
      case 4: QBNN_PHASE_ROWS(1, false, false); break;
      case 5: QBNN_PHASE_ROWS(1, false, true); break;
      case 6: QBNN_PHASE_ROWS(1, true, false); break;
      case 7: QBNN_PHASE_ROWS(1, true, true); break;
      case 8: QBNN_PHASE_ROWS(2, false, false); break;
      case 9: QBNN_PHASE_ROWS(2, false, true); break;
      case 10: QBNN_PHASE_ROWS(2, true, false); break;
      case 11: QBNN_PHASE_ROWS(2, true, true); break;
      case 12: QBNN_PHASE_ROWS(3, false, false); break;
      case 13: QBNN_PHASE_ROWS(3, false, true); break;
      case 14: QBNN_PHASE_ROWS(3, true, false); break;
      case 15: QBNN_PHASE_ROWS(3, true, true); break;
      case 16: QBNN_PHASE_ROWS(4, false, false); break;
      case 17: QBNN_PHASE_ROWS(4, false, true); break;
      case 18: QBNN_PHASE_ROWS(4, true, false); break;
      default: QBNN_PHASE_ROWS(4, true, true); break;
    }
#undef QBNN_PHASE_ROWS
  }
}

// `shifted`: the layout holds one set of quad planes per kernel column (see ConvGeometry), so
// column jv of the kernel is a plane offset, not a column offset. `phases`: stride 2 on phase
// planes laid out as *phases (null otherwise; wp and plane are then its rowStride and plane).
// Fills `gp` in place, reusing its vectors' memory (drawn convolutions are planned again for
// every sample: a fresh weight vector each time cost an allocation and its page faults).
// `weightsInPlace`: gp.wt already holds the weights in this plan's order (the sampler wrote them
// there: one tap a dword, as tapOrderOf describes); only the rest is refreshed.
void planGroup(const ConvDirectArgs& a, int64_t g, int shape, int64_t wp, int64_t plane, bool shifted,
               const PhaseLayout* phases, bool tapPlanes, GroupPlan& out, bool weightsInPlace = false) {
  const bool phased = phases != nullptr;
  // built in a local (moved in and out: the memory stays) so that the compiler knows the weight
  // stores below cannot alias its fields
  GroupPlan gp = std::move(out);
  gp.needAsum = false;
  for (std::vector<int32_t>* v : {&gp.off, &gp.ones, &gp.boxOff, &gp.blkStart, &gp.blkNoc}) v->clear();
  gp.blkWt.clear();
  const Packed& p = *a.packs[g];
  const int64_t cg = a.C / a.G, og = a.O / a.G;
  const int32_t kg = static_cast<int32_t>(cg * a.kh * a.kw);
  // tap planes (one input channel): virtual channel v = tap v, a 1x1 convolution over the quads
  const int32_t J = tapPlanes ? 1 : tapsPerDword(cg, a.kw);
  const int32_t khv = tapPlanes ? 1 : static_cast<int32_t>(a.kh);
  gp.cv = tapPlanes ? kg : static_cast<int32_t>(cg * J);
  gp.quads = (gp.cv + 3) / 4;
  gp.kwv = tapPlanes ? 1 : static_cast<int32_t>((a.kw + J - 1) / J);
  gp.dwv = static_cast<int32_t>(J * a.dw);
  gp.nsrc = gp.quads * khv * gp.kwv;
  // Source s = (quad q, row i, column jv); dword byte t is virtual channel 4q + t = (jj, c).
  struct Tap {
    int32_t q, i, jv;
  };
  std::vector<Tap> taps;
  for (int32_t q = 0; q < gp.quads; ++q)
    for (int32_t i = 0; i < khv; ++i)
      for (int32_t jv = 0; jv < gp.kwv; ++jv) {
        taps.push_back({q, i, jv});
        gp.off.push_back(static_cast<int32_t>(
            tapPlanes ? q * plane * 4
            : phased  ? phases->at(i & 1, jv & 1, gp.quads, q, i >> 1, jv >> 1) * 4
            : shifted ? ((jv * gp.quads + q) * plane + i * a.dh * wp) * 4
                      : (q * plane + i * a.dh * wp + jv * gp.dwv) * 4));
      }
  // Original column k of the weight row for byte t of source s, or -1 (no tap there).
  auto kOf = [&](const Tap& s, int t) -> int32_t {
    const int32_t v = 4 * s.q + t;
    if (v >= gp.cv) return -1;
    if (tapPlanes) return v;  // one channel: weight column i kw + j of tap v
    const int32_t c = static_cast<int32_t>(v % cg), jj = static_cast<int32_t>(v / cg);
    const int32_t j = s.jv * J + jj;
    if (j >= a.kw) return -1;
    return static_cast<int32_t>((c * a.kh + s.i) * a.kw + j);
  };
  const int maxNoc = kShapeMaxNoc[shape];
  const int32_t nblk = static_cast<int32_t>((og + maxNoc - 1) / maxNoc);
  const int32_t taps1 = static_cast<int32_t>(a.kh * a.kw);  // taps per channel
  for (int32_t bi = 0, o0 = 0; bi < nblk; ++bi) {
    const int32_t noc = static_cast<int32_t>(og / nblk + (bi < og % nblk ? 1 : 0));
    gp.blkStart.push_back(o0);
    gp.blkNoc.push_back(noc);
    gp.blkWt.push_back(static_cast<size_t>(o0) * gp.nsrc);
    o0 += noc;
  }
  gp.wt.resize(static_cast<size_t>(og) * gp.nsrc);  // every element is written below
  if (weightsInPlace && J == 1 && !tapPlanes) {
    // written by the sampler
  } else if (J > 1 || tapPlanes) {  // few input channels: small, the general mapping
    for (int32_t bi = 0; bi < nblk; ++bi) {
      const int32_t noc = gp.blkNoc[bi], o0 = gp.blkStart[bi];
      int32_t* wt = gp.wt.data() + gp.blkWt[bi];
      for (int32_t o = 0; o < noc; ++o)
        for (int32_t s = 0; s < gp.nsrc; ++s) {
          uint32_t dword = 0;
          for (int t = 0; t < 4; ++t) {
            const int32_t k = kOf(taps[s], t);
            if (k >= 0) dword |= static_cast<uint32_t>(static_cast<uint8_t>(packedAt(p, o0 + o, k))) << (8 * t);
          }
          wt[static_cast<size_t>(s) * noc + o] = static_cast<int32_t>(dword);
        }
    }
  } else {
    reorderTaps(p, cg, taps1, og, gp);
  }
  gp.colTerm.resize(og);
  gp.zw.resize(og);
  gp.mult.resize(og);
  gp.mult32.resize(og);
  gp.m32ok.resize(og);
  for (int64_t o = 0; o < og; ++o) {
    const int64_t n = g * og + o;
    const int32_t bias = a.bias ? a.bias[n] : 0;
    gp.zw[o] = p.zeroPoint[o];
    gp.colTerm[o] = wadd(wsub(bias, wmul(a.za, p.rowSums[o])), wmul(wmul(kg, a.za), p.zeroPoint[o]));
    gp.mult[o] = a.mult ? a.mult[n] : 0.0;
    const double am = std::fabs(gp.mult[o]);
    gp.mult32[o] = static_cast<float>(gp.mult[o]);
    gp.m32ok[o] = a.zo >= 0 && a.zo <= 255 && (am == 0 || (am >= 0x1p-60 && am <= 0x1p60)) ? 1 : 0;
    if (p.zeroPoint[o] != 0) gp.needAsum = true;
  }
  gp.allM32ok = std::all_of(gp.m32ok.begin(), gp.m32ok.end(), [](uint8_t ok) { return ok != 0; });
  gp.bigM = std::any_of(gp.mult.begin(), gp.mult.end(), [](double m) { return std::fabs(m) >= 0.5; });
  if (gp.needAsum && J == 1 && !tapPlanes)
    for (int32_t i = 0; i < a.kh; ++i)
      for (int32_t jv = 0; jv < gp.kwv; ++jv)
        gp.boxOff.push_back(static_cast<int32_t>(phased    ? phases->at(i & 1, jv & 1, 1, 0, i >> 1, jv >> 1) * 4
                                                 : shifted ? (jv * plane + i * a.dh * wp) * 4
                                                           : (i * a.dh * wp + jv * gp.dwv) * 4));
  if (gp.needAsum) {
    for (int32_t s = 0; s < gp.nsrc; ++s) {
      uint32_t dword = 0;
      for (int t = 0; t < 4; ++t)
        if (kOf(taps[s], t) >= 0) dword |= 1u << (8 * t);
      gp.ones.push_back(static_cast<int32_t>(dword));
    }
  }
  out = std::move(gp);
}

// Everything about a convolution that depends on its shape only (not on x, the weights or the
// epilogue): the plane layout, the pixel groups, the batch tiling and the kernel shape.
//
// "Shifted" layouts (stride 1, output rows not a multiple of 16 pixels wide): the planes are
// Wo pixels wide and there is one set of them per kernel column jv, holding the input shifted
// by jv columns; output pixel p = (ho, wo) then reads tap (i, jv) at position p + i * dh * Wo of
// copy jv, so every group of 16 consecutive output pixels is one plain load per tap, even when
// it spans rows (no vpermt2d, no gather; the copies cost kw plane builds, cheaper than fetching
// every tap of every group).
struct ConvGeometry {
  LayoutMap map;
  int64_t hw, plane, cg, og, pgImage, imgs, btiles;
  int shape, npg;
  bool shifted;  // one set of quad planes per kernel column (copies of them)
  int32_t copies;  // sets of quad planes in a layout (1 unless shifted)
  int32_t colStepOfCopy;  // input columns between consecutive copies
  size_t layoutBytes;  // plane layout of one image (all copies and quads) plus slack
  std::vector<PixelGroup> pgs;
  bool someUnaligned;  // some pixel group needs vpermt2d or a gather to fetch
  // pool2 at stride 1: pixel groups in pairs of rows (see rowPoolGroupsOf), pooled in the epilogue
  bool rowPool = false;
  // row pool over `wide` images side by side (see wideRowsOf; 0: one image a layout): a layout
  // (a "unit") holds the shifted copies of `wide` images, rows of wideWp = wide Wo pixels; `map`
  // is each image's padded plane, built and then cut into the copies
  int32_t wide = 0;
  int64_t wideWp = 0;
  // stride 2: the layout holds the phase planes of the padded planes (splitPhases), laid out as
  // `phases` (plane: one set's quad plane); `map` builds the padded planes they are split from
  bool phased = false;
  PhaseLayout phases;
  // One input channel, stride 1: "tap planes" (see tapOutputPixel), in pool order when tapPool
  // (a fused 2x2 pool: every kernel tile is the 4 pixels of 16 pooling windows)
  bool tapPlanes = false;
  bool tapPool = false;
  int32_t planeSets() const { return phased ? phases.sets() : copies; }  // sets of quad planes in a layout
  int64_t offsetWp() const { return phased ? phases.rowStride : wide ? wideWp : map.wp; }  // plane width of source offsets
  const PhaseLayout* phaseLayout() const { return phased ? &phases : nullptr; }
};

// Pixel groups of 16 output pixels at layout positions posOf(p); someUnaligned when some group
// is not consecutive.
template <class PosOf>
void pixelGroupsOf(ConvGeometry& geo, const PosOf& posOf) {
  geo.pgImage = (geo.hw + 15) / 16;
  geo.pgs.resize(static_cast<size_t>(geo.pgImage));
  geo.someUnaligned = false;
  for (int64_t t = 0; t < geo.pgImage; ++t) {
    PixelGroup& pg = geo.pgs[static_cast<size_t>(t)];
    const int64_t p0 = t * 16;
    pg.valid = static_cast<int>(std::min<int64_t>(16, geo.hw - p0));
    pg.pos0 = posOf(p0);
    bool consecutive = true;
    int64_t maxD = 0;
    for (int l = 0; l < 16; ++l) {
      const int64_t d = l < pg.valid ? posOf(p0 + l) - pg.pos0 : pg.idx[l - 1] + 1;
      pg.idx[l] = static_cast<int32_t>(d);
      consecutive = consecutive && d == l;
      maxD = std::max(maxD, d);
    }
    pg.mode = consecutive ? MODE_LOAD : maxD < 32 ? MODE_PERM : MODE_GATHER;
    geo.someUnaligned = geo.someUnaligned || pg.mode != MODE_LOAD;
  }
}

// The pixel groups of a 2x2 stride-2 max pool folded into a stride-1 convolution: 16 columns of
// one output row each, in pairs (rows 2y and 2y + 1 of the same columns: 8 pooled values), the
// pairs in the pooled plane's raster order. Rows and columns the floor pool drops are not
// computed. A stride-1 layout row is consecutive, so every group is a plain load (its lanes past
// the row read the next layout row or the slack: values that are never stored).
void rowPoolGroupsOf(ConvGeometry& geo, int64_t Ho, int64_t Wo) {
  const int64_t hp = Ho / 2, wq = Wo / 2, segs = (2 * wq + 15) / 16;
  geo.pgs.clear();
  for (int64_t y = 0; y < hp; ++y)
    for (int64_t s = 0; s < segs; ++s)
      for (int64_t half = 0; half < 2; ++half) {
        PixelGroup pg;
        pg.pos0 = (2 * y + half) * geo.map.wp + 16 * s;
        for (int l = 0; l < 16; ++l) pg.idx[l] = l;
        pg.mode = MODE_LOAD;
        pg.valid = static_cast<int>(std::min<int64_t>(16, Wo - 16 * s));
        pg.pooledAt = y * wq + 8 * s;
        pg.pooledValid = static_cast<int>(std::min<int64_t>(8, wq - 8 * s));
        geo.pgs.push_back(pg);
      }
  geo.pgImage = static_cast<int64_t>(geo.pgs.size());
  geo.someUnaligned = false;
  geo.rowPool = true;
}

// The row pool (rowPoolGroupsOf) wastes the lanes of a 16-pixel group past a row of Wo pixels
// (LeNet-5's conv2: Wo = 14, 2 of 16). With shifted copies (one set of quad planes per kernel
// column, Wo pixels wide) every layout pixel is an output, so `wide` = 16 / gcd(Wo, 16) images
// side by side make layout rows of a multiple of 16 outputs: no lane wasted. Pixel groups are the
// row pool's pairs (rows 2y, 2y + 1 of the same 16 columns) across the images; a column pair never
// straddles two images (Wo even), and a pair's 8 pooled values go to at most 3 of them (Wo >= 8).
// Each image's padded planes are built as the row pool's, then cut into the copies
// (buildWideRows). Only when the batch is whole units and a unit's layout fits ~512 KiB.
bool wideRowsOf(const ConvDirectArgs& a, ConvGeometry& geo) {
  const int64_t Wo = a.Wo;
  if (!geo.rowPool || Wo % 16 == 0 || Wo % 2 != 0 || Wo < 8 || a.H * a.W <= 64 || tapsPerDword(geo.cg, a.kw) != 1)
    return false;
  int64_t gcd = 16;
  while (Wo % gcd != 0) gcd /= 2;
  const int32_t wide = static_cast<int32_t>(16 / gcd);
  const int64_t quadBytes = (geo.cg + 3) / 4 * 4, wideWp = wide * Wo, plane = geo.map.hp * wideWp;
  const int64_t bytes = a.kw * quadBytes * plane + static_cast<int64_t>(kSlack);
  if (a.B % wide != 0 || bytes > (int64_t{512} << 10)) return false;
  geo.wide = wide;
  geo.wideWp = wideWp;
  geo.shifted = true;
  geo.copies = static_cast<int32_t>(a.kw);
  geo.colStepOfCopy = static_cast<int32_t>(a.dw);
  geo.plane = plane;
  geo.layoutBytes = static_cast<size_t>(bytes);
  const int64_t hp = a.Ho / 2, wq = Wo / 2, segs = wideWp / 16;
  geo.pgs.clear();
  // a kernel tile (2 pairs) takes the same 16 columns of two pooled rows: the layout rows it reads
  // (4 + kh - 1 of each of the copies' quad planes) stay in L1 beside the block weights
  for (int64_t y0 = 0; y0 < hp; y0 += 2)
    for (int64_t s = 0; s < segs; ++s)
      for (int64_t y = y0; y < std::min(hp, y0 + 2); ++y)
        for (int64_t half = 0; half < 2; ++half) {
          PixelGroup pg;
          pg.pos0 = (2 * y + half) * wideWp + 16 * s;
          for (int l = 0; l < 16; ++l) pg.idx[l] = l;
          pg.mode = MODE_LOAD;
          pg.valid = 16;
          for (int j = 0; j < 8; ++j) {
            const int64_t col = 16 * s + 2 * j;  // the pair's columns col, col + 1: one image
            const int img = static_cast<int>(col / Wo);
            if (pg.parts == 0 || pg.partImg[pg.parts - 1] != img) {
              pg.partImg[pg.parts] = img;
              pg.partLane0[pg.parts] = j;
              pg.partAt[pg.parts] = y * wq + (col % Wo) / 2;
              ++pg.parts;
            }
            ++pg.partLanes[pg.parts - 1];
          }
          geo.pgs.push_back(pg);
        }
  geo.pgImage = static_cast<int64_t>(geo.pgs.size());
  return true;
}

// Batch tiles and the kernel shape of a geometry whose pixel groups and layout are set.
bool batchTilesOf(const ConvDirectArgs& a, ConvGeometry& geo) {
  // Batch tiles: enough images that small planes still fill the widest kernel, within ~512 KiB
  // of planes (from the geometry only, so results cannot depend on the thread count).
  // (tap planes of a whole kernel tile's worth of groups: one image a tile, its ~7x larger planes
  // stay in L1 while the channel blocks read them: LeNet-5's pooled conv1 0.955x time)
  int64_t imgs = std::min<int64_t>(a.B, geo.tapPlanes && geo.pgImage >= 16 ? 1 : (64 + geo.pgImage - 1) / geo.pgImage);
  while (imgs > 1 && static_cast<double>(imgs) * geo.layoutBytes > 512.0 * 1024) --imgs;
  if (geo.wide) imgs = geo.wide;  // one unit (wideRowsOf): pgImage and layoutBytes are a unit's
  geo.imgs = imgs;
  geo.btiles = (a.B + imgs - 1) / imgs;
  geo.shape = chooseShape((geo.wide ? imgs / geo.wide : imgs) * geo.pgImage);
  geo.npg = kShapeNpg[geo.shape];
  return true;
}

// Tap planes (one input channel, stride 1, VBMI): virtual channel t = i kw + j of layout pixel px
// holds the input of tap (i, j) of px's output pixel, so the convolution is a 1x1 over
// ceil(kh kw / 4) quads of plainly loaded pixel groups (LeNet-5's conv1: 7 dwords for 25 taps
// instead of 10 dwords of 4 column-shifted copies, and no lanes past a row's end). Layout pixels
// are output pixels in raster order, or with a fused 2x2 pool in pool order: layout pixel
// 64 T + 16 g + l is pixel g of pooling window P = 16 T + l (g: rows 2 py, 2 py + 1 x columns
// 2 px, 2 px + 1, row-major; P = py (Wo / 2) + px), so the 4 pixel groups of a kernel tile are the
// 4 pixels of 16 windows and their lane-wise maximum is 16 consecutive pooled values. False: px
// is no output pixel (a lane past the last window).
bool tapOutputPixel(const ConvDirectArgs& a, bool pool, int64_t px, int64_t& oy, int64_t& ox) {
  if (!pool) {
    oy = px / a.Wo;
    ox = px % a.Wo;
    return px < a.Ho * a.Wo;
  }
  const int64_t pw = a.Wo / 2, windows = (a.Ho / 2) * pw;
  const int64_t w = (px >> 6) * 16 + (px & 15), g = (px >> 4) & 3;
  oy = 2 * (w / pw) + (g >> 1);
  ox = 2 * (w % pw) + (g & 1);
  return w < windows;
}

// The fast build's chunk maps of tap planes, one per tap; false when some window exceeds 128 bytes.
bool mapTapPlanes(const ConvDirectArgs& a, const ConvGeometry& geo, std::vector<std::vector<ChunkMap>>& maps) {
  maps.resize(static_cast<size_t>(a.kh * a.kw));
  for (int64_t t = 0; t < a.kh * a.kw; ++t) {
    const int64_t dy = (t / a.kw) * a.dh - a.ph, dx = (t % a.kw) * a.dw - a.pw;
    auto srcOf = [&](int64_t px) -> int64_t {
      int64_t oy = 0, ox = 0;
      if (!tapOutputPixel(a, geo.tapPool, px, oy, ox)) return -1;
      const int64_t y = oy + dy, x = ox + dx;
      return y >= 0 && y < a.H && x >= 0 && x < a.W ? y * a.W + x : -1;
    };
    if (!mapChunks(a, geo.plane, srcOf, maps[static_cast<size_t>(t)])) return false;
  }
  return true;
}

// Tap planes for `a` when they take fewer sources than the column-shifted copies (geo.tapPlanes;
// its layout, pixel groups, plane and map); false (geo untouched but for scratch) otherwise.
bool tapGeometryOf(const ConvDirectArgs& a, ConvGeometry& geo) {
  const int64_t taps = a.kh * a.kw, quads = (taps + 3) / 4;
  if (a.C / a.G != 1 || a.sh != 1 || a.sw != 1 || taps > 32 || !cpuFeatures().avx512vbmi) return false;
  const int32_t J = tapsPerDword(1, a.kw);
  if (quads >= a.kh * ((a.kw + J - 1) / J)) return false;  // the copies' sources: 1 quad x kh x kwv
  const bool pool = a.pool2 && a.Ho >= 2 && a.Wo >= 2;
  const int64_t windows = (a.Ho / 2) * (a.Wo / 2);
  const int64_t plane = pool ? 64 * ((windows + 15) / 16) : geo.hw;
  if (quads * 4 * plane > (int64_t{4} << 20)) return false;
  geo.tapPlanes = true;
  geo.tapPool = pool;
  geo.map = LayoutMap{1, plane, 1, 1, 0, 0};
  geo.plane = plane;
  std::vector<std::vector<ChunkMap>> maps;
  if (!mapTapPlanes(a, geo, maps)) {
    geo.tapPlanes = geo.tapPool = false;
    return false;
  }
  if (!pool) {
    pixelGroupsOf(geo, [](int64_t p) { return p; });
    return true;
  }
  geo.pgs.clear();
  for (int64_t t = 0; t * 16 < windows; ++t)
    for (int g = 0; g < 4; ++g) {
      PixelGroup pg;
      pg.pos0 = 64 * t + 16 * g;
      for (int l = 0; l < 16; ++l) pg.idx[l] = l;
      pg.mode = MODE_LOAD;
      pg.valid = pg.pooledValid = static_cast<int>(std::min<int64_t>(16, windows - 16 * t));
      pg.pooledAt = 16 * t;
      geo.pgs.push_back(pg);
    }
  geo.pgImage = static_cast<int64_t>(geo.pgs.size());
  geo.someUnaligned = false;
  return true;
}

bool geometryOf(const ConvDirectArgs& a, ConvGeometry& geo) {
  geo.hw = a.Ho * a.Wo;
  geo.cg = a.C / a.G;
  geo.og = a.O / a.G;
  geo.shifted = false;
  geo.copies = 1;
  geo.colStepOfCopy = 0;
  geo.rowPool = false;
  geo.wide = 0;
  geo.wideWp = 0;
  geo.phased = false;
  geo.tapPlanes = geo.tapPool = false;
  if (tapGeometryOf(a, geo)) {
    geo.layoutBytes = static_cast<size_t>(4 * ((a.kh * a.kw + 3) / 4) * geo.plane) + kSlack;
    return batchTilesOf(a, geo);
  }
  // 1x1: planes of the used pixels only, then stride 1.
  const bool pointwise = a.kh == 1 && a.kw == 1;
  geo.map = pointwise ? LayoutMap{a.Ho, a.Wo, a.sh, a.sw, -a.ph, -a.pw}
                      : LayoutMap{a.H + 2 * a.ph, a.W + 2 * a.pw, 1, 1, -a.ph, -a.pw};
  const int64_t wp = geo.map.wp, sh = pointwise ? 1 : a.sh, sw = pointwise ? 1 : a.sw;
  geo.plane = geo.map.hp * wp;
  const int64_t quadBytes = (geo.cg + 3) / 4 * 4;  // bytes of a padded pixel over all quads
  // Dword positions must fit int32 offsets (gathers, source offsets).
  if (quadBytes * geo.plane * 4 + static_cast<int64_t>(kSlack) > (int64_t{1} << 31)) return false;
  if (a.pool2 && a.sh == 1 && a.sw == 1 && a.Ho >= 2 && a.Wo >= 2) rowPoolGroupsOf(geo, a.Ho, a.Wo);
  else pixelGroupsOf(geo, [&](int64_t p) { return (p / a.Wo) * sh * wp + (p % a.Wo) * sw; });
  if (wideRowsOf(a, geo)) return batchTilesOf(a, geo);
  if (geo.someUnaligned && !pointwise && a.sh == 1 && a.sw == 1) {
    const int32_t J = tapsPerDword(geo.cg, a.kw);
    const int32_t copies = static_cast<int32_t>((a.kw + J - 1) / J);
    const LayoutMap m{a.H + 2 * a.ph, a.Wo, 1, 1, -a.ph, -a.pw};
    const int64_t bytes = copies * quadBytes * m.hp * m.wp;
    if (bytes <= (int64_t{4} << 20)) {
      geo.shifted = true;
      geo.copies = copies;
      geo.colStepOfCopy = static_cast<int32_t>(J * a.dw);
      geo.map = m;
      geo.plane = m.hp * m.wp;
      pixelGroupsOf(geo, [](int64_t p) { return p; });
    }
  }
  if (geo.someUnaligned && !pointwise && !geo.rowPool && a.sh == 2 && a.sw == 2 && a.dh == 1 && a.dw == 1 &&
      tapsPerDword(geo.cg, a.kw) == 1 && quadBytes * geo.plane <= (int64_t{4} << 20)) {
    // stride 2 on phase planes: groups of one output row are consecutive, others rowStride apart
    // at row ends (vpermt2d instead of a gather when Wo < 16). Joined phase rows (cheaper to
    // build) unless their longer rows would make some group a gather where separate ones do not.
    geo.phased = true;
    auto groupsOn = [&](bool joined) {
      geo.phases = PhaseLayout(geo.map.hp, wp, joined);
      geo.plane = geo.phases.plane;
      pixelGroupsOf(geo, [&](int64_t p) { return (p / a.Wo) * geo.phases.rowStride + p % a.Wo; });
      int worst = MODE_LOAD;
      for (const PixelGroup& pg : geo.pgs) worst = std::max(worst, pg.mode);
      return worst;
    };
    const int separate = groupsOn(false);
    if (groupsOn(true) > separate) groupsOn(false);
  }
  // >= sets * quads * plane * 4
  geo.layoutBytes = static_cast<size_t>(geo.planeSets() * quadBytes * geo.plane) + kSlack;
  return batchTilesOf(a, geo);
}


// How the kernels read a tile's pixel groups. From the planes as built, or "gathered": when
// pixel groups are not consecutive in the planes and several channel blocks would each fetch
// them with vpermt2d or a gather, a tile's groups are fetched once into a small buffer
// [group][source][16 dwords] (L1-sized for most layers) that every channel block then reads with
// plain loads.
struct TileLayouts {
  bool gathered = false;
  std::vector<int32_t> off;  // per source: offset from a group's base in the tile buffer (gathered)
};

TileLayouts tileLayoutsOf(const ConvGeometry& geo, const GroupPlan& gp) {
  TileLayouts t;
  t.gathered = geo.someUnaligned && gp.blkStart.size() >= 2;
  if (!t.gathered) return t;
  t.off.resize(static_cast<size_t>(gp.nsrc));
  for (int32_t s = 0; s < gp.nsrc; ++s) t.off[static_cast<size_t>(s)] = s * 64;
  return t;
}

template <class F>
void gatherGroup(const F& f, const uint8_t* at, const GroupPlan& gp, uint8_t* dst) {
  for (int32_t s = 0; s < gp.nsrc; ++s)
    _mm512_store_si512(dst + static_cast<size_t>(s) * 64, f.fetch(at + gp.off[static_cast<size_t>(s)], 0));
}

// Fetches the sources of one pixel group (planes of its image) into dst ([source][16 dwords]).
void gatherPixelGroup(const PixelGroup& pg, const GroupPlan& gp, const uint8_t* planes, uint8_t* dst) {
  const uint8_t* at = planes + pg.pos0 * 4;
  if (pg.mode == MODE_LOAD) {
    gatherGroup(FetchLoad{}, at, gp, dst);
  } else if (pg.mode == MODE_PERM) {
    FetchPerm f;
    f.idx[0] = _mm512_load_si512(pg.idx);
    gatherGroup(f, at, gp, dst);
  } else {
    FetchGather f;
    f.idx[0] = _mm512_load_si512(pg.idx);
    gatherGroup(f, at, gp, dst);
  }
}

// Chunk maps of the fast plane build, per column shift of the virtual channels, built once per
// geometry (a prepared convolution keeps them: building them costs about a plane build).
// Map j is for a column shift of j * dilation: virtual channel copy jj of plane copy jv reads
// shift jv * J + jj. `fast` is false when the fast build does not apply.
// Quad planes of small images (at most 64 pixels: ResNet-18's 4x4 and 8x8 layers), one tap a
// dword: every 16 dwords of a layout plane are one or two byte permutes of its quad's input
// planes, held in registers for the whole quad, the padding blended in as the zero point. Up to
// 16 pixels the quad's 4 channel planes are one run of at most 64 bytes (one vpermb); up to 32,
// of 128 bytes (one vpermt2b); up to 64, channels 4q, 4q + 1 and 4q + 2, 4q + 3 are two runs of
// 128 bytes (two vpermt2b with one index, bytes 2 and 3 of each dword taken from the second).
// One permute or two, a blend and a store per 16 layout pixels, instead of buildLayoutFast's
// 64-pixel chunks (4 map loads, 4 masked loads, 4 permutes, 8 unpacks, 4 stores each), whose
// last chunk of a plane is mostly past it (an 8x8 layer's shifted planes: 80 pixels, 2 chunks).
struct TinyPlanes {
  bool ok = false;
  int runs = 0;  // 0: one 64-byte run (vpermb); 1: one 128-byte run; 2: two 128-byte runs (channel pairs)
  int64_t chunks = 0;  // 16-dword chunks of a quad plane
  struct Chunk {
    alignas(64) uint8_t idx[64];  // byte t of dword i: byte (t hw, or (t & 1) hw for two runs) + the input pixel
    uint64_t pad = 0;  // bytes that are padding (the zero point)
  };
  std::vector<Chunk> perCopy;  // [copy][chunk]
  TinyPlanes() = default;
  TinyPlanes(const ConvDirectArgs& a, const ConvGeometry& geo, const GroupPlan& gp) {
    const int64_t hw = a.H * a.W;
    const LayoutMap& m = geo.map;
    if (hw > 64 || gp.cv != geo.cg || geo.phased || geo.tapPlanes || m.rowStep != 1 || m.colStep != 1) return;
    runs = hw <= 16 ? 0 : hw <= 32 ? 1 : 2;
    chunks = (geo.plane + 15) / 16;
    perCopy.resize(static_cast<size_t>(geo.copies * chunks));
    for (int32_t jv = 0; jv < geo.copies; ++jv)
      for (int64_t c = 0; c < chunks; ++c) {
        Chunk& ch = perCopy[static_cast<size_t>(jv * chunks + c)];
        for (int i = 0; i < 16; ++i) {
          const int64_t px = c * 16 + i;
          const int64_t y = px / m.wp + m.rowOff, x = px % m.wp + m.colOff + static_cast<int64_t>(jv) * geo.colStepOfCopy;
          const bool in = px < geo.plane && y >= 0 && y < a.H && x >= 0 && x < a.W;
          for (int t = 0; t < 4; ++t) {
            const int64_t run = runs == 2 ? (t & 1) : t;
            ch.idx[4 * i + t] = static_cast<uint8_t>(in ? run * hw + y * a.W + x : 0);
            if (!in) ch.pad |= uint64_t{1} << (4 * i + t);
          }
        }
      }
    ok = true;
  }
};

// Bytes [0, n) of a 64-byte load (n <= 64 taken as 64).
inline uint64_t loadMask(int64_t n) { return n >= 64 ? ~uint64_t{0} : n <= 0 ? 0 : (uint64_t{1} << n) - 1; }

// The layout of image b, group g from TinyPlanes (channels past the last are 0, as buildLayout's).
template <int Runs>
__attribute__((target("avx512vbmi"))) inline void buildLayoutTinyT(const ConvDirectArgs& a, const GroupPlan& gp,
                                                                  const ConvGeometry& geo, const TinyPlanes& tp,
                                                                  int64_t b, int64_t g, uint8_t* layout) {
  const int64_t hw = a.H * a.W, cg = a.C / a.G;
  const __m512i zaV = _mm512_set1_epi8(static_cast<char>(a.za));
  const uint8_t* x = a.x + (b * a.C + g * cg) * hw;
  const size_t copyBytes = static_cast<size_t>(gp.quads * geo.plane) * 4;
  constexpr uint64_t kHigh = 0xCCCCCCCCCCCCCCCCull;  // bytes 2, 3 of each dword
  // planes in layout order: the last chunk's store may run past its plane, into the next one
  // (written after it) or the slack
  for (int32_t jv = 0; jv < geo.copies; ++jv)
    for (int32_t q = 0; q < gp.quads; ++q) {
      const int real = std::min<int32_t>(4, gp.cv - 4 * q);
      const uint64_t realBytes = 0x1111111111111111ull * ((1u << real) - 1u);
      const uint8_t* run = x + 4 * q * hw;
      // the runs' bytes (masked loads: nothing past the quad's real channels is read)
      const int64_t n0 = Runs == 2 ? std::min(real, 2) * hw : real * hw, n1 = Runs == 2 ? std::max(real - 2, 0) * hw : 0;
      const __m512i r0 = _mm512_maskz_loadu_epi8(loadMask(n0), run);
      const __m512i r1 = Runs >= 1 ? _mm512_maskz_loadu_epi8(loadMask(n0 - 64), run + 64) : r0;
      const __m512i r2 = Runs == 2 ? _mm512_maskz_loadu_epi8(loadMask(n1), run + 2 * hw) : r0;
      const __m512i r3 = Runs == 2 ? _mm512_maskz_loadu_epi8(loadMask(n1 - 64), run + 2 * hw + 64) : r0;
      uint8_t* dst = layout + copyBytes * static_cast<size_t>(jv) + static_cast<size_t>(q * geo.plane) * 4;
      const TinyPlanes::Chunk* ch = tp.perCopy.data() + jv * tp.chunks;
      for (int64_t c = 0; c < tp.chunks; ++c, dst += 64) {
        const __m512i idx = _mm512_load_si512(ch[c].idx);
        __m512i v;
        if constexpr (Runs == 0) v = _mm512_permutexvar_epi8(idx, r0);
        else v = _mm512_permutex2var_epi8(r0, idx, r1);
        if constexpr (Runs == 2) v = _mm512_mask_blend_epi8(kHigh, v, _mm512_permutex2var_epi8(r2, idx, r3));
        v = _mm512_mask_blend_epi8(ch[c].pad, v, zaV);
        _mm512_storeu_si512(dst, _mm512_maskz_mov_epi8(realBytes, v));
      }
    }
}

__attribute__((target("avx512vbmi"), noinline)) void buildLayoutTiny(const ConvDirectArgs& a, const GroupPlan& gp,
                                                                    const ConvGeometry& geo, const TinyPlanes& tp,
                                                                    int64_t b, int64_t g, uint8_t* layout) {
  if (tp.runs == 0) buildLayoutTinyT<0>(a, gp, geo, tp, b, g, layout);
  else if (tp.runs == 1) buildLayoutTinyT<1>(a, gp, geo, tp, b, g, layout);
  else buildLayoutTinyT<2>(a, gp, geo, tp, b, g, layout);
}

struct ChunkMaps {
  std::vector<std::vector<ChunkMap>> maps;
  bool fast = false;
  TinyPlanes tiny;  // layouts of images of at most 64 pixels (tiny.ok; then neither maps nor fast)
  PhaseRowProgram phaseRow;  // phase planes built straight from the input (phaseRow.ok; no maps then)
  // Every group of a convolution has the same channels per group, so the same maps (gp: any group).
  ChunkMaps(const ConvDirectArgs& a, const ConvGeometry& geo, const GroupPlan& gp) {
    if (geo.map.rowStep != 1 || geo.map.colStep != 1 || !cpuFeatures().avx512vbmi) return;
    tiny = TinyPlanes(a, geo, gp);
    if (tiny.ok) return;
    if (geo.phased) {
      const int32_t quads = (gp.cv + 3) / 4;
      phaseRow = PhaseRowProgram(geo.map.wp, -geo.map.colOff, a.W,
                                 geo.phases.at(0, 1, quads, 0, 0, 0) - geo.phases.at(0, 0, quads, 0, 0, 0));
      if (phaseRow.ok) return;
    }
    maps.resize(static_cast<size_t>(gp.cv / geo.cg) * static_cast<size_t>(geo.copies));
    if (geo.tapPlanes) {
      fast = mapTapPlanes(a, geo, maps);
      return;
    }
    const LayoutMap& m = geo.map;
    for (size_t j = 0; j < maps.size(); ++j) {
      // layout pixel (r, w) of copy j reads input (r + rowOff, w + colOff + j * dilation)
      auto srcOf = [&](int64_t px) -> int64_t {
        const int64_t y = px / m.wp + m.rowOff, x = px % m.wp + m.colOff + static_cast<int64_t>(j) * a.dw;
        return y >= 0 && y < a.H && x >= 0 && x < a.W ? y * a.W + x : -1;
      };
      if (!mapChunks(a, m.hp * m.wp, srcOf, maps[j])) return;
    }
    fast = true;
  }
};

// Sums of activations by box sums (one tap per dword): the per-pixel sums of every quad's 4
// bytes (pad channels are 0 in the planes, padding the zero point, as the taps read them) go to
// one int32 plane per copy ([copy][plane] + slack, `sums`), then each pixel group adds the kh x
// kwv taps of that plane: quads + kh kwv vector steps a group instead of quads kh kwv vpdpbusd.
void channelSums(const uint8_t* layout, int32_t copies, int32_t quads, int64_t plane, int32_t* sums) {
  const __m512i ones = _mm512_set1_epi32(0x01010101);
  for (int32_t c = 0; c < copies; ++c) {
    const uint8_t* base = layout + static_cast<size_t>(c) * quads * plane * 4;
    int32_t* dst = sums + static_cast<size_t>(c) * plane;
    int64_t pos = 0;
    // 4 positions a step: independent chains (one chain waits on each vpdpbusd)
    for (; pos + 64 <= plane; pos += 64) {
      __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
      for (int32_t q = 0; q < quads; ++q) {
        const uint8_t* at = base + (static_cast<size_t>(q) * plane + pos) * 4;
        for (int k = 0; k < 4; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], _mm512_loadu_si512(at + 64 * k), ones);
      }
      for (int k = 0; k < 4; ++k) _mm512_storeu_si512(dst + pos + 16 * k, acc[k]);
    }
    for (; pos < plane; pos += 16) {
      __m512i acc = _mm512_setzero_si512();
      for (int32_t q = 0; q < quads; ++q)
        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(base + (static_cast<size_t>(q) * plane + pos) * 4), ones);
      _mm512_storeu_si512(dst + pos, acc);
    }
  }
}

template <class F>
__m512i boxSum(const F& f, const uint8_t* at, const GroupPlan& gp) {
  __m512i v = _mm512_setzero_si512();
  for (const int32_t o : gp.boxOff) v = _mm512_add_epi32(v, f.fetch(at + o, 0));
  return v;
}

// The box sum of one pixel group from the sum planes of its image.
__m512i boxSumOf(const PixelGroup& pg, const GroupPlan& gp, const int32_t* sums) {
  const uint8_t* at = reinterpret_cast<const uint8_t*>(sums + pg.pos0);
  if (pg.mode == MODE_LOAD) return boxSum(FetchLoad{}, at, gp);
  if (pg.mode == MODE_PERM) {
    FetchPerm f;
    f.idx[0] = _mm512_load_si512(pg.idx);
    return boxSum(f, at, gp);
  }
  FetchGather f;
  f.idx[0] = _mm512_load_si512(pg.idx);
  return boxSum(f, at, gp);
}

// A u8 tile of 4 groups of one channel block with the epilogue inside the kernel (FusedU8); channels
// that came near a rounding half are redone in float64. False (nothing done) when the tile's
// groups need vpermt2d or gathers.
template <bool Asum, bool Big>
bool fusedTile(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* off, bool gathered,
               const uint8_t* const* ls, const PixelGroup* const* ps, int noc, int32_t o0, const int32_t* wt,
               int64_t hw, const TileOut& to, int32_t* acc) {
  FusedU8<Asum, Big> e{gp.mult32.data() + o0,
                  gp.colTerm.data() + o0,
                  gp.zw.data() + o0,
                  to.asum,
                  static_cast<uint8_t*>(a.out) + static_cast<size_t>(o0) * hw,
                  static_cast<size_t>(hw),
                  &to,
                  acc,
                  static_cast<float>(a.zo),
                  static_cast<float>(a.relu ? a.zo : 0)};
  if (!tileLoad4(off, gp.nsrc, gathered, ls, ps, noc, wt, e)) return false;
  for (uint32_t r = e.redo; r != 0; r &= r - 1) {
    const int o = __builtin_ctz(r);
    if (std::fabs(gp.mult[o0 + o]) < 0.5) epilogueChannel<OUT_U8, Asum, false>(a, gp, acc, o, o0 + o, hw, to);
    else epilogueChannel<OUT_U8, Asum, true>(a, gp, acc, o, o0 + o, hw, to);
  }
  return true;
}

// The pooled u8 epilogue of a tile of tap planes in pool order (ConvGeometry::tapPool) inside the
// kernel: its 4 groups are the 4 pixels of 16 pooling windows, so the lane-wise maximum of their
// corrected sums is the windows' (requantisation is monotone, m >= 0), requantised once
// (requantF32) and stored as 16 bytes of the pooled plane under `mask`. A channel that is not
// m32ok or came within 2^-12 of a rounding half leaves its raw accumulators at raw[o][4][16] and
// its bit in `redo` (redone in float64 by tapPoolTile).
template <bool Asum>
struct FusedPoolU8 {
  const GroupPlan& gp;
  int32_t o0;
  const int32_t* const* asum;  // the tile's 4 groups' activation sums (Asum)
  uint8_t* out;  // the block's channel 0 at the tile's first window (+ o * phw for channel o)
  size_t phw;
  __mmask16 mask;
  int32_t* raw;
  float zo, lo;
  uint32_t redo = 0;
  // the accumulators start at the column term - Zw * the group's activation sums (accInit): the
  // sums leave the kernel whole. - Zw sum(a) by one vpdpwssd: a sum of at most 32 taps of u8 is
  // below 2^15, a signed word whose high word is 0, times -Zw (a word) in the low word of each
  // dword: exact
  __m512i init(int o, int g) const {
    const __m512i c = _mm512_set1_epi32(gp.colTerm[o0 + o]);
    if (!Asum) return c;
    return _mm512_dpwssd_epi32(c, _mm512_load_si512(asum[g]), _mm512_set1_epi32(static_cast<uint16_t>(-gp.zw[o0 + o])));
  }
  void channel(int o, __m512i a0, __m512i a1, __m512i a2, __m512i a3) {
    const int32_t oc = o0 + o;
    if (gp.m32ok[oc]) {
      const __m512i v = _mm512_max_epi32(_mm512_max_epi32(a0, a1), _mm512_max_epi32(a2, a3));
      __m512 d = _mm512_setzero_ps();
      const __m128i b = requantU8F32(v, _mm512_set1_ps(gp.mult32[oc]), _mm512_set1_ps(zo), _mm512_set1_ps(lo),
                                     _mm512_set1_ps(255.0f), d);
      if (_mm512_cmp_ps_mask(d, _mm512_set1_ps(kTieMargin), _CMP_GE_OQ) == 0) {
        _mm_mask_storeu_epi8(out + static_cast<size_t>(o) * phw, mask, b);
        return;
      }
    }
    // the raw sums, as the float64 redo (ChannelSums) takes them
    StoreAcc{raw}.channel(o, _mm512_sub_epi32(a0, init(o, 0)), _mm512_sub_epi32(a1, init(o, 1)),
                          _mm512_sub_epi32(a2, init(o, 2)), _mm512_sub_epi32(a3, init(o, 3)));
    redo |= 1u << o;
  }
};

// A tile of tap planes in pool order for one channel block (FusedPoolU8), the channels it left
// redone in float64 (requantU8, as the contract's epilogue).
template <bool Asum>
void tapPoolTile(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* off, const uint8_t* const* ls,
                 const PixelGroup* const* ps, int noc, int32_t o0, const int32_t* wt, size_t phw, const TileOut& to,
                 int32_t* acc) {
  uint8_t* out = static_cast<uint8_t*>(a.out) + to.at[0] + static_cast<size_t>(o0) * phw;
  FusedPoolU8<Asum> e{gp,  o0, to.asum, out, phw, to.mask[0], acc, static_cast<float>(a.zo),
                      static_cast<float>(a.relu ? a.zo : 0)};
  if (!tileLoad4(off, gp.nsrc, false, ls, ps, noc, wt, e)) std::abort();  // pool-order groups are plain loads
  const __m512i zo = _mm512_set1_epi32(a.zo), lo = _mm512_set1_epi32(a.relu ? a.zo : 0);
  for (uint32_t r = e.redo; r != 0; r &= r - 1) {
    const int o = __builtin_ctz(r);
    const int32_t oc = o0 + o;
    const ChannelSums<Asum> sum(gp, acc, o, oc, to);
    const __m512i v = _mm512_max_epi32(_mm512_max_epi32(sum(0), sum(1)), _mm512_max_epi32(sum(2), sum(3)));
    const __m512d m = _mm512_set1_pd(gp.mult[oc]);
    _mm_mask_storeu_epi8(out + static_cast<size_t>(o) * phw, to.mask[0],
                         std::fabs(gp.mult[oc]) < 0.5 ? requantU8<false>(v, m, zo, lo) : requantU8<true>(v, m, zo, lo));
  }
}

// The layout of a unit of wide rows (ConvGeometry::wide) from images [b, b + wide): each image's
// padded quad planes (geo.map, as the row pool builds them) into `padded`, then row r of copy jv
// of image m is columns [jv dw, jv dw + Wo) of padded row r, at columns [m Wo, (m + 1) Wo) of the
// copy's row r.
void buildWideRows(const ConvDirectArgs& a, const GroupPlan& gp, const ConvGeometry& geo, const ChunkMaps& chunkMaps,
                   int64_t b, int64_t g, uint8_t* padded, uint8_t* layout) {
  const int64_t hp = geo.map.hp, wp = geo.map.wp, Wo = a.Wo, wideWp = geo.wideWp, plane = geo.plane;
  const int64_t full = Wo / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (Wo - full)) - 1u);
  const int32_t copies = geo.copies, quads = gp.quads, step = geo.colStepOfCopy;
  for (int64_t m = 0; m < geo.wide; ++m) {
    if (chunkMaps.fast) buildLayoutFast(a, gp, geo.map, chunkMaps.maps.data(), b + m, g, padded);
    else buildLayout(a, gp, geo.map, b + m, g, padded);
    for (int32_t jv = 0; jv < copies; ++jv)
      for (int32_t q = 0; q < quads; ++q) {
        const int32_t* src = reinterpret_cast<const int32_t*>(padded) + q * hp * wp + jv * step;
        int32_t* dst = reinterpret_cast<int32_t*>(layout) + (jv * quads + q) * plane + m * Wo;
        for (int64_t r = 0; r < hp; ++r, src += wp, dst += wideWp) {
          int64_t c = 0;
          for (; c < full; c += 16) _mm512_storeu_si512(dst + c, _mm512_loadu_si512(src + c));
          if (tail) _mm512_mask_storeu_epi32(dst + c, tail, _mm512_maskz_loadu_epi32(tail, src + c));
        }
      }
  }
}

constexpr int32_t kPipedMinSources = 14;

// A u8 tile of 4 groups of one channel block through the pipelined kernel: the previous tile's
// pending channels (pend) are requantised inside it, and this tile's become pending. False
// (nothing done) when the tile's groups need vpermt2d or gathers.
bool pipedTile(const ConvDirectArgs& a, const GroupPlan& gp, const int32_t* off, bool gathered,
               const uint8_t* const* ls, const PixelGroup* const* ps, int noc, int32_t o0, const int32_t* wt,
               int64_t hw, const TileOut& to, int32_t* stash, PendingU8& pend) {
  // segments of fewer than 2 sources a pending channel leave its epilogue nothing to overlap
  if (gp.nsrc < kPipedMinSources) return false;
  const uint8_t* base[4];
  for (int g = 0; g < 4; ++g) {
    if (!gathered && ps[g]->mode != MODE_LOAD) return false;
    base[g] = gathered ? ls[g] : ls[g] + ps[g]->pos0 * 4;
  }
  if (gp.needAsum) {
    StashU8<true> e{gp.colTerm.data() + o0, gp.zw.data() + o0, to.asum, stash};
    PipedKernels<FetchLoad, StashU8<true>, PendingU8>::npg4[noc - 1](FetchLoad{}, base, off, gp.nsrc, wt, e, pend);
  } else {
    StashU8<false> e{gp.colTerm.data() + o0, gp.zw.data() + o0, to.asum, stash};
    PipedKernels<FetchLoad, StashU8<false>, PendingU8>::npg4[noc - 1](FetchLoad{}, base, off, gp.nsrc, wt, e, pend);
  }
  pend.n = noc;
  pend.stash = stash;
  pend.m32 = gp.mult32.data() + o0;
  pend.mult = gp.mult.data() + o0;
  pend.out = static_cast<uint8_t*>(a.out) + static_cast<size_t>(o0) * hw;
  pend.hw = static_cast<size_t>(hw);
  pend.t = to;
  pend.zo = static_cast<float>(a.zo);
  pend.lo = static_cast<float>(a.relu ? a.zo : 0);
  pend.zoI = a.zo;
  pend.loI = a.relu ? a.zo : 0;
  pend.big = gp.bigM;
  return true;
}

// Runs group g of the convolution with its weight plan. A task (batch tile x chunk of channel
// blocks) builds its images' planes, then walks its pixel groups a kernel tile (1, 2 or 4
// groups) at a time and runs every channel block of the chunk on that tile while it is hot in L1
// (cache blocking: the tile's input is read from L2 once, not once per channel block).
void runGroup(const ConvDirectArgs& a, const ConvGeometry& geo, const ChunkMaps& chunkMaps, int64_t g,
              const GroupPlan& gp) {
  const int64_t hw = geo.hw, og = geo.og, pgImage = geo.pgImage, imgs = geo.imgs, btiles = geo.btiles;
  const int npg = geo.npg;
  const bool fast = chunkMaps.fast;
  const TileLayouts tl = tileLayoutsOf(geo, gp);
  const int32_t* off = tl.gathered ? tl.off.data() : gp.off.data();
  ThreadPool& pool = ThreadPool::instance();
  const int threads = pool.threads();
  const int32_t nblk = static_cast<int32_t>(gp.blkStart.size());
  // Tasks: batch tiles x chunks of channel blocks (several chunks when the batch is small).
  int32_t chunks = 1;
  if (threads > 1 && btiles < 2 * threads)
    chunks = std::min<int32_t>(nblk, static_cast<int32_t>((2 * threads + btiles - 1) / btiles));
  const int32_t perChunk = (nblk + chunks - 1) / chunks;
  chunks = (nblk + perChunk - 1) / perChunk;
  const size_t groupBytes = static_cast<size_t>(gp.nsrc) * 64;  // one gathered pixel group
  auto task = [&](int64_t t) {
    const int64_t b0 = (t / chunks) * imgs;
    const int64_t nimg = std::min(imgs, a.B - b0);
    const int32_t c0 = static_cast<int32_t>(t % chunks) * perChunk;
    const int32_t c1 = std::min(nblk, c0 + perChunk);
    // layouts: one an image, or one a unit of `wide` images (wide rows; nimg is whole units)
    const int64_t units = geo.wide ? nimg / geo.wide : nimg;
    const int64_t npgAll = units * pgImage;
    const int64_t phw = (a.Ho / 2) * (a.Wo / 2);  // pooled plane (pool2)
    thread_local Scratch layoutBuf, tileBuf, sumBuf, poolBuf, boxBuf, phaseBuf;
    uint8_t* layout = static_cast<uint8_t*>(layoutBuf.get(geo.layoutBytes * static_cast<size_t>(units)));
    uint8_t* gatheredTile = tl.gathered ? static_cast<uint8_t*>(tileBuf.get(groupBytes * 4)) : nullptr;
    int32_t* asum = static_cast<int32_t*>(sumBuf.get(static_cast<size_t>(npgAll) * 64 + 64));
    // pool2 (strided; stride 1 pools in the epilogue, geo.rowPool): the corrected int32 sums
    // [image][channel of the group][hw] of a ring of images, each pooled once its last pixel
    // group is done (while in cache); a kernel tile spans at most `ring` - 1 images
    const bool pooled = a.pool2 != 0 && !geo.rowPool && !geo.tapPool;
    const int64_t ring = 2 + (npg + pgImage - 1) / pgImage;
    int32_t* sums = pooled ? static_cast<int32_t*>(poolBuf.get(static_cast<size_t>(ring * og * hw) * 4)) : nullptr;
    ConvDirectArgs ai = a;
    if (pooled) ai.outKind = OUT_I32, ai.out = sums;
    if (!layout || !asum || (tl.gathered && !gatheredTile) || (pooled && !sums))
      std::abort();  // out of memory: no sane way to continue
    const size_t copyBytes = static_cast<size_t>(gp.quads * geo.plane) * 4;
    const int32_t J = static_cast<int32_t>(gp.cv / geo.cg);
    for (int64_t i = 0; i < units; ++i) {
      uint8_t* p = layout + geo.layoutBytes * static_cast<size_t>(i);
      std::memset(p + geo.layoutBytes - kSlack, 0, kSlack);
      if (geo.wide) {
        const size_t paddedBytes = static_cast<size_t>(gp.quads * geo.map.hp * geo.map.wp) * 4 + kSlack;
        uint8_t* padded = static_cast<uint8_t*>(phaseBuf.get(paddedBytes));
        if (!padded) std::abort();
        buildWideRows(a, gp, geo, chunkMaps, b0 + i * geo.wide, g, padded, p);
        continue;
      }
      if (geo.phased && chunkMaps.phaseRow.ok) {
        buildPhasesFast(a, gp, geo.map, geo.phases, chunkMaps.phaseRow, b0 + i, g, p);
        continue;
      }
      if (geo.phased) {
        const size_t fullBytes = static_cast<size_t>(gp.quads * geo.map.hp * geo.map.wp) * 4 + kSlack;
        uint8_t* full = static_cast<uint8_t*>(phaseBuf.get(fullBytes));
        if (!full) std::abort();
        std::memset(full + fullBytes - kSlack, 0, kSlack);
        if (fast) buildLayoutFast(a, gp, geo.map, chunkMaps.maps.data(), b0 + i, g, full);
        else buildLayout(a, gp, geo.map, b0 + i, g, full);
        splitPhases(full, gp.quads, geo.map.hp, geo.map.wp, geo.phases, p);
        continue;
      }
      if (chunkMaps.tiny.ok) {
        buildLayoutTiny(a, gp, geo, chunkMaps.tiny, b0 + i, g, p);
        continue;
      }
      for (int32_t jv = 0; jv < geo.copies; ++jv) {
        uint8_t* dst = p + copyBytes * static_cast<size_t>(jv);
        if (fast) {
          buildLayoutFast(a, gp, geo.map, chunkMaps.maps.data() + static_cast<size_t>(jv) * J, b0 + i, g, dst);
        } else {
          LayoutMap m = geo.map;
          m.colOff += static_cast<int64_t>(jv) * geo.colStepOfCopy;
          buildLayout(a, gp, m, b0 + i, g, dst);
        }
      }
    }
    // Pixel group f of the tile: image f / pgImage, group f % pgImage.
    auto planesOf = [&](int64_t f) { return layout + geo.layoutBytes * static_cast<size_t>(f / pgImage); };
    auto pgOf = [&](int64_t f) { return &geo.pgs[static_cast<size_t>(f % pgImage)]; };
    alignas(64) int32_t acc[24 * 16];
    alignas(64) int32_t stash[6 * 64];
    PendingU8 pend;
    // Sums of activations (some Zw != 0): a one-channel kernel of weights 1 over up to 4 pixel
    // groups at a time (independent accumulator chains; one group a call waits on each vpdpbusd).
    const bool boxed = gp.needAsum && !gp.boxOff.empty();
    if (boxed) {
      const size_t sumPlaneBytes = static_cast<size_t>(geo.planeSets() * geo.plane) * 4 + kSlack;
      uint8_t* sp = static_cast<uint8_t*>(boxBuf.get(sumPlaneBytes * static_cast<size_t>(units)));
      if (!sp) std::abort();
      for (int64_t i = 0; i < units; ++i) {
        int32_t* sums = reinterpret_cast<int32_t*>(sp + sumPlaneBytes * static_cast<size_t>(i));
        std::memset(reinterpret_cast<uint8_t*>(sums) + sumPlaneBytes - kSlack, 0, kSlack);
        channelSums(layout + geo.layoutBytes * static_cast<size_t>(i), geo.planeSets(), gp.quads, geo.plane, sums);
      }
      for (int64_t f = 0; f < npgAll; ++f) {
        const int32_t* sums = reinterpret_cast<const int32_t*>(sp + sumPlaneBytes * static_cast<size_t>(f / pgImage));
        _mm512_store_si512(asum + f * 16, boxSumOf(*pgOf(f), gp, sums));
      }
    }
    if (gp.needAsum && geo.tapPlanes) {
      // tap planes: a pixel's activation sum is the sum of its quads' bytes (taps past the last
      // are 0), per 16 layout pixels independent chains (channelSums), not a one-channel kernel
      // call per 4 groups waiting on its vpdpbusd
      // (group j of an image starts at layout pixel 16 j: its sums land where the groups' go)
      for (int64_t i = 0; i < nimg; ++i)
        channelSums(layout + geo.layoutBytes * static_cast<size_t>(i), 1, gp.quads, geo.plane, asum + i * pgImage * 16);
    }
    if (gp.needAsum && !boxed && !geo.tapPlanes)
      for (int64_t f0 = 0; f0 < npgAll;) {
        const int n = npgAll - f0 >= 4 ? 4 : npgAll - f0 >= 2 ? 2 : 1;
        const uint8_t* ls[4];
        const PixelGroup* ps[4];
        for (int k = 0; k < n; ++k) {
          ls[k] = planesOf(f0 + k);
          ps[k] = pgOf(f0 + k);
        }
        tile(gp.off.data(), gp.nsrc, false, ls, ps, n, 1, gp.ones.data(), acc);
        std::memcpy(asum + f0 * 16, acc, static_cast<size_t>(n) * 64);
        f0 += n;
      }
    // The next batch tile's input, prefetched into L2 a slice per kernel tile while this one
    // computes (the input of a call is usually not in cache: a plane build would wait for it).
    const int64_t nextB = b0 + imgs, nextImgs = std::min(imgs, a.B - nextB);
    const int64_t imageLines = (geo.cg * a.H * a.W + 63) / 64;
    const int64_t nextLines = nextImgs > 0 ? imageLines * nextImgs : 0;
    const int64_t kernelTiles = (npgAll + npg - 1) / npg;
    // walked as a pointer (the address arithmetic per line was ~3% of a stride-2 layer's time)
    // (addresses as integers: past the last image they point nowhere and are never prefetched)
    const uintptr_t imageStride = static_cast<uintptr_t>(a.C * a.H * a.W);
    uintptr_t pfImage = reinterpret_cast<uintptr_t>(a.x) + static_cast<uintptr_t>((nextB * a.C + g * geo.cg) * a.H * a.W);
    uintptr_t pfAt = pfImage;
    uintptr_t pfImageEnd = pfImage + static_cast<uintptr_t>(imageLines * 64);
    int64_t prefetched = 0;
    const int32_t chO0 = c1 > c0 ? gp.blkStart[c0] : 0, chO1 = c1 > c0 ? gp.blkStart[c1 - 1] + gp.blkNoc[c1 - 1] : 0;
    // the pool of image i's channels of this task (its sums complete)
    auto poolImage = [&](int64_t i) {
      const int64_t ph = a.Ho / 2, pw = a.Wo / 2;
      const int32_t lo = a.relu ? a.zo : 0;
      for (int32_t oc = chO0; oc < chO1; ++oc) {
        const int32_t* v = sums + ((i % ring) * og + oc) * hw;
        uint8_t* o = static_cast<uint8_t*>(a.out) + ((b0 + i) * a.O + g * og + oc) * ph * pw;
        if (std::fabs(gp.mult[oc]) < 0.5) poolRequantChannel<false>(v, a.Ho, a.Wo, gp.mult[oc], a.zo, lo, o);
        else poolRequantChannel<true>(v, a.Ho, a.Wo, gp.mult[oc], a.zo, lo, o);
      }
    };
    int64_t pooledImages = 0;
    for (int64_t f0 = 0; f0 < npgAll;) {
      // The widest kernel shape that fits the pixel groups left.
      int n = npg;
      while (n > npgAll - f0) n = n == 4 ? 2 : 1;
      for (const int64_t upTo = nextLines * (f0 / npg + 1) / kernelTiles; prefetched < upTo; ++prefetched) {
        _mm_prefetch(reinterpret_cast<const char*>(pfAt), _MM_HINT_T1);
        if ((pfAt += 64) == pfImageEnd) {
          pfImage += imageStride;
          pfAt = pfImage;
          pfImageEnd = pfImage + static_cast<uintptr_t>(imageLines * 64);
        }
      }
      const uint8_t* ls[4];
      const PixelGroup* ps[4];
      TileOut to;
      to.n = n;
      for (int k = 0; k < n; ++k) {
        const int64_t f = f0 + k;
        ps[k] = pgOf(f);
        if (tl.gathered) {
          uint8_t* d = gatheredTile + groupBytes * static_cast<size_t>(k);
          gatherPixelGroup(*ps[k], gp, planesOf(f), d);
          ls[k] = d;
        } else {
          ls[k] = planesOf(f);
        }
        to.asum[k] = asum + f * 16;
        if (geo.tapPool) {
          const int v = ps[k]->pooledValid;
          to.at[0] = static_cast<size_t>(((b0 + f / pgImage) * a.O + g * og) * phw + ps[k]->pooledAt);
          to.mask[0] = static_cast<__mmask16>(v >= 16 ? 0xffff : (1u << v) - 1u);
          continue;
        }
        if (geo.wide) {
          if (k % 2 == 0) {
            // the unit's images from b0 + (f / pgImage) wide; pair k / 2's values are lanes 8 (k / 2) + j
            const PixelGroup& pg = *ps[k];
            const int64_t img0 = b0 + (f / pgImage) * geo.wide;
            for (int i = 0; i < pg.parts; ++i) {
              const int lane0 = 8 * (k / 2) + pg.partLane0[i];
              to.partAt[to.nparts] = static_cast<size_t>(((img0 + pg.partImg[i]) * a.O + g * og) * phw + pg.partAt[i]) -
                                     static_cast<size_t>(lane0);
              to.partMask[to.nparts] = static_cast<__mmask16>(((1u << pg.partLanes[i]) - 1u) << lane0);
              ++to.nparts;
            }
          }
          continue;
        }
        if (geo.rowPool) {
          if (k % 2 == 0) to.at[k / 2] = static_cast<size_t>(((b0 + f / pgImage) * a.O + g * og) * phw + ps[k]->pooledAt);
          continue;
        }
        const int valid = ps[k]->valid;
        to.mask[k] = static_cast<__mmask16>(valid >= 16 ? 0xffff : (1u << valid) - 1u);
        to.at[k] = pooled ? static_cast<size_t>(((f / pgImage) % ring) * og * hw + (f % pgImage) * 16)
                          : static_cast<size_t>(((b0 + f / pgImage) * a.O + g * og) * hw + (f % pgImage) * 16);
      }
      to.whole4 = n == 4 && !geo.rowPool && !geo.tapPool;
      if (geo.wide) {
        to.pick = kPick.even[8];
        to.joined = true;
      } else if (geo.rowPool) {
        const int v0 = ps[0]->pooledValid, v1 = n == 4 ? ps[2]->pooledValid : 0;
        to.pick = kPick.even[v0];
        to.joined = n == 2 || to.at[1] == to.at[0] + static_cast<size_t>(v0);
        to.mask[0] = static_cast<__mmask16>((1u << (to.joined ? v0 + v1 : v0)) - 1u);
        to.mask[1] = static_cast<__mmask16>(((1u << v1) - 1u) << v0);
        if (n == 4) to.at[1] -= static_cast<size_t>(v0);  // lane v0 holds pair 1's first value (wraps harmlessly)
      }
      for (int k = 0; k < n && to.whole4; ++k) to.whole4 = to.mask[k] == 0xffff && to.at[k] == to.at[0] + 16 * static_cast<size_t>(k);
      // the u8 epilogue inside the kernel for any 4 groups (contiguous or not, partial or not)
      const bool fuse = n == 4 && !geo.rowPool && ai.outKind == OUT_U8 && gp.allM32ok;
      for (int32_t bi = c0; bi < c1; ++bi) {
        const int32_t noc = gp.blkNoc[bi], o0 = gp.blkStart[bi];
        const int32_t* wt = gp.wt.data() + gp.blkWt[bi];
        if (geo.tapPool) {  // n == 4: a pool-order tile is 4 groups of one image
          if (gp.needAsum) tapPoolTile<true>(a, gp, off, ls, ps, noc, o0, wt, static_cast<size_t>(phw), to, acc);
          else tapPoolTile<false>(a, gp, off, ls, ps, noc, o0, wt, static_cast<size_t>(phw), to, acc);
          continue;
        }
        if (fuse && pipedTile(ai, gp, off, tl.gathered, ls, ps, noc, o0, wt, hw, to, stash, pend)) continue;
        if (fuse && (gp.needAsum ? gp.bigM ? fusedTile<true, true>(ai, gp, off, tl.gathered, ls, ps, noc, o0, wt, hw, to, acc)
                                           : fusedTile<true, false>(ai, gp, off, tl.gathered, ls, ps, noc, o0, wt, hw, to, acc)
                                 : gp.bigM ? fusedTile<false, true>(ai, gp, off, tl.gathered, ls, ps, noc, o0, wt, hw, to, acc)
                                           : fusedTile<false, false>(ai, gp, off, tl.gathered, ls, ps, noc, o0, wt, hw, to, acc)))
          continue;
        tile(off, gp.nsrc, tl.gathered, ls, ps, n, noc, wt, acc);
        if (!geo.rowPool) epilogueTile(ai, gp, acc, noc, o0, static_cast<size_t>(hw), to);
        else if (gp.needAsum) poolTileT<true>(a, gp, acc, noc, o0, static_cast<size_t>(phw), to);
        else poolTileT<false>(a, gp, acc, noc, o0, static_cast<size_t>(phw), to);
      }
      f0 += n;
      if (pooled)
        for (; pooledImages < nimg && (pooledImages + 1) * pgImage <= f0; ++pooledImages) poolImage(pooledImages);
    }
    pend.flush();
    if (a.after && c1 > c0)
      a.after(a.afterCtx, b0, nimg, g * og + gp.blkStart[c0], g * og + gp.blkStart[c1 - 1] + gp.blkNoc[c1 - 1]);
  };
  const int64_t tasks = btiles * chunks;
  const double work = static_cast<double>(a.B) * hw * og * gp.nsrc * 4;
  if (tasks <= 1 || threads <= 1 || work < 2.0e6) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    pool.run(tasks, task);
  }
}

// The fields of a convolution a prepared plan was made for (everything but x, out and after).
bool sameConvolution(const ConvDirectArgs& a, const ConvDirectArgs& b) {
  if (a.B != b.B || a.C != b.C || a.H != b.H || a.W != b.W || a.za != b.za || a.O != b.O || a.kh != b.kh ||
      a.kw != b.kw || a.sh != b.sh || a.sw != b.sw || a.ph != b.ph || a.pw != b.pw || a.dh != b.dh || a.dw != b.dw ||
      a.G != b.G || a.Ho != b.Ho || a.Wo != b.Wo || a.outKind != b.outKind || a.zo != b.zo || a.relu != b.relu ||
      a.pool2 != b.pool2)
    return false;
  return true;
}

}  // namespace

struct ConvDirectPrepared {
  ConvDirectArgs args;  // x, out and after unused
  ConvGeometry geo;
  std::vector<GroupPlan> groups;
  std::unique_ptr<ChunkMaps> chunkMaps;  // built once here, read by every call (and thread)
};

// The shape fields a ConvGeometry and its chunk maps are made from.
bool sameShape(const ConvDirectArgs& a, const ConvDirectArgs& b) {
  return a.B == b.B && a.C == b.C && a.H == b.H && a.W == b.W && a.O == b.O && a.kh == b.kh && a.kw == b.kw &&
         a.sh == b.sh && a.sw == b.sw && a.ph == b.ph && a.pw == b.pw && a.dh == b.dh && a.dw == b.dw && a.G == b.G &&
         a.Ho == b.Ho && a.Wo == b.Wo;
}

// pool2 needs a u8 output, a window in each direction and multipliers >= 0 (monotone requantisation).
bool poolable(const ConvDirectArgs& a) {
  if (!a.pool2) return true;
  if (a.outKind != OUT_U8 || a.Ho < 2 || a.Wo < 2 || a.mult == nullptr) return false;
  for (int64_t o = 0; o < a.O; ++o)
    if (!(a.mult[o] >= 0)) return false;
  return true;
}

bool convDirectAvx512(const ConvDirectArgs& a) {
  if (!poolable(a)) return false;
  // The last shape's geometry and chunk maps, per calling thread: repeated calls of one layer
  // (new weights each, as a Monte Carlo sample's) rebuild only the weight plan.
  struct LastShape {
    bool valid = false;
    ConvDirectArgs args{};
    ConvGeometry geo;
    std::unique_ptr<ChunkMaps> chunkMaps;
    GroupPlan group;  // the weight plan of the group running (its memory reused by the next)
  };
  thread_local LastShape last;
  if (!last.valid || !sameShape(a, last.args)) {
    last.valid = false;
    last.chunkMaps.reset();
    if (!geometryOf(a, last.geo)) return false;
    last.args = a;
    last.valid = true;
  }
  const ConvGeometry& geo = last.geo;
  for (int64_t g = 0; g < a.G; ++g) {
    GroupPlan& gp = last.group;
    planGroup(a, g, geo.shape, geo.offsetWp(), geo.plane, geo.shifted, geo.phaseLayout(), geo.tapPlanes, gp);
    if (!last.chunkMaps) last.chunkMaps = std::make_unique<ChunkMaps>(a, geo, gp);
    runGroup(a, geo, *last.chunkMaps, g, gp);
  }
  return true;
}

ConvDirectPrepared* convDirectPrepare(const ConvDirectArgs& a) {
  if (!cpuFeatures().avx512vnni || !poolable(a)) return nullptr;
  auto* p = new ConvDirectPrepared;
  p->args = a;
  if (!geometryOf(a, p->geo)) {
    delete p;
    return nullptr;
  }
  p->groups.reserve(static_cast<size_t>(a.G));
  p->groups.resize(static_cast<size_t>(a.G));
  for (int64_t g = 0; g < a.G; ++g)
    planGroup(a, g, p->geo.shape, p->geo.offsetWp(), p->geo.plane, p->geo.shifted, p->geo.phaseLayout(),
              p->geo.tapPlanes, p->groups[static_cast<size_t>(g)]);
  p->chunkMaps = std::make_unique<ChunkMaps>(a, p->geo, p->groups[0]);
  return p;
}

void convDirectRelease(ConvDirectPrepared* p) { delete p; }

bool convDirectRepack(ConvDirectPrepared* p, const ConvDirectArgs& a, bool weightsInPlace) {
  if (!sameConvolution(a, p->args) || !poolable(a)) return false;
  p->args = a;
  for (int64_t g = 0; g < a.G; ++g)
    planGroup(a, g, p->geo.shape, p->geo.offsetWp(), p->geo.plane, p->geo.shifted, p->geo.phaseLayout(),
              p->geo.tapPlanes, p->groups[static_cast<size_t>(g)], weightsInPlace);
  return true;
}

bool convDirectTapOrder(ConvDirectPrepared* p, const ConvDirectArgs& a, TapOrder& out) {
  if (!sameConvolution(a, p->args) || !poolable(a) || a.G != 1 || p->geo.tapPlanes) return false;
  const int64_t cg = a.C / a.G;
  if (tapsPerDword(cg, a.kw) != 1) return false;
  out = tapOrderOf(p->groups[0], cg, static_cast<int32_t>(a.kh * a.kw));
  return true;
}

bool convDirectAvx512Prepared(const ConvDirectArgs& a, const ConvDirectPrepared& p) {
  if (!sameConvolution(a, p.args)) return false;
  for (int64_t g = 0; g < a.G; ++g) runGroup(a, p.geo, *p.chunkMaps, g, p.groups[static_cast<size_t>(g)]);
  return true;
}

}  // namespace qbnn

#pragma GCC pop_options

#else
namespace qbnn {
struct ConvDirectPrepared {};
bool convDirectAvx512(const ConvDirectArgs&) { return false; }
ConvDirectPrepared* convDirectPrepare(const ConvDirectArgs&) { return nullptr; }
void convDirectRelease(ConvDirectPrepared* p) { delete p; }
bool convDirectAvx512Prepared(const ConvDirectArgs&, const ConvDirectPrepared&) { return false; }
bool convDirectRepack(ConvDirectPrepared*, const ConvDirectArgs&, bool) { return false; }
bool convDirectTapOrder(ConvDirectPrepared*, const ConvDirectArgs&, TapOrder&) { return false; }
}  // namespace qbnn
#endif
