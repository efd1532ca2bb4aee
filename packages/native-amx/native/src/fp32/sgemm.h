// fp32 GEMM for the tfjs kernels: C[M, N] = A[M, K] B[K, N] (+ epilogue), with A and B read
// through packers so that convolutions feed their im2col views straight into the packing.
//
// Determinism: every output element is one fused multiply-add chain over k in increasing order
// (split into at most kMaxKSplit chunks summed in a fixed order), and how the work is cut into
// tasks depends only on the shapes, never on the thread count: results are bit-identical for
// any number of threads.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace qbnn {
namespace fp32 {

// Micro-tile: kMr rows of A by kNr columns of B (AVX-512: 12 x 2 zmm accumulators).
constexpr int kMr = 12;
constexpr int kNr = 32;
// K block of one packing pass.
constexpr int kKc = 256;

// A dense matrix element (i, j) at p[i * rowStride + j * colStride] (a transpose swaps strides).
struct Strided {
  const float* p;
  int64_t rowStride;
  int64_t colStride;
};

// Writes A[m0 + r, k0 + k] to dst[r * kKc + k] for r < rows, k < kc (row-major strips, so that
// im2col views pack with contiguous copies); rows >= `rows` are never read.
struct APacker {
  virtual ~APacker() = default;
  virtual void pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const = 0;
  // The packed strip of rows [m0, m0 + rows) and K block k0 when the packer holds it already
  // (PackedA), else null (pack() then runs).
  virtual const float* packed(int64_t /*m0*/, int64_t /*k0*/) const { return nullptr; }
  // A whose rows are contiguous (A[m, k] = p[m * rowStride + k]), which gemm's microkernel can
  // then read in place; else null.
  virtual const Strided* rowMajor() const { return nullptr; }
};

// Writes B[k0 + k, n0 + j] to dst[k * kNr + j] for j < cols, k < kc, and 0 for cols <= j < kNr.
struct BPacker {
  virtual ~BPacker() = default;
  virtual void pack(float* dst, int64_t k0, int kc, int64_t n0, int cols) const = 0;
};

struct DenseA final : APacker {
  explicit DenseA(Strided s) : s(s) {}
  Strided s;
  void pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const override;
  const Strided* rowMajor() const override { return s.colStride == 1 ? &s : nullptr; }
};

// A [M, K] packed once, strip by strip, in the row tiles and K blocks of gemmLocal /
// gemmLocalRows: for operands that many local products share (a convolution's filter, one
// product per image), so that no task packs it again. `buffer` holds packedFloats(M, K) floats.
struct PackedA final : APacker {
  PackedA(const APacker& a, int64_t M, int64_t K, float* buffer);
  static int64_t packedFloats(int64_t M, int64_t K);
  void pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const override;
  const float* packed(int64_t m0, int64_t k0) const override;
  int64_t M, K, tiles;
  float* p;
};

struct DenseB final : BPacker {
  explicit DenseB(Strided s) : s(s) {}
  Strided s;
  void pack(float* dst, int64_t k0, int kc, int64_t n0, int cols) const override;
};

enum Activation : int { ACT_LINEAR = 0, ACT_RELU = 1, ACT_RELU6 = 2, ACT_LEAKYRELU = 3, ACT_SIGMOID = 4 };

// Applied to every C row after the product: C[m, n] = act(C[m, n] + bias[n]).
struct Epilogue {
  const float* bias = nullptr;  // [N] or null
  int act = ACT_LINEAR;
  float alpha = 0.f;  // leaky ReLU slope
};

inline float activate(float v, const Epilogue& ep) {
  switch (ep.act) {
    case ACT_RELU: return v < 0.f ? 0.f : v;
    case ACT_RELU6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    case ACT_LEAKYRELU: return v < 0.f ? v * ep.alpha : v;
    case ACT_SIGMOID: return 1.f / (1.f + std::exp(-v));
    default: return v;
  }
}

// dst[j] = activate(src[j] + bias, ep) for j < n (src may be dst), with the activation picked
// once per row so that the common cases vectorise.
inline void epilogueRow(const float* src, float* dst, int64_t n, float bias, const Epilogue& ep) {
  switch (ep.act) {
    case ACT_LINEAR:
      for (int64_t j = 0; j < n; ++j) dst[j] = src[j] + bias;
      return;
    case ACT_RELU:
      for (int64_t j = 0; j < n; ++j) {
        const float v = src[j] + bias;
        dst[j] = v < 0.f ? 0.f : v;
      }
      return;
    default:
      for (int64_t j = 0; j < n; ++j) dst[j] = activate(src[j] + bias, ep);
  }
}

// C [M, N] = op(A) op(B) (+ epilogue) for dense row-major operands, op a transpose when ta / tb.
// A transposed B larger than A and C together (x W^T of a linear layer: W [N, K]) is run as
// C^T = W op(A)^T, so that the large operand is read in place (row-major) instead of packed
// through a transposing gather.
void gemmDense(int64_t M, int64_t N, int64_t K, const float* a, bool ta, const float* b, bool tb, float* c,
               const Epilogue& ep);

// C[m * ldc + n] for m < M, n < N. Runs on the addon's thread pool.
void gemm(int64_t M, int64_t N, int64_t K, const APacker& a, const BPacker& b, float* c, int64_t ldc,
          const Epilogue& ep);

// Microkernel: C[r, j] (+)= sum_k A[r * lda + k] B[k * kNr + j] for r < rows, j < cols (lda is
// kKc for a packed strip, a dense A's row stride when its rows are read in place).
// `accumulate` adds to what C holds; otherwise C is overwritten.
using MicroKernel = void (*)(int kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int rows,
                             int cols, bool accumulate);
MicroKernel microKernelScalar();
MicroKernel microKernelAvx512();  // null when not compiled for x86-64

// The same with B read in place instead of from a packed panel: row k is rows[k] + n0, of which
// the first `cols` floats are read.
using MicroKernelRows = void (*)(int kc, const float* a, const float* const* rows, int64_t n0, float* c,
                                 int64_t ldc, int rowsA, int cols, bool accumulate);
MicroKernelRows microKernelRowsAvx512();  // null when not compiled for x86-64

// Dot-product microkernel for convolution filter gradients: for r < R <= kDotR and
// c < C <= kDotC, out[r * outStride + c] (+)= the sum over images b < nb, rows i < rows and columns
// j < width of x[b * xImage + off[r] + i * xRow + j] * y[b * yImage + c * yChannel + i * yRow + j].
// Lane l < 16 of a vector accumulator is one fused multiply-add chain over j % 16 == l in (b, i, j)
// order (lanes past a row's width add 0 * 0); the 16 lanes are then summed as a tree (sumLanes),
// and with `accumulate` that sum is added to what out holds.
constexpr int kDotR = 5;
constexpr int kDotC = 5;
struct DotArgs {
  const float* x;
  int64_t xImage, xRow;
  const int64_t* off;
  const float* y;
  int64_t yImage, yChannel, yRow;
  int nb;
  int64_t rows, width;
  float* out;
  int64_t outStride;
  bool accumulate;
};
using DotKernel = void (*)(int R, int C, const DotArgs& d);

// The dot kernels' lane sum: lanes l and l + 8, then l and l + 4, l and l + 2, then the last two.
inline float sumLanes(const float* v) {
  float a[8];
  for (int l = 0; l < 8; ++l) a[l] = v[l] + v[l + 8];
  for (int l = 0; l < 4; ++l) a[l] = a[l] + a[l + 4];
  for (int l = 0; l < 2; ++l) a[l] = a[l] + a[l + 2];
  return a[0] + a[1];
}
DotKernel dotKernelAvx512();  // null when not compiled for x86-64
DotKernel activeDotKernel();

// dst[c * dstStride + r] = src[r * srcStride + c] for r < rows <= 16 and c < cols <= 16 (one
// 16 x 16 register transpose): the packers' transposed operands.
using TransposeBlock = void (*)(const float* src, int64_t srcStride, int rows, int cols, float* dst,
                                int64_t dstStride);
TransposeBlock transposeBlockAvx512();  // null when not compiled for x86-64

// Runs `iters` rounds of 12 independent zmm FMA chains on the calling thread; returns the flops
// done (0 when not compiled for x86-64). Callers time it: the FP32 peak of one core.
double fmaPeakFlops(int64_t iters);

// The microkernel in use (AVX-512 when available and not forced portable).
MicroKernel activeMicroKernel();

// C[M, N] (+)= A B on the calling thread (no pool): for callers that run many small products as
// their own pool tasks (per-image convolutions). Same k order per element as gemm.
void gemmLocal(int64_t M, int64_t N, int64_t K, const APacker& a, const BPacker& b, float* c, int64_t ldc,
               bool accumulate);
// The same with B row k read in place at bRows[k] (N floats): for B operands whose rows are
// already contiguous (shifted-row convolutions), so nothing is packed.
void gemmLocalRows(int64_t M, int64_t N, int64_t K, const APacker& a, const float* const* bRows, float* c,
                   int64_t ldc, bool accumulate);

// Whether the AVX-512 microkernel is in use (false: the portable one).
bool usingAvx512();
// Forces the portable microkernel (tests) or restores the best one.
void forcePortable(bool portable);

}  // namespace fp32
}  // namespace qbnn
