// Direct int8 convolution on AVX-512 VNNI, no im2col. Output pixels (flattened (ho, wo) of one
// image) run along the 16 lanes of a zmm and output channels along separate accumulators, so
// the NCHW output is written 16 contiguous pixels at a time and small channel counts waste no
// lanes. The input of one image and group is laid out once as "quad planes": plane q holds, for
// every padded pixel (hp, wp), the dword of 4 consecutive virtual input channels 4q..4q+3
// (padding reads the zero point; channels past the last are 0 with weight 0). One kernel tap
// (plane q, row i, column j) of 16 output pixels is then a dword vector at a constant offset
// from the pixels' positions: one load when the positions are consecutive, else two loads and
// vpermt2d (positions within 32 dwords), else a gather. Weights are broadcast dwords.
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
#include <cstdlib>
#include <cstring>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

namespace qbnn {
namespace {

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
};

// Everything about one convolution group that does not depend on the image.
struct GroupPlan {
  int32_t cv = 0, quads = 0, kwv = 0, dwv = 0, shift = 0;
  int32_t nsrc = 0;
  std::vector<int32_t> off;  // byte offset of each source from a pixel's position
  std::vector<int32_t> wt;  // per block: [nsrc][noc] weight dwords
  std::vector<int32_t> ones;  // [nsrc] dwords of 1 at real taps: sum_k a (when some Zw != 0)
  std::vector<int32_t> blkStart, blkNoc;
  std::vector<size_t> blkWt;
  std::vector<int32_t> colTerm, zw;
  std::vector<double> mult;
  bool needAsum = false;
};

int8_t packedAt(const Packed& p, int32_t o, int32_t k) {
  return static_cast<int8_t>(
      p.data[static_cast<size_t>(o / 16) * p.blockBytes() + static_cast<size_t>(k >> 2) * 64 + (o % 16) * 4 + (k & 3)]);
}

template <class F>
void runKernel(int shape, int noc, const F& f, const uint8_t* const* base, const GroupPlan& gp, const int32_t* wt,
               int32_t* acc) {
  ConvKernels<F>::table[shape][noc - 1](f, base, gp.off.data(), gp.nsrc, wt, acc);
}

// Accumulators of `noc` channels x `npg` pixel groups; group g reads the planes at layouts[g].
void tile(const GroupPlan& gp, const uint8_t* const* layouts, const PixelGroup* const* pgs, int npg, int noc,
          const int32_t* wt, int32_t* acc) {
  const int shape = npg == 4 ? 2 : npg - 1;
  const uint8_t* base[4];
  int mode = MODE_LOAD;
  for (int g = 0; g < npg; ++g) {
    base[g] = layouts[g] + pgs[g]->pos0 * 4;
    mode = std::max(mode, pgs[g]->mode);
  }
  if (mode == MODE_LOAD) {
    runKernel(shape, noc, FetchLoad{}, base, gp, wt, acc);
  } else if (mode == MODE_PERM) {
    FetchPerm f;
    for (int g = 0; g < npg; ++g) f.idx[g] = _mm512_load_si512(pgs[g]->idx);
    runKernel(shape, noc, f, base, gp, wt, acc);
  } else {
    FetchGather f;
    for (int g = 0; g < npg; ++g) f.idx[g] = _mm512_load_si512(pgs[g]->idx);
    runKernel(shape, noc, f, base, gp, wt, acc);
  }
}

// The contract's epilogue for 16 pixels of one channel (same float64 steps as the GEMM's).
inline void epilogue(const ConvDirectArgs& a, __m512i acc, double mult, void* out, size_t idx, __mmask16 mask) {
  if (a.outKind == OUT_I32) {
    _mm512_mask_storeu_epi32(static_cast<int32_t*>(out) + idx, mask, acc);
    return;
  }
  const __m512d m = _mm512_set1_pd(mult);
  const __m512d vlo = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(acc)), m);
  const __m512d vhi = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(acc, 1)), m);
  if (a.outKind == OUT_F32) {
    const __m512 f =
        _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(vlo)), _mm512_cvtpd_ps(vhi), 1);
    _mm512_mask_storeu_ps(static_cast<float*>(out) + idx, mask, f);
    return;
  }
  // Clamping v to 2^30 from above keeps the conversion exact and changes no result (the output
  // saturates long before); below -2^31 the conversion gives INT_MIN, which the clamp to `lo`
  // takes care of. The conversion rounds half to even (in the instruction, not from MXCSR).
  const __m512d big = _mm512_set1_pd(1073741824.0);
  const __m256i qlo = _mm512_cvt_roundpd_epi32(_mm512_min_pd(vlo, big), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i qhi = _mm512_cvt_roundpd_epi32(_mm512_min_pd(vhi, big), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512i q = _mm512_add_epi32(_mm512_inserti64x4(_mm512_castsi256_si512(qlo), qhi, 1), _mm512_set1_epi32(a.zo));
  q = _mm512_max_epi32(q, _mm512_set1_epi32(a.relu ? a.zo : 0));
  _mm_mask_storeu_epi8(static_cast<uint8_t*>(out) + idx, mask, _mm512_cvtusepi32_epi8(q));
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
        maskTab[static_cast<size_t>(c * 4 + k)] = bits;
        colTab[static_cast<size_t>(c * 4 + k)] = col0;
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
          const uint64_t bits = maskTab[static_cast<size_t>(c * 4 + k)];
          if (src[k] == nullptr) {
            row[k] = _mm_setzero_si128();
          } else if (!rowIn || bits == 0) {
            row[k] = zaV;
          } else {
            const uintptr_t at = reinterpret_cast<uintptr_t>(src[k]) +
                                 static_cast<uintptr_t>(y * a.W + colTab[static_cast<size_t>(c * 4 + k)]);
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

// Pixel groups per kernel call: the most the batch tile allows (each fetched pixel vector then
// feeds `noc` vpdpbusd and each broadcast weight `npg`). Depends on the geometry only.
int chooseShape(int64_t groupsOfPixels) {
  if (groupsOfPixels >= 4) return 2;
  if (groupsOfPixels >= 2) return 1;
  return 0;
}

GroupPlan planGroup(const ConvDirectArgs& a, int64_t g, int shape, int64_t wp, int64_t plane) {
  GroupPlan gp;
  const Packed& p = *a.packs[g];
  const int64_t cg = a.C / a.G, og = a.O / a.G;
  const int32_t kg = static_cast<int32_t>(cg * a.kh * a.kw);
  // J shifted copies per channel when that needs fewer dwords per tap row.
  int32_t bestJ = 1;
  int64_t bestCost = -1;
  for (int32_t j : {1, 2, 4}) {
    if (j > 1 && (j > a.kw || cg * j > 4)) continue;
    const int64_t cost = (cg * j + 3) / 4 * ((a.kw + j - 1) / j);
    if (bestCost < 0 || cost < bestCost) {
      bestCost = cost;
      bestJ = j;
    }
  }
  const int32_t J = bestJ;
  gp.cv = static_cast<int32_t>(cg * J);
  gp.quads = (gp.cv + 3) / 4;
  gp.kwv = static_cast<int32_t>((a.kw + J - 1) / J);
  gp.dwv = static_cast<int32_t>(J * a.dw);
  gp.nsrc = static_cast<int32_t>(gp.quads * a.kh * gp.kwv);
  // Source s = (quad q, row i, column jv); dword byte t is virtual channel 4q + t = (jj, c).
  struct Tap {
    int32_t q, i, jv;
  };
  std::vector<Tap> taps;
  for (int32_t q = 0; q < gp.quads; ++q)
    for (int32_t i = 0; i < a.kh; ++i)
      for (int32_t jv = 0; jv < gp.kwv; ++jv) {
        taps.push_back({q, i, jv});
        gp.off.push_back(static_cast<int32_t>((q * plane + i * a.dh * wp + jv * gp.dwv) * 4));
      }
  // Original column k of the weight row for byte t of source s, or -1 (no tap there).
  auto kOf = [&](const Tap& s, int t) -> int32_t {
    const int32_t v = 4 * s.q + t;
    if (v >= gp.cv) return -1;
    const int32_t c = static_cast<int32_t>(v % cg), jj = static_cast<int32_t>(v / cg);
    const int32_t j = s.jv * J + jj;
    if (j >= a.kw) return -1;
    return static_cast<int32_t>((c * a.kh + s.i) * a.kw + j);
  };
  const int maxNoc = kShapeMaxNoc[shape];
  const int32_t nblk = static_cast<int32_t>((og + maxNoc - 1) / maxNoc);
  const int32_t taps1 = static_cast<int32_t>(a.kh * a.kw);  // taps per channel
  gp.wt.resize(static_cast<size_t>(og) * gp.nsrc);
  std::vector<uint8_t> row(static_cast<size_t>(p.kgroups) * 4 + 4 * static_cast<size_t>(taps1) + 64);
  std::vector<int32_t> quad(static_cast<size_t>(taps1) + 16);
  for (int32_t bi = 0, o0 = 0; bi < nblk; ++bi) {
    const int32_t noc = static_cast<int32_t>(og / nblk + (bi < og % nblk ? 1 : 0));
    gp.blkStart.push_back(o0);
    gp.blkNoc.push_back(noc);
    gp.blkWt.push_back(static_cast<size_t>(o0) * gp.nsrc);
    int32_t* wt = gp.wt.data() + static_cast<size_t>(o0) * gp.nsrc;
    for (int32_t o = 0; o < noc; ++o) {
      if (J > 1) {  // few input channels: small, the general mapping
        for (int32_t s = 0; s < gp.nsrc; ++s) {
          uint32_t dword = 0;
          for (int t = 0; t < 4; ++t) {
            const int32_t k = kOf(taps[s], t);
            if (k >= 0) dword |= static_cast<uint32_t>(static_cast<uint8_t>(packedAt(p, o0 + o, k))) << (8 * t);
          }
          wt[static_cast<size_t>(s) * noc + o] = static_cast<int32_t>(dword);
        }
        continue;
      }
      // Unpack row o ([c][i][j], one dword per VNNI group), then interleave the rows of 4
      // channels into the tap dwords of each quad (source s = q * taps + tap).
      const uint8_t* blk = p.data + static_cast<size_t>((o0 + o) / 16) * p.blockBytes() + ((o0 + o) % 16) * 4;
      for (int32_t gi = 0; gi < p.kgroups; ++gi) std::memcpy(row.data() + gi * 4, blk + static_cast<size_t>(gi) * 64, 4);
      std::memset(row.data() + kg, 0, row.size() - static_cast<size_t>(kg));
      for (int32_t q = 0; q < gp.quads; ++q) {
        for (int32_t t0 = 0; t0 < taps1; t0 += 16) {
          __m128i r[4];
          for (int t = 0; t < 4; ++t) {
            const int32_t c = 4 * q + t;
            r[t] = c < cg ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(row.data() + c * taps1 + t0))
                          : _mm_setzero_si128();
          }
          // Lanes past this channel's taps hold the next channel's: they are never stored.
          interleave4(r, quad.data());
          const int32_t n = std::min<int32_t>(16, taps1 - t0);
          for (int32_t t = 0; t < n; ++t) wt[static_cast<size_t>(q * taps1 + t0 + t) * noc + o] = quad[t];
        }
      }
    }
    o0 += noc;
  }
  gp.colTerm.resize(og);
  gp.zw.resize(og);
  gp.mult.resize(og);
  for (int64_t o = 0; o < og; ++o) {
    const int64_t n = g * og + o;
    const int32_t bias = a.bias ? a.bias[n] : 0;
    gp.zw[o] = p.zeroPoint[o];
    gp.colTerm[o] = wadd(wsub(bias, wmul(a.za, p.rowSums[o])), wmul(wmul(kg, a.za), p.zeroPoint[o]));
    gp.mult[o] = a.mult ? a.mult[n] : 0.0;
    if (p.zeroPoint[o] != 0) gp.needAsum = true;
  }
  if (gp.needAsum) {
    for (int32_t s = 0; s < gp.nsrc; ++s) {
      uint32_t dword = 0;
      for (int t = 0; t < 4; ++t)
        if (kOf(taps[s], t) >= 0) dword |= 1u << (8 * t);
      gp.ones.push_back(static_cast<int32_t>(dword));
    }
  }
  return gp;
}

}  // namespace

bool convDirectAvx512(const ConvDirectArgs& a) {
  const int64_t hw = a.Ho * a.Wo;
  // 1x1: planes of the used pixels only, then stride 1.
  const bool pointwise = a.kh == 1 && a.kw == 1;
  const LayoutMap map = pointwise ? LayoutMap{a.Ho, a.Wo, a.sh, a.sw, -a.ph, -a.pw}
                                  : LayoutMap{a.H + 2 * a.ph, a.W + 2 * a.pw, 1, 1, -a.ph, -a.pw};
  const int64_t hp = map.hp, wp = map.wp, sh = pointwise ? 1 : a.sh, sw = pointwise ? 1 : a.sw;
  const int64_t plane = hp * wp;
  // Dword positions must fit int32 offsets (gathers, source offsets).
  const int64_t cg = a.C / a.G;
  if ((cg + 3) * 4 * plane * 4 + static_cast<int64_t>(kSlack) > (int64_t{1} << 31)) return false;
  const int64_t og = a.O / a.G;
  const int64_t pgImage = (hw + 15) / 16;
  // Pixel groups of one image (the same for every image and group).
  std::vector<PixelGroup> pgs(static_cast<size_t>(pgImage));
  for (int64_t t = 0; t < pgImage; ++t) {
    PixelGroup& pg = pgs[static_cast<size_t>(t)];
    const int64_t p0 = t * 16;
    pg.valid = static_cast<int>(std::min<int64_t>(16, hw - p0));
    auto posOf = [&](int64_t p) { return (p / a.Wo) * sh * wp + (p % a.Wo) * sw; };
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
  }
  const size_t layoutBytes = static_cast<size_t>((cg + 3) / 4 * 4 * plane) + kSlack;  // >= quads * plane * 4
  // Batch tiles: enough images that small planes still fill the widest kernel, within ~512 KiB
  // of planes (from the geometry only, so results cannot depend on the thread count).
  int64_t imgs = std::min<int64_t>(a.B, (64 + pgImage - 1) / pgImage);
  while (imgs > 1 && static_cast<double>(imgs) * layoutBytes > 512.0 * 1024) --imgs;
  const int64_t btiles = (a.B + imgs - 1) / imgs;
  const int shape = chooseShape(imgs * pgImage);
  const int npg = kShapeNpg[shape];
  ThreadPool& pool = ThreadPool::instance();
  const int threads = pool.threads();
  for (int64_t g = 0; g < a.G; ++g) {
    const GroupPlan gp = planGroup(a, g, shape, wp, plane);
    const int32_t nblk = static_cast<int32_t>(gp.blkStart.size());
    // Tasks: batch tiles x chunks of channel blocks (several chunks when the batch is small).
    int32_t chunks = 1;
    if (threads > 1 && btiles < 2 * threads) chunks = std::min<int32_t>(nblk, static_cast<int32_t>((2 * threads + btiles - 1) / btiles));
    const int32_t perChunk = (nblk + chunks - 1) / chunks;
    chunks = (nblk + perChunk - 1) / perChunk;
    auto task = [&](int64_t t) {
      const int64_t b0 = (t / chunks) * imgs;
      const int64_t nimg = std::min(imgs, a.B - b0);
      const int32_t c0 = static_cast<int32_t>(t % chunks) * perChunk;
      const int32_t c1 = std::min(nblk, c0 + perChunk);
      const int64_t npgAll = nimg * pgImage;
      thread_local Scratch layoutBuf, sumBuf;
      uint8_t* layout = static_cast<uint8_t*>(layoutBuf.get(layoutBytes * static_cast<size_t>(nimg)));
      int32_t* asum = static_cast<int32_t*>(sumBuf.get(static_cast<size_t>(npgAll) * 64 + 64));
      if (!layout || !asum) std::abort();  // out of memory: no sane way to continue
      for (int64_t i = 0; i < nimg; ++i) {
        uint8_t* l = layout + layoutBytes * static_cast<size_t>(i);
        std::memset(l + layoutBytes - kSlack, 0, kSlack);
        buildLayout(a, gp, map, b0 + i, g, l);
      }
      // Pixel group f of the tile: image f / pgImage, group f % pgImage.
      auto layoutOf = [&](int64_t f) { return layout + layoutBytes * static_cast<size_t>(f / pgImage); };
      auto pgOf = [&](int64_t f) { return &pgs[static_cast<size_t>(f % pgImage)]; };
      alignas(64) int32_t acc[24 * 16];
      if (gp.needAsum)
        for (int64_t f = 0; f < npgAll; ++f) {
          const uint8_t* l = layoutOf(f);
          const PixelGroup* p = pgOf(f);
          tile(gp, &l, &p, 1, 1, gp.ones.data(), acc);
          std::memcpy(asum + f * 16, acc, 64);
        }
      for (int32_t bi = c0; bi < c1; ++bi) {
        const int32_t noc = gp.blkNoc[bi], o0 = gp.blkStart[bi];
        const int32_t* wt = gp.wt.data() + gp.blkWt[bi];
        for (int64_t f0 = 0; f0 < npgAll;) {
          // The widest kernel shape that fits the pixel groups left.
          int n = npg;
          while (n > npgAll - f0) n = n == 4 ? 2 : 1;
          const uint8_t* ls[4];
          const PixelGroup* ps[4];
          for (int k = 0; k < n; ++k) {
            ls[k] = layoutOf(f0 + k);
            ps[k] = pgOf(f0 + k);
          }
          tile(gp, ls, ps, n, noc, wt, acc);
          for (int32_t o = 0; o < noc; ++o) {
            const int32_t oc = o0 + o;
            const __m512i zw = _mm512_set1_epi32(gp.zw[oc]);
            const __m512i ct = _mm512_set1_epi32(gp.colTerm[oc]);
            for (int k = 0; k < n; ++k) {
              const int64_t f = f0 + k;
              const int64_t b = b0 + f / pgImage;
              const PixelGroup& pg = *ps[k];
              __m512i v = _mm512_load_si512(acc + (o * n + k) * 16);
              if (gp.needAsum) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(zw, _mm512_load_si512(asum + f * 16)));
              v = _mm512_add_epi32(v, ct);
              const __mmask16 mask = static_cast<__mmask16>(pg.valid >= 16 ? 0xffff : (1u << pg.valid) - 1u);
              const size_t idx = static_cast<size_t>((b * a.O + g * og + oc) * hw + (f % pgImage) * 16);
              epilogue(a, v, gp.mult[oc], a.out, idx, mask);
            }
          }
          f0 += n;
        }
      }
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
  return true;
}

}  // namespace qbnn

#pragma GCC pop_options

#else
namespace qbnn {
bool convDirectAvx512(const ConvDirectArgs&) { return false; }
}  // namespace qbnn
#endif
