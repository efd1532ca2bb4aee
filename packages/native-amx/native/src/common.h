// Shared declarations of the qbnn native kernels. Every helper defined in a header is
// `static inline` so that each translation unit (each compiled with its own ISA target)
// keeps a private copy: no AVX-512 instance of a helper can leak into the scalar path
// through the linker's choice among duplicate inline definitions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

// The x86-64 paths (CPUID dispatch, AVX2 / AVX-VNNI / AVX-512 / AMX kernels). Elsewhere (aarch64,
// or with -DQBNN_PORTABLE to test that build on x86) only the portable scalar code is compiled.
#if defined(__x86_64__) && !defined(QBNN_PORTABLE)
#define QBNN_X86 1
#else
#define QBNN_X86 0
#endif

namespace qbnn {

// The ISA paths, in order of preference. AMX_EMU runs the AMX kernel over the software tile
// layer (exact emulation) and is available on every CPU.
enum Isa : int { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVXVNNI = 2, ISA_AVX512VNNI = 3, ISA_AMX = 4, ISA_AMX_EMU = 5 };

// Packed s8 weights: blocks of 16 output channels; inside a block, groups of 4 consecutive K
// values ("VNNI groups"): byte (n % 16) * 4 + (k % 4) of group k / 4. A block holds `kstride`
// groups (a multiple of 16, zero padded), so each run of 16 groups is one AMX B tile
// (16 rows of 64 bytes) and each group is one zmm of VNNI operands.
#ifndef QBNN_BLOCK_SKEW
#define QBNN_BLOCK_SKEW 256
#endif
constexpr size_t kBlockSkew = QBNN_BLOCK_SKEW;

struct Packed {
  int32_t n = 0;
  int32_t k = 0;
  int32_t nblocks = 0;  // ceil(n / 16)
  int32_t kgroups = 0;  // ceil(k / 4)
  int32_t kstride = 0;  // groups per block, ceil(kgroups / 16) * 16
  uint8_t* data = nullptr;
  int32_t* rowSums = nullptr;  // nblocks * 16 (padding 0)
  int32_t* zeroPoint = nullptr;  // nblocks * 16 (padding 0)
  // Blocks are skewed by 256 bytes so that the kernels' parallel streams over 4 blocks do not
  // all map to the same L1 sets (a block of 2^n bytes would alias every 4 KiB).
  size_t blockBytes() const { return static_cast<size_t>(kstride) * 64 + kBlockSkew; }
  size_t bytes() const { return static_cast<size_t>(nblocks) * blockBytes(); }
};

enum OutKind : int { OUT_U8 = 0, OUT_F32 = 1, OUT_I32 = 2 };

// One GEMM (already validated). Activations a: [m, lda] with at least kgroups * 4 readable
// bytes per row (zero padded past k); aSums[m] = sum_k a[m, k].
struct GemmCtx {
  const uint8_t* a = nullptr;
  size_t lda = 0;
  int32_t m = 0;
  const int32_t* aSums = nullptr;
  const Packed* w = nullptr;
  // Per output channel (padded to nblocks * 16): colTerm[n] = bias[n] - Za sumW[n] + K Za Zw[n]
  // (wrapping int32), zw[n], mult[n] (u8: requant multiplier; f32: aScale * wScale[n]).
  const int32_t* colTerm = nullptr;
  const int32_t* zw = nullptr;
  const double* mult = nullptr;
  int32_t outKind = OUT_I32;
  int32_t zo = 0;
  int32_t lo = 0;
  void* out = nullptr;
  size_t ldo = 0;  // elements
};

// A per-thread scratch buffer that grows and is reused across calls (64-byte aligned), so hot
// paths do not allocate on every GEMM.
struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      cap = (bytes + 4095) / 4096 * 4096;
      p = std::aligned_alloc(64, cap);
      if (p == nullptr) cap = 0;
    }
    return p;
  }
  ~Scratch() { std::free(p); }
};

// Wrapping int32 arithmetic (well defined in C++, equal to JS `| 0` semantics).
static inline int32_t wadd(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}
static inline int32_t wsub(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b));
}
static inline int32_t wmul(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) * static_cast<uint32_t>(b));
}

// Round half to even of a finite double (the default rounding mode, which Node never changes,
// is round-to-nearest-even; this does not depend on it).
static inline double roundHalfEven(double v) {
  double r = __builtin_floor(v);
  double d = v - r;  // exact for |v| < 2^52; for larger |v|, v is already an integer and d = 0
  if (d > 0.5 || (d == 0.5 && __builtin_fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}

// The scalar epilogue of one accumulator: raw = sum_k a w.
static inline void epilogueOne(const GemmCtx& c, int32_t m, int32_t n, int32_t raw) {
  const int32_t acc = wadd(wsub(raw, wmul(c.zw[n], c.aSums[m])), c.colTerm[n]);
  const size_t idx = static_cast<size_t>(m) * c.ldo + static_cast<size_t>(n);
  if (c.outKind == OUT_I32) {
    static_cast<int32_t*>(c.out)[idx] = acc;
  } else if (c.outKind == OUT_F32) {
    static_cast<float*>(c.out)[idx] = static_cast<float>(static_cast<double>(acc) * c.mult[n]);
  } else {
    double q = roundHalfEven(static_cast<double>(acc) * c.mult[n]) + static_cast<double>(c.zo);
    if (q < static_cast<double>(c.lo)) q = static_cast<double>(c.lo);
    if (q > 255.0) q = 255.0;
    static_cast<uint8_t*>(c.out)[idx] = static_cast<uint8_t>(static_cast<int32_t>(q));
  }
}

// Each path computes rows [m0, m1) x channel blocks [nb0, nb1) of the GEMM, epilogue included.
void gemmScalar(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1);
void gemmAvx2(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1);
void gemmAvxVnni(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1);
void gemmAvx512Vnni(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1);
// AMX kernels need `a` padded to a multiple of 16 rows and kstride * 4 columns.
void gemmAmxHw(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1);
void gemmAmxEmu(const GemmCtx& c, int32_t m0, int32_t m1, int32_t nb0, int32_t nb1);
// Epilogue of `rows` rows from m0 of the 16 channels from n0 (fewer at the end of N), raw sums
// row-major with stride ldraw: the AVX-512 form (AMX paths; scalar when not compiled for x86).
void epilogueRowsAvx512(const GemmCtx& c, int32_t m0, int32_t rows, int32_t n0, const int32_t* raw, size_t ldraw);
static inline void epilogueRowsScalar(const GemmCtx& c, int32_t m0, int32_t rows, int32_t n0, const int32_t* raw,
                                      size_t ldraw) {
  const int32_t nEnd = n0 + 16 < c.w->n ? n0 + 16 : c.w->n;
  for (int32_t r = 0; r < rows; ++r)
    for (int32_t n = n0; n < nEnd; ++n) epilogueOne(c, m0 + r, n, raw[static_cast<size_t>(r) * ldraw + (n - n0)]);
}
// sum_k a[r, k] for r < m.
void rowSumsU8Avx512(const uint8_t* a, size_t lda, int32_t m, int32_t k, int32_t* out);  // loads the tile configuration on the calling thread (hardware only)

// A validated convolution (NCHW u8 input, one pack of [O/G, C/G*kh*kw] rows per group) for the
// direct kernels; the epilogue arguments are those of the GEMM (mult null for i32 output).
struct ConvDirectArgs {
  const uint8_t* x;
  int64_t B, C, H, W;
  int32_t za;
  const Packed* const* packs;
  int64_t O, kh, kw, sh, sw, ph, pw, dh, dw, G, Ho, Wo;
  const int32_t* bias;
  int32_t outKind;
  const double* mult;
  int32_t zo;
  bool relu;
  void* out;
  // Called by a task when it has written output channels [o0, o1) of images [b0, b0 + n) (may
  // run on any pool thread, for disjoint ranges); null for none.
  using After = void (*)(void* ctx, int64_t b0, int64_t n, int64_t o0, int64_t o1);
  After after;
  void* afterCtx;
  // 1: the output is the 2x2 stride-2 max pool (floor) of the requantised u8 convolution, [B][O]
  // [Ho / 2][Wo / 2]. Requantisation is monotone non-decreasing (multipliers >= 0), so the max of
  // each window's int32 sums requantised once is exactly the pool of the requantised outputs.
  int32_t pool2 = 0;
};
// The direct AVX-512 VNNI convolution (runs on the thread pool); false when it cannot take the
// shape (then the caller runs im2col + GEMM).
bool convDirectAvx512(const ConvDirectArgs& a);
// The same convolution with the weights reordered once: convDirectPrepare(a) reorders the packs
// of `a` (and folds its bias, zero points and multipliers) for its geometry and batch size; null
// when the direct kernel cannot take the shape. convDirectAvx512Prepared(a, p) then runs `a`,
// which must describe the same convolution (shapes, batch, zero points, epilogue kind; the
// packs, bias and multipliers are those given at prepare time); only x, out and after may
// change. It returns false (nothing written) when `a` does not match `p`. Release with
// convDirectRelease; a prepared plan is read-only while it runs, so threads may share it.
struct ConvDirectPrepared;
ConvDirectPrepared* convDirectPrepare(const ConvDirectArgs& a);
bool convDirectAvx512Prepared(const ConvDirectArgs& a, const ConvDirectPrepared& p);
void convDirectRelease(ConvDirectPrepared* p);
// Folds the packs, bias and multipliers of `a` into `p` in place, keeping its geometry and plane
// maps (a convolution whose weights are drawn again per sample); false, `p` unchanged, when `a`
// is not the convolution `p` was prepared for. Not while `p` runs.
// weightsInPlace: the weight dwords were already written in the plan's tap order (TapOrder, by
// the sampler); only the bias, zero-point and multiplier terms are folded (from the packs'
// rowSums and zeroPoint), the packs' weight bytes are not read.
bool convDirectRepack(ConvDirectPrepared* p, const ConvDirectArgs& a, bool weightsInPlace = false);
// Where a prepared direct convolution keeps its weights when they are one tap a dword (J = 1,
// no tap planes, one group): source s = q * taps + tap holds in byte t the weight of column
// (4q + t) * taps + tap of a row (0 past the row's cg channels); channel o of block b has its
// dwords at wt + blkWt[b] + s * blkNoc[b] + (o - blkStart[b]), s < quads * taps.
struct TapOrder {
  int32_t* wt = nullptr;
  const int32_t* blkStart = nullptr;
  const int32_t* blkNoc = nullptr;
  const size_t* blkWt = nullptr;
  int32_t nblk = 0, quads = 0, taps = 0, cg = 0;
};
// The tap order of `p` when `a` is the convolution it was prepared for and its weights are one
// tap a dword; false otherwise. Valid until `p` is repacked with other geometry or released.
bool convDirectTapOrder(ConvDirectPrepared* p, const ConvDirectArgs& a, TapOrder& out);

// u8 pooling of `planes` planes h x w into ho x wo (the contract's qpool2d; kind 0 max, 1 avg
// with count-include-pad, zero point z); padding is at most half the kernel.
struct PoolGeometry {
  int32_t kind, kh, kw, sh, sw, ph, pw;
  int64_t ho, wo;
};
void poolPlanesU8(const uint8_t* x, int64_t planes, int64_t h, int64_t w, int32_t z, const PoolGeometry& g,
                  uint8_t* out);

// Micro-benchmark: `iters` iterations of a dependency-free vpdpbusd zmm block; returns ops.
double vpdpbusdPeakOps(int64_t iters);
double vpdpbusdPeakOpsYmm(int64_t iters);

// CPU features.
struct CpuFeatures {
  bool avx2 = false;
  bool avxvnni = false;
  bool avx512vnni = false;  // with avx512f/bw/vl/dq and the OS saving zmm state
  bool avx512vbmi = false;  // avx512vnni and VBMI (vpermb, vpermt2b)
  bool amx = false;  // tile + int8 + OS permission granted
  bool amxHardware = false;  // CPUID says tile + int8 (permission may still be refused)
  const char* amxNote = "";
};
const CpuFeatures& cpuFeatures();

// Quantised normal sampling. Thresholds must be set once (255 ascending uint32).
bool setQnormalTable(const uint32_t* t, const char** why);
bool qnormalReady();
void philoxBlock(uint32_t k0, uint32_t k1, uint64_t block, uint32_t out[4]);
// Word `word0 + j` of the stream, j < count, as quantised normals.
void qnormalScalar(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count);
void qnormalAvx512(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count);
const uint32_t* qnormalThresholds();
void qnormalMapWordsScalar(const uint32_t* words, int8_t* out, size_t count);
void qnormalMapWordsAvx512(const uint32_t* words, int8_t* out, size_t count);
void qnormalMapWordsAvx512Search(const uint32_t* words, int8_t* out, size_t count);  // no guide
int8_t qnormalBinarySearch(uint32_t u);  // the table by plain binary search (a cross-check)
// 4096 entries for buckets of 2^20 words: base count (bits 0-7), offset of the one threshold
// inside the bucket (bits 8-28, 2^20 when none), bit 31 when the bucket holds two or more.
const uint32_t* qnormalGuide();
// The levels of the vector binary search, 19 registers of 16: s = 128 (1 register, its first
// entry T[127]), 64, 32, 16, 8 (1 each), 4 (2), 2 (4), 1 (8).
const uint32_t* qnormalSearchLevels();
// Byte-lane tables (VBMI path): 64 words are mapped at once in byte lanes, folded v = u or ~u
// (thresholds satisfy T[j] + T[255 - j] = 2^32 for j >= 1, so the upper half mirrors the lower).
// Buckets of v hold at most one threshold each: "centre" buckets by the top byte h of v
// (tailTop <= h < 128), "tail" buckets (h < tailTop) by v's octave (22..28) and next 5 bits.
// Per bucket: the count of thresholds at or below its start, minus 128 (minus 1 more when no
// threshold lies inside, whose bytes are then 0), and the low 3 bytes of the one inside.
struct QnormalByteTables {
  alignas(64) uint8_t centre[4][128];  // [base, byte 2, byte 1, byte 0][top byte of v]
  alignas(64) uint8_t tail[4][256];  // [kind][tail bucket]
  uint8_t tailTop;  // top bytes of v below this are tail words
  bool ready;  // false when the table does not have this shape (the gather path then runs)
};
const QnormalByteTables& qnormalByteTables();
void qnormalMapWordsAvx512Bytes(const uint32_t* words, int8_t* out, size_t count);  // needs VBMI

struct SampleCtx {
  const int8_t* mu;
  const uint8_t* sigma;
  const int32_t* muZp;
  const int32_t* sigmaZp;
  const int32_t* noiseZp;
  const int32_t* weightZp;
  const double* m1;
  const double* m2;
  const double* m3;
  int32_t n, k, qmin, qmax;
  uint32_t key0, key1;
  uint64_t position;
  Packed* out;
  // Below 8: mu / sigma point to core's packInts bytes of n k values of this many bits (signed
  // mu, unsigned sigma), muBytes / sigmaBytes long, decoded a row at a time.
  int32_t muBits = 8, sigmaBits = 8;
  size_t muBytes = 0, sigmaBytes = 0;
};
// Values [first, first + count) of a packInts stream (`bytes` long, never read past) as bytes.
void unpackInts(const uint8_t* src, size_t bytes, uint64_t first, size_t count, int bits, bool sign, int8_t* out);
void unpackIntsScalar(const uint8_t* src, size_t bytes, uint64_t first, size_t count, int bits, bool sign,
                      int8_t* out);
// Rows [n0, n1): samples, writes packed bytes and rowSums.
void sampleRowsScalar(const SampleCtx& s, int32_t n0, int32_t n1);
void sampleRowsAvx512(const SampleCtx& s, int32_t n0, int32_t n1);
// Batch 1: rows [n0, n1) sampled (rowSums and zeroPoint written, not the packed bytes) and
// dotted with the input row x[0, k): dots[n] = sum_k x w. False when out of memory.
bool sampleRowsDotAvx512(const SampleCtx& s, const uint8_t* x, int32_t n0, int32_t n1, int32_t* dots);
// Rows [n0, n1) of a convolution's weights written straight into the tap order of one or two
// prepared direct convolutions (`orders`, `count`; rowSums and zeroPoint into the pack, not its
// bytes): the weights convDirectRepack would reorder, without the packed layout. Needs VBMI and
// taps <= 16; false (nothing written) when out of memory.
bool sampleRowsTapsAvx512(const SampleCtx& s, int32_t n0, int32_t n1, const TapOrder* orders, int count);

}  // namespace qbnn
