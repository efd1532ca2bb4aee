// The fp32 GEMM driver: packs B once (all K), cuts the product into tasks of 96 rows x 256
// columns x a K chunk, packs A per task and K block (a row-major A is read in place), and runs
// the microkernel. The cut depends only on M, N and K (see sgemm.h: results do not depend on the
// thread count).
#include "sgemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>

#include "../common.h"
#include "../pool.h"
#include "parallel.h"
#include "scratch.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr int64_t kRowBlock = 8 * kMr;    // rows of one task
constexpr int64_t kPanelGroup = 8;        // B panels (of kNr columns) of one task
constexpr int64_t kMaxKSplit = 16;        // K chunks when there are few row/column tasks

std::atomic<bool> gPortable{false};

// B row k at row(k): a packed panel or rows read in place.
template <class Row>
void portableTile(int kc, const float* a, int64_t lda, Row row, float* c, int64_t ldc, int rows, int cols, bool accumulate) {
  float acc[kMr][kNr];
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < kNr; ++j) acc[r][j] = accumulate && j < cols ? c[r * ldc + j] : 0.f;
  for (int k = 0; k < kc; ++k) {
    const float* b = row(k);
    for (int r = 0; r < rows; ++r) {
      const float av = a[r * lda + k];
      for (int j = 0; j < cols; ++j) acc[r][j] = std::fma(av, b[j], acc[r][j]);
    }
  }
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) c[r * ldc + j] = acc[r][j];
}

void portableKernel(int kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int rows, int cols,
                    bool accumulate) {
  portableTile(kc, a, lda, [b](int k) { return b + k * kNr; }, c, ldc, rows, cols, accumulate);
}

void portableKernelRows(int kc, const float* a, const float* const* bRows, int64_t n0, float* c, int64_t ldc,
                        int rows, int cols, bool accumulate) {
  portableTile(kc, a, kKc, [bRows, n0](int k) { return bRows[k] + n0; }, c, ldc, rows, cols, accumulate);
}

void portableDot(int R, int C, const DotArgs& d) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float acc[16] = {};
      for (int b = 0; b < d.nb; ++b)
        for (int64_t i = 0; i < d.rows; ++i) {
          const float* xr = d.x + b * d.xImage + d.off[r] + i * d.xRow;
          const float* yr = d.y + b * d.yImage + c * d.yChannel + i * d.yRow;
          for (int64_t j0 = 0; j0 < d.width; j0 += 16)
            for (int l = 0; l < 16; ++l) {
              const bool in = j0 + l < d.width;
              acc[l] = std::fma(in ? xr[j0 + l] : 0.f, in ? yr[j0 + l] : 0.f, acc[l]);
            }
        }
      float* o = d.out + r * d.outStride + c;
      *o = d.accumulate ? *o + sumLanes(acc) : sumLanes(acc);
    }
}

bool avx512Kernels() { return !gPortable.load(std::memory_order_relaxed) && cpuFeatures().avx512vnni; }

MicroKernel activeKernel() {
  if (avx512Kernels()) {
    MicroKernel k = microKernelAvx512();
    if (k != nullptr) return k;
  }
  return &portableKernel;
}

DotKernel activeDot() {
  if (avx512Kernels()) {
    DotKernel k = dotKernelAvx512();
    if (k != nullptr) return k;
  }
  return &portableDot;
}

MicroKernelRows activeKernelRows() {
  if (avx512Kernels()) {
    MicroKernelRows k = microKernelRowsAvx512();
    if (k != nullptr) return k;
  }
  return &portableKernelRows;
}

thread_local Scratch tPackA;
thread_local Scratch tPackB;
thread_local Scratch tPartial;
thread_local Scratch tLocalA;
thread_local Scratch tLocalB;
thread_local Scratch tTransposed;

}  // namespace

MicroKernel microKernelScalar() { return &portableKernel; }
MicroKernel activeMicroKernel() { return activeKernel(); }
DotKernel activeDotKernel() { return activeDot(); }

namespace {

// Row tiles of a local product and the height of tile t (balanced: M = 50 is five of 10).
int64_t rowTiles(int64_t M) { return (M + kMr - 1) / kMr; }
int tileRows(int64_t M, int64_t tiles, int64_t t) { return static_cast<int>(M / tiles + (t < M % tiles ? 1 : 0)); }

// The calling thread's product loop: K blocks, row tiles of balanced height (M = 50: five of 10,
// not four of 12 and one of 2), panels of kNr columns. `block(k0, kc)` runs once per K block
// (packing B), `tile(k0, kc, ap, m, rows, p, cols)` multiplies a packed row tile by one panel.
template <class Block, class Tile>
void localProduct(int64_t M, int64_t N, int64_t K, const APacker& a, float* c, int64_t ldc, bool accumulate,
                  Block block, Tile tile) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::memset(c + m * ldc, 0, sizeof(float) * N);
    return;
  }
  const int64_t panels = (N + kNr - 1) / kNr;
  float* buffer = tLocalA.floats(static_cast<size_t>(kMr) * kKc);
  const int64_t tiles = rowTiles(M);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int kc = static_cast<int>(std::min<int64_t>(kKc, K - k0));
    block(k0, kc);
    for (int64_t t = 0, m = 0; t < tiles; ++t) {
      const int rows = tileRows(M, tiles, t);
      const float* ap = a.packed(m, k0);
      if (ap == nullptr) {
        a.pack(buffer, m, rows, k0, kc);
        ap = buffer;
      }
      for (int64_t p = 0; p < panels; ++p)
        tile(k0, kc, ap, m, rows, p, static_cast<int>(std::min<int64_t>(kNr, N - p * kNr)));
      m += rows;
    }
  }
}

}  // namespace

void gemmLocal(int64_t M, int64_t N, int64_t K, const APacker& a, const BPacker& b, float* c, int64_t ldc,
               bool accumulate) {
  const MicroKernel kernel = activeKernel();
  const int64_t panels = (N + kNr - 1) / kNr;
  const int64_t panelFloats = static_cast<int64_t>(kKc) * kNr;
  float* bp = M > 0 && N > 0 && K > 0 ? tLocalB.floats(static_cast<size_t>(panels * panelFloats)) : nullptr;
  localProduct(
      M, N, K, a, c, ldc, accumulate,
      [&](int64_t k0, int kc) {
        for (int64_t p = 0; p < panels; ++p)
          b.pack(bp + p * panelFloats, k0, kc, p * kNr, static_cast<int>(std::min<int64_t>(kNr, N - p * kNr)));
      },
      [&](int64_t k0, int kc, const float* ap, int64_t m, int rows, int64_t p, int cols) {
        kernel(kc, ap, kKc, bp + p * panelFloats, c + m * ldc + p * kNr, ldc, rows, cols, accumulate || k0 > 0);
      });
}

void gemmLocalRows(int64_t M, int64_t N, int64_t K, const APacker& a, const float* const* bRows, float* c,
                   int64_t ldc, bool accumulate) {
  const MicroKernelRows kernel = activeKernelRows();
  localProduct(
      M, N, K, a, c, ldc, accumulate, [](int64_t, int) {},
      [&](int64_t k0, int kc, const float* ap, int64_t m, int rows, int64_t p, int cols) {
        kernel(kc, ap, bRows + k0, p * kNr, c + m * ldc + p * kNr, ldc, rows, cols, accumulate || k0 > 0);
      });
}

bool usingAvx512() { return activeKernel() != &portableKernel; }
void forcePortable(bool portable) { gPortable.store(portable); }

// Strip (K block kb, row tile t) at ((kb * tiles + t) * kMr) * kKc: tile t starts at row
// t * (M / tiles) + min(t, M % tiles).
PackedA::PackedA(const APacker& a, int64_t M, int64_t K, float* buffer) : M(M), K(K), tiles(rowTiles(M)), p(buffer) {
  for (int64_t k0 = 0, kb = 0; k0 < K; k0 += kKc, ++kb)
    for (int64_t t = 0, m = 0; t < tiles; ++t) {
      const int rows = tileRows(M, tiles, t);
      a.pack(p + (kb * tiles + t) * kMr * kKc, m, rows, k0, static_cast<int>(std::min<int64_t>(kKc, K - k0)));
      m += rows;
    }
}

int64_t PackedA::packedFloats(int64_t M, int64_t K) { return std::max<int64_t>(1, rowTiles(M) * ((K + kKc - 1) / kKc) * kMr * kKc); }

void PackedA::pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const {
  const float* src = packed(m0, k0);
  for (int r = 0; r < rows; ++r) std::memcpy(dst + r * kKc, src + r * kKc, sizeof(float) * kc);
}

const float* PackedA::packed(int64_t m0, int64_t k0) const {
  const int64_t base = M / tiles, extra = M % tiles;
  // m0 is the first row of a tile: invert t * base + min(t, extra).
  const int64_t t = m0 < extra * (base + 1) ? m0 / (base + 1) : extra + (m0 - extra * (base + 1)) / base;
  return p + ((k0 / kKc) * tiles + t) * kMr * kKc;
}

// The transposing packs' 16 x 16 blocks (null: scalar loops).
TransposeBlock activeTranspose() { return avx512Kernels() ? transposeBlockAvx512() : nullptr; }

void DenseA::pack(float* dst, int64_t m0, int rows, int64_t k0, int kc) const {
  if (s.colStride == 1) {
    for (int r = 0; r < rows; ++r) std::memcpy(dst + r * kKc, s.p + (m0 + r) * s.rowStride + k0, sizeof(float) * kc);
    return;
  }
  const TransposeBlock transpose = activeTranspose();
  if (s.rowStride == 1 && transpose != nullptr && rows <= 16) {
    // A^T is row-major (A[m, k] = p[m + k * colStride]): blocks of 16 k rows of A^T.
    for (int k = 0; k < kc; k += 16)
      transpose(s.p + m0 + (k0 + k) * s.colStride, s.colStride, std::min(16, kc - k), rows, dst + k, kKc);
    return;
  }
  for (int r = 0; r < rows; ++r) {
    const float* src = s.p + (m0 + r) * s.rowStride + k0 * s.colStride;
    for (int k = 0; k < kc; ++k) dst[r * kKc + k] = src[k * s.colStride];
  }
}

void DenseB::pack(float* dst, int64_t k0, int kc, int64_t n0, int cols) const {
  if (s.colStride == 1) {
    for (int k = 0; k < kc; ++k) {
      std::memcpy(dst + k * kNr, s.p + (k0 + k) * s.rowStride + n0, sizeof(float) * cols);
      if (cols < kNr) std::memset(dst + k * kNr + cols, 0, sizeof(float) * (kNr - cols));
    }
    return;
  }
  for (int k = 0; k < kc; ++k)
    if (cols < kNr) std::memset(dst + k * kNr + cols, 0, sizeof(float) * (kNr - cols));
  const TransposeBlock transpose = activeTranspose();
  if (s.rowStride == 1 && transpose != nullptr) {
    // B^T is row-major (B[k, n] = p[k + n * colStride]): 16 x 16 blocks of it.
    for (int j = 0; j < cols; j += 16)
      for (int k = 0; k < kc; k += 16)
        transpose(s.p + (n0 + j) * s.colStride + k0 + k, s.colStride, std::min(16, cols - j), std::min(16, kc - k),
                  dst + k * kNr + j, kNr);
    return;
  }
  for (int j = 0; j < cols; ++j) {
    const float* src = s.p + (n0 + j) * s.colStride + k0 * s.rowStride;
    for (int k = 0; k < kc; ++k) dst[k * kNr + j] = src[k * s.rowStride];
  }
}

void gemm(int64_t M, int64_t N, int64_t K, const APacker& a, const BPacker& b, float* c, int64_t ldc,
          const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m) std::memset(c + m * ldc, 0, sizeof(float) * N);
  } else {
    const MicroKernel kernel = activeKernel();
    const int64_t kBlocks = (K + kKc - 1) / kKc;
    const int64_t panels = (N + kNr - 1) / kNr;
    const int64_t panelBytes = static_cast<int64_t>(kKc) * kNr;
    // 1. B, packed once: block (kb, p) holds K rows [kb * kKc, ...) of columns [p * kNr, ...).
    // (Reading a dense B's rows in place instead was 1.36x slower on a linear layer's input
    // gradient, B = W [500, 2450]: a k step a 9.8 KB stride apart.)
    float* bp = tPackB.floats(static_cast<size_t>(kBlocks * panels * panelBytes));
    parallel(kBlocks * panels, static_cast<double>(K) * N * 8, [&](int64_t t) {
      const int64_t kb = t / panels, p = t % panels;
      const int kc = static_cast<int>(std::min<int64_t>(kKc, K - kb * kKc));
      const int cols = static_cast<int>(std::min<int64_t>(kNr, N - p * kNr));
      b.pack(bp + t * panelBytes, kb * kKc, kc, p * kNr, cols);
    });
    // 2. Tasks: row blocks x panel groups x K chunks.
    const int64_t rowBlocks = (M + kRowBlock - 1) / kRowBlock;
    const int64_t groups = (panels + kPanelGroup - 1) / kPanelGroup;
    const int64_t mn = rowBlocks * groups;
    int64_t splits = 1;
    if (mn < 8 && kBlocks >= 4) splits = std::min<int64_t>({kMaxKSplit, kBlocks / 2, (16 + mn - 1) / mn});
    const int64_t blocksPerSplit = (kBlocks + splits - 1) / splits;
    splits = (kBlocks + blocksPerSplit - 1) / blocksPerSplit;
    float* partial = splits > 1 ? tPartial.floats(static_cast<size_t>((splits - 1) * M * N)) : nullptr;
    // A row-major A is read in place: packing copied it once per use (a linear layer's weight,
    // W [N, K] in C^T = W x^T, in 1 KB rows every sample), and reading its strided rows measured
    // no slower for 1 to 8 panels of a task (0.78-0.99x the time of pack + packed reads).
    const Strided* inPlaceA = a.rowMajor();
    const bool aInPlace = inPlaceA != nullptr;
    parallel(mn * splits, flops, [&](int64_t t) {
      const int64_t s = t / mn, rb = (t % mn) / groups, g = t % groups;
      const int64_t m0 = rb * kRowBlock, m1 = std::min(M, m0 + kRowBlock);
      const int64_t p0 = g * kPanelGroup, p1 = std::min(panels, p0 + kPanelGroup);
      float* out = s == 0 ? c : partial + (s - 1) * M * N;
      const int64_t ldo = s == 0 ? ldc : N;
      const int64_t kb0 = s * blocksPerSplit, kb1 = std::min(kBlocks, kb0 + blocksPerSplit);
      float* ap = aInPlace ? nullptr : tPackA.floats(static_cast<size_t>(kRowBlock * kKc));
      for (int64_t kb = kb0; kb < kb1; ++kb) {
        const int kc = static_cast<int>(std::min<int64_t>(kKc, K - kb * kKc));
        if (!aInPlace)
          for (int64_t m = m0; m < m1; m += kMr) {
            const int rows = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
            a.pack(ap + (m - m0) * kKc, m, rows, kb * kKc, kc);
          }
        for (int64_t p = p0; p < p1; ++p) {
          const int cols = static_cast<int>(std::min<int64_t>(kNr, N - p * kNr));
          const float* panel = bp + (kb * panels + p) * panelBytes;
          for (int64_t m = m0; m < m1; m += kMr) {
            const int rows = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
            const float* am = aInPlace ? inPlaceA->p + m * inPlaceA->rowStride + kb * kKc : ap + (m - m0) * kKc;
            kernel(kc, am, aInPlace ? inPlaceA->rowStride : kKc, panel, out + m * ldo + p * kNr, ldo, rows, cols,
                   kb > kb0);
          }
        }
      }
    });
    if (splits > 1) {
      forRows(M, static_cast<double>(N) * splits, [&](int64_t m) {
        // the sizes in locals and the rows as restrict pointers, so that the adds vectorise (the
        // build does not assume strict aliasing: a captured size is reloaded after every store)
        const int64_t n = N, count = splits, stride = M * N;
        float* __restrict row = c + m * ldc;
        for (int64_t s = 1; s < count; ++s) {
          const float* __restrict src = partial + (s - 1) * stride + m * n;
          for (int64_t j = 0; j < n; ++j) row[j] += src[j];
        }
      });
    }
  }
  if (ep.bias == nullptr && ep.act == ACT_LINEAR) return;
  forRows(M, static_cast<double>(N) * 8, [&](int64_t m) {
    float* row = c + m * ldc;
    for (int64_t n = 0; n < N; ++n) row[n] = activate(row[n] + (ep.bias ? ep.bias[n] : 0.f), ep);
  });
}

void gemmDense(int64_t M, int64_t N, int64_t K, const float* a, bool ta, const float* b, bool tb, float* c,
               const Epilogue& ep) {
  const DenseA pa(ta ? Strided{a, 1, M} : Strided{a, K, 1});
  // Transposed operands pack with a gather: swap when B is larger than op(A) and C together.
  if (!tb || N * K <= M * (K + N)) {
    gemm(M, N, K, pa, DenseB(tb ? Strided{b, 1, K} : Strided{b, N, 1}), c, N, ep);
    return;
  }
  // C^T [N, M] = B [N, K] op(A)^T, then transposed into C with the epilogue: 16 rows of C a task,
  // in 16 x 16 register transposes where available.
  float* ct = tTransposed.floats(static_cast<size_t>(M * N));
  gemm(N, M, K, DenseA({b, K, 1}), DenseB(ta ? Strided{a, M, 1} : Strided{a, 1, K}), ct, M, Epilogue{});
  const TransposeBlock transpose = activeTranspose();
  parallel((M + 15) / 16, static_cast<double>(M) * N * 8, [&](int64_t t) {
    const int64_t m0 = t * 16, rows = std::min<int64_t>(16, M - m0);
    if (transpose != nullptr) {
      for (int64_t n0 = 0; n0 < N; n0 += 16)
        transpose(ct + n0 * M + m0, M, static_cast<int>(std::min<int64_t>(16, N - n0)), static_cast<int>(rows),
                  c + m0 * N + n0, N);
    } else {
      for (int64_t m = m0; m < m0 + rows; ++m)
        for (int64_t n = 0; n < N; ++n) c[m * N + n] = ct[n * M + m];
    }
    if (ep.bias == nullptr && ep.act == ACT_LINEAR) return;
    for (int64_t m = m0; m < m0 + rows; ++m) {
      float* row = c + m * N;
      for (int64_t n = 0; n < N; ++n) row[n] = activate(row[n] + (ep.bias ? ep.bias[n] : 0.f), ep);
    }
  });
}

}  // namespace fp32
}  // namespace qbnn
