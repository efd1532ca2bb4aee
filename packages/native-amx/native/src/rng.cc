// Quantised normal sampling (scalar path, threshold table) and the scalar fused sampler.
#include <cstring>

#include <vector>

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

QnormalByteTables gBytes;

// #{ j : T[j] <= x } for x up to 2^32.
int32_t countAtOrBelow(uint64_t x) {
  int32_t c = 0;
  while (c < 255 && gThresholds[c] <= x) ++c;
  return c;
}

// Bucket [start, end) of v (words below `limit` only): false when two thresholds lie inside.
bool fillBucket(uint8_t (*tab)[256], size_t stride, int i, uint64_t start, uint64_t end, uint64_t limit) {
  const int32_t base = countAtOrBelow(start);
  const bool in = base < 255 && gThresholds[base] < end && gThresholds[base] < limit;
  if (in && base + 1 < 255 && gThresholds[base + 1] < end && gThresholds[base + 1] < limit) return false;
  uint8_t* t[4];
  for (int k = 0; k < 4; ++k) t[k] = reinterpret_cast<uint8_t*>(tab) + k * stride;
  const uint32_t thr = in ? gThresholds[base] : 0;
  t[0][i] = static_cast<uint8_t>(in ? base - 128 : base - 129);  // wraps like the byte adds
  t[1][i] = static_cast<uint8_t>(thr >> 16);
  t[2][i] = static_cast<uint8_t>(thr >> 8);
  t[3][i] = static_cast<uint8_t>(thr);
  return true;
}

bool buildByteTables() {
  for (int j = 1; j < 255; ++j)
    if (static_cast<uint64_t>(gThresholds[j]) + gThresholds[255 - j] != (uint64_t{1} << 32)) return false;
  // Octave 22 and up only: below 2^22 (bucket 0) no threshold may lie.
  if (gThresholds[0] < (1u << 22) + (1u << 17)) return false;
  // The centre: the lowest top byte from which every 2^24 bucket up to 2^31 holds <= 1 threshold.
  int top = 128;
  uint8_t centre[4][256] = {};
  for (int h = 127; h >= 0; --h) {
    const uint64_t s = static_cast<uint64_t>(h) << 24;
    if (!fillBucket(centre, 256, h, s, s + (1u << 24), ~uint64_t{0})) break;
    top = h;
  }
  if (top > 32) return false;  // tail words must stay below 2^29 (octave <= 28)
  for (int k = 0; k < 4; ++k) std::memcpy(gBytes.centre[k], centre[k], 128);
  const uint64_t limit = static_cast<uint64_t>(top) << 24;
  for (int i = 0; i < 256; ++i) {
    const int e = 22 + i / 32, m = i % 32;
    uint64_t start = (uint64_t{1} << e) + (static_cast<uint64_t>(m) << (e - 5));
    const uint64_t end = start + (uint64_t{1} << (e - 5));
    if (i == 0) start = 0;
    if (start >= limit) {
      for (int k = 0; k < 4; ++k) gBytes.tail[k][i] = 0;
      continue;
    }
    if (!fillBucket(gBytes.tail, 256, i, start, end, limit)) return false;
  }
  gBytes.tailTop = static_cast<uint8_t>(top);
  return true;
}

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
  gBytes.ready = buildByteTables();
  gReady = true;
  return true;
}

const QnormalByteTables& qnormalByteTables() { return gBytes; }

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
  const size_t k = static_cast<size_t>(s.k > 0 ? s.k : 1);
  std::vector<int8_t> eps(k), muRow(s.muBits < 8 ? k : 0), sigmaRow(s.sigmaBits < 8 ? k : 0);
  for (int32_t n = n0; n < n1; ++n) {
    const size_t row = static_cast<size_t>(n) * static_cast<size_t>(s.k);
    qnormalScalar(s.key0, s.key1, s.position * 4 + row, eps.data(), static_cast<size_t>(s.k));
    const int8_t* mu = s.mu + row;
    const uint8_t* sigma = s.sigma + row;
    if (s.muBits < 8) {
      unpackIntsScalar(reinterpret_cast<const uint8_t*>(s.mu), s.muBytes, row, k, s.muBits, true, muRow.data());
      mu = muRow.data();
    }
    if (s.sigmaBits < 8) {
      unpackIntsScalar(s.sigma, s.sigmaBytes, row, k, s.sigmaBits, false, sigmaRow.data());
      sigma = reinterpret_cast<const uint8_t*>(sigmaRow.data());
    }
    const double m1 = s.m1[n], m2 = s.m2[n], m3 = s.m3[n];
    const int32_t zmu = s.muZp[n], zsig = s.sigmaZp[n], zn = s.noiseZp[n], zw = s.weightZp[n];
    const double qmin = s.qmin, qmax = s.qmax;
    uint8_t* blk = p.data + static_cast<size_t>(n / 16) * bs + static_cast<size_t>(n % 16) * 4;
    int32_t sum = 0;
    for (int32_t i = 0; i < s.k; ++i) {
      const double prod = static_cast<double>(eps[i]) * static_cast<double>(static_cast<int32_t>(sigma[i]) - zsig);
      double nq = roundHalfEven(prod * m1) + static_cast<double>(zn);
      nq = nq < qmin ? qmin : (nq > qmax ? qmax : nq);
      const double a = static_cast<double>(static_cast<int32_t>(mu[i]) - zmu) * m2;
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
}

}  // namespace qbnn
