// Scalar normals and the split over threads (see normal.h).
#include "normal.h"

#include <algorithm>
#include <cmath>

#include "../common.h"
#include "parallel.h"
#include "sgemm.h"

namespace qbnn {
namespace fp32 {
namespace {

constexpr double kLn2 = 0.6931471805599453;      // Math.LN2
constexpr double kSqrt2 = 1.4142135623730951;    // Math.SQRT2
constexpr double kAngleUnit = (2 * 3.141592653589793) / 16777216;  // 2 pi / 2^24

// log(m 2^-24), m in [1, 2^24] (logUnit of normal.ts).
double logUnit(const NormalCoefficients& c, uint32_t m) {
  int e = 31 - __builtin_clz(m);
  double f = static_cast<double>(m) * std::ldexp(1.0, -e);
  if (f > kSqrt2) {
    f *= 0.5;
    e += 1;
  }
  const double s = (f - 1) / (f + 1);
  const double z = s * s;
  double p = c.log[NormalCoefficients::kLogTerms - 1];
  for (int k = NormalCoefficients::kLogTerms - 2; k >= 0; --k) p = p * z + c.log[k];
  return static_cast<double>(e - 24) * kLn2 + (s + s) * p;
}

// The two normals of one word pair (normalsFromWords of normal.ts).
void normalPair(const NormalCoefficients& c, uint32_t w0, uint32_t w1, float* cosOut, float* sinOut) {
  const double r = std::sqrt(-2 * logUnit(c, (w0 >> 8) + 1));
  const uint32_t t = w1 >> 8;
  const uint32_t q = t >> 22;
  const double a = static_cast<double>(t & 0x3fffff) * kAngleUnit;
  const double z = a * a;
  double ps = c.sin[NormalCoefficients::kTrigTerms - 1];
  double pc = c.cos[NormalCoefficients::kTrigTerms - 1];
  for (int k = NormalCoefficients::kTrigTerms - 2; k >= 0; --k) {
    ps = ps * z + c.sin[k];
    pc = pc * z + c.cos[k];
  }
  const double s = a * ps;
  double sn = (q & 1) ? pc : s;
  double cs = (q & 1) ? s : pc;
  if (q & 2) sn = -sn;
  if ((q ^ (q >> 1)) & 1) cs = -cs;
  *cosOut = static_cast<float>(r * cs);
  if (sinOut) *sinOut = static_cast<float>(r * sn);
}

// Normals of `count` (<= 4 blocks' worth... any) elements starting at block `block`, scalar.
void normalScalar(uint32_t k0, uint32_t k1, uint64_t block, float* out, int64_t count) {
  const NormalCoefficients& c = normalCoefficients();
  uint32_t w[4];
  for (int64_t j = 0; j < count; j += 4, ++block) {
    philoxBlock(k0, k1, block, w);
    for (int p = 0; p < 4 && j + p < count; p += 2)
      normalPair(c, w[p], w[p + 1], out + j + p, j + p + 1 < count ? out + j + p + 1 : nullptr);
  }
}

}  // namespace

const NormalCoefficients& normalCoefficients() { return kNormalCoefficients; }

namespace {

// Tasks of 1024 blocks (4096 normals); the last one may end inside a block.
constexpr int64_t kBlocksPerTask = 1024;

// The n <= 4096 normals of task blocks from `block` into out: the vector body on whole runs of
// 8 blocks, the scalar path on the rest.
void fillSpan(uint32_t k0, uint32_t k1, uint64_t block, float* out, int64_t n, bool vec) {
  const int64_t whole = vec ? (n / 32) * 8 : 0;  // the vector body takes 8 blocks at a time
  if (whole > 0 && normalBlocksAvx512(k0, k1, block, whole, out)) {
    normalScalar(k0, k1, block + whole, out + whole * 4, n - whole * 4);
  } else {
    normalScalar(k0, k1, block, out, n);
  }
}

template <typename Fn>
void forTasks(int64_t count, double flopsPerElement, Fn&& fn) {
  const int64_t blocks = (count + 3) / 4;
  const int64_t tasks = (blocks + kBlocksPerTask - 1) / kBlocksPerTask;
  const bool vec = usingAvx512();
  parallel(tasks, static_cast<double>(count) * flopsPerElement, [&](int64_t t) {
    const int64_t b0 = t * kBlocksPerTask;
    const int64_t j0 = b0 * 4;
    fn(b0, j0, std::min<int64_t>(count - j0, kBlocksPerTask * 4), vec);
  });
}

}  // namespace

void normalFill(uint32_t k0, uint32_t k1, uint64_t firstBlock, float* out, int64_t count) {
  forTasks(count, 64, [&](int64_t b0, int64_t j0, int64_t n, bool vec) {
    fillSpan(k0, k1, firstBlock + static_cast<uint64_t>(b0), out + j0, n, vec);
  });
}

void normalLocScale(uint32_t k0, uint32_t k1, uint64_t firstBlock, const float* mu, const float* sigma, float* w,
                    int64_t count) {
  // Each task in one call of the vector body, which writes w from the normals in registers (never
  // stored), the rest through a small buffer. The hardware prefetchers follow mu, sigma and w:
  // steps of 96 blocks with the next step's lines requested by hand took 1.03-1.08x the time (caches
  // cold or warm), steps of 96 blocks without 1.03-1.06x. The product rounded, then the sum (the
  // build never fuses them), as tf.add(mu, tf.mul(sigma, eps)).
  forTasks(count, 66, [&](int64_t b0, int64_t j0, int64_t n, bool vec) {
    const uint64_t block = firstBlock + static_cast<uint64_t>(b0);
    const float* __restrict m = mu + j0;
    const float* __restrict s = sigma + j0;
    float* __restrict out = w + j0;
    const int64_t whole = vec ? (n / 32) * 8 : 0;  // blocks, a multiple of 8
    int64_t done = whole > 0 && normalLocScaleBlocksAvx512(k0, k1, block, whole, m, s, out) ? whole * 4 : 0;
    constexpr int64_t kBuffer = 256;
    alignas(64) float eps[kBuffer];
    for (; done < n; done += kBuffer) {
      const int64_t len = std::min(kBuffer, n - done);
      normalScalar(k0, k1, block + static_cast<uint64_t>(done / 4), eps, len);
      for (int64_t i = 0; i < len; ++i) out[done + i] = m[done + i] + s[done + i] * eps[i];
    }
  });
}

void uniformFill(uint32_t k0, uint32_t k1, uint64_t firstBlock, float* out, int64_t count) {
  // Tasks of 4096 blocks; the values are a pure function of their position.
  constexpr int64_t kBlocksPerTask = 4096;
  const int64_t blocks = (count + 3) / 4;
  const int64_t tasks = (blocks + kBlocksPerTask - 1) / kBlocksPerTask;
  parallel(tasks, static_cast<double>(count) * 8, [&](int64_t t) {
    const int64_t j0 = t * kBlocksPerTask * 4;
    const int64_t j1 = std::min<int64_t>(count, j0 + kBlocksPerTask * 4);
    uint32_t w[4];
    for (int64_t j = j0, block = t * kBlocksPerTask; j < j1; j += 4, ++block) {
      philoxBlock(k0, k1, firstBlock + static_cast<uint64_t>(block), w);
      for (int p = 0; p < 4 && j + p < j1; ++p) out[j + p] = static_cast<float>(w[p] >> 8) * 0x1p-24f;
    }
  });
}

}  // namespace fp32
}  // namespace qbnn
