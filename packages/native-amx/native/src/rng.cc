// Quantised normal sampling (scalar path, threshold table) and the scalar fused sampler.
#include <cstring>

#include "common.h"
#include "philox.h"

namespace qbnn {

namespace {
uint32_t gThresholds[256];
bool gReady = false;
// See qnormalGuide() in common.h.
uint32_t gGuide[4096];
// See qnormalSearchLevels() in common.h.
alignas(64) uint32_t gLevels[19 * 16];

inline int32_t countBinary(uint32_t u) {
  // #{ j < 255 : u >= T[j] } for an ascending table, branchless.
  int32_t lo = 0;
  for (int step = 128; step >= 1; step >>= 1) {
    const int32_t probe = lo + step - 1;  // lo + step <= 255
    lo += (probe < 255 && u >= gThresholds[probe]) ? step : 0;
  }
  return lo;
}
}  // namespace

bool setQnormalTable(const uint32_t* t, const char** why) {
  for (int j = 0; j + 1 < 255; ++j) {
    if (t[j] > t[j + 1]) {
      *why = "QNORMAL_THRESHOLDS is not ascending";
      return false;
    }
  }
  std::memcpy(gThresholds, t, 255 * sizeof(uint32_t));
  gThresholds[255] = 0xffffffffu;
  for (uint32_t h = 0; h < 4096; ++h) {
    const uint64_t start = static_cast<uint64_t>(h) << 20;
    const uint64_t end = start + (1u << 20);
    uint32_t base = 0;
    while (base < 255 && t[base] <= start) ++base;
    uint32_t inside = 0;
    while (base + inside < 255 && t[base + inside] < end) ++inside;
    if (inside == 0) {
      gGuide[h] = base | (static_cast<uint32_t>(1u << 20) << 8);
    } else if (inside == 1) {
      gGuide[h] = base | (static_cast<uint32_t>(t[base] - start) << 8);
    } else {
      gGuide[h] = base | 0x80000000u;
    }
  }
  // Binary-search levels for the vector path: level s = 128, 64, ..., 1 holds the 128 / s
  // candidates T[i * 2s + s - 1], padded with 0xffffffff to whole registers of 16.
  {
    uint32_t* dst = gLevels;
    for (int s = 128; s >= 1; s >>= 1) {
      const int count = 128 / s;
      const int regs = count <= 16 ? 1 : count / 16;
      for (int i = 0; i < regs * 16; ++i) dst[i] = i < count ? t[i * 2 * s + s - 1] : 0xffffffffu;
      dst += regs * 16;
    }
    static_assert(sizeof(gLevels) == (5 * 16 + 32 + 64 + 128) * sizeof(uint32_t), "level layout");
  }
  gReady = true;
  return true;
}

bool qnormalReady() { return gReady; }
const uint32_t* qnormalThresholds() { return gThresholds; }
const uint32_t* qnormalGuide() { return gGuide; }
const uint32_t* qnormalSearchLevels() { return gLevels; }

static inline int8_t mapWord(uint32_t u) {
  const uint32_t e = gGuide[u >> 20];
  if (e & 0x80000000u) return static_cast<int8_t>(countBinary(u) - 128);  // far tails
  const int32_t cnt = static_cast<int32_t>(e & 0xffu) + ((u & 0xfffffu) >= (e >> 8) ? 1 : 0);
  return static_cast<int8_t>(cnt - 128);
}

void qnormalMapWordsScalar(const uint32_t* words, int8_t* out, size_t count) {
  for (size_t i = 0; i < count; ++i) out[i] = mapWord(words[i]);
}

int8_t qnormalBinarySearch(uint32_t u) { return static_cast<int8_t>(countBinary(u) - 128); }

void philoxBlock(uint32_t k0, uint32_t k1, uint64_t block, uint32_t out[4]) {
  philox4x32(k0, k1, static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0, out);
}

void qnormalScalar(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count) {
  size_t i = 0;
  uint32_t w[4];
  while (i < count) {
    const uint64_t word = word0 + i;
    philoxBlock(k0, k1, word >> 2, w);
    for (uint32_t j = static_cast<uint32_t>(word & 3); j < 4 && i < count; ++j, ++i) out[i] = mapWord(w[j]);
  }
}

void sampleRowsScalar(const SampleCtx& s, int32_t n0, int32_t n1) {
  Packed& p = *s.out;
  const size_t bs = p.blockBytes();
  int8_t* eps = new int8_t[s.k > 0 ? s.k : 1];
  for (int32_t n = n0; n < n1; ++n) {
    const size_t row = static_cast<size_t>(n) * static_cast<size_t>(s.k);
    qnormalScalar(s.key0, s.key1, s.position * 4 + row, eps, static_cast<size_t>(s.k));
    const double m1 = s.m1[n], m2 = s.m2[n], m3 = s.m3[n];
    const int32_t zmu = s.muZp[n], zsig = s.sigmaZp[n], zn = s.noiseZp[n], zw = s.weightZp[n];
    const double qmin = s.qmin, qmax = s.qmax;
    uint8_t* blk = p.data + static_cast<size_t>(n / 16) * bs + static_cast<size_t>(n % 16) * 4;
    int32_t sum = 0;
    for (int32_t i = 0; i < s.k; ++i) {
      const double prod = static_cast<double>(eps[i]) * static_cast<double>(static_cast<int32_t>(s.sigma[row + i]) - zsig);
      double nq = roundHalfEven(prod * m1) + static_cast<double>(zn);
      nq = nq < qmin ? qmin : (nq > qmax ? qmax : nq);
      const double a = static_cast<double>(static_cast<int32_t>(s.mu[row + i]) - zmu) * m2;
      const double b = (nq - static_cast<double>(zn)) * m3;
      double wq = roundHalfEven(a + b) + static_cast<double>(zw);
      wq = wq < qmin ? qmin : (wq > qmax ? qmax : wq);
      const int32_t q = static_cast<int32_t>(wq);
      sum += q;
      blk[static_cast<size_t>(i >> 2) * 64 + (i & 3)] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
    p.rowSums[n] = sum;
    p.zeroPoint[n] = zw;
  }
  delete[] eps;
}

}  // namespace qbnn
