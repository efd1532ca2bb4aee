// The int8 GEMM and convolution drivers (see driver.h), moved out of addon.cc so that execution
// plans run the same code as the single-kernel entry points.
#include "driver.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "pool.h"

namespace qbnn {

namespace {
std::atomic<int> gIsa{ISA_SCALAR};

using GemmFn = void (*)(const GemmCtx&, int32_t, int32_t, int32_t, int32_t);

GemmFn gemmFor(int isa) {
  switch (isa) {
    case ISA_AMX: return gemmAmxHw;
    case ISA_AMX_EMU: return gemmAmxEmu;
    case ISA_AVX512VNNI: return gemmAvx512Vnni;
    case ISA_AVXVNNI: return gemmAvxVnni;
    case ISA_AVX2: return gemmAvx2;
    default: return gemmScalar;
  }
}

struct AlignedBuf {
  void* p = nullptr;
  explicit AlignedBuf(size_t bytes) { p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64); }
  ~AlignedBuf() { std::free(p); }
};

}  // namespace

int activeIsa() { return gIsa.load(); }
void setActiveIsa(int isa) { gIsa.store(isa); }

bool vectorRng() {
  const int isa = activeIsa();
  return cpuFeatures().avx512vnni && (isa == ISA_AVX512VNNI || isa == ISA_AMX || isa == ISA_AMX_EMU);
}

// The epilogue constants of W (padded to nblocks * 16 in colTerm, zw, mult) and the context
// around them, without the activations.
static GemmCtx gemmContext(const Packed& w, int32_t za, const Epilogue& e, int32_t* colTerm, int32_t* zw, double* mult,
                    void* out, size_t ldo) {
  for (int32_t n = 0; n < w.nblocks * 16; ++n) {
    if (n < w.n) {
      const int32_t b = e.bias ? e.bias[n] : 0;
      zw[n] = w.zeroPoint[n];
      colTerm[n] = wadd(wsub(b, wmul(za, w.rowSums[n])), wmul(wmul(w.k, za), w.zeroPoint[n]));
      mult[n] = e.mult ? e.mult[n] : 0.0;
    } else {
      zw[n] = 0;
      colTerm[n] = 0;
      mult[n] = 0.0;
    }
  }
  GemmCtx c;
  c.w = &w;
  c.colTerm = colTerm;
  c.zw = zw;
  c.mult = mult;
  c.outKind = e.outKind;
  c.zo = e.zo;
  c.lo = e.relu ? e.zo : 0;
  c.out = out;
  c.ldo = ldo;
  return c;
}

bool gemvEpilogue(const uint8_t* a, int32_t za, const Packed& w, const Epilogue& e, const int32_t* raw, void* out) {
  thread_local Scratch sideBuf;
  const int32_t npad = w.nblocks * 16;
  void* side = sideBuf.get(static_cast<size_t>(npad) * 16 + 64);
  if (!side) return false;
  int32_t* colTerm = static_cast<int32_t*>(side);
  int32_t* zw = colTerm + npad;
  double* mult = reinterpret_cast<double*>(zw + npad);
  int32_t aSum = 0;
  for (int32_t i = 0; i < w.k; ++i) aSum += a[i];
  GemmCtx c = gemmContext(w, za, e, colTerm, zw, mult, out, static_cast<size_t>(w.n));
  c.a = a;
  c.lda = static_cast<size_t>(w.k);
  c.m = 1;
  c.aSums = &aSum;
  for (int32_t n = 0; n < w.n; ++n) epilogueOne(c, 0, n, raw[n]);
  return true;
}

bool runGemm(const uint8_t* a, size_t lda, int32_t m, int32_t za, const Packed& w, const Epilogue& e,
             void* out, size_t ldo) {
  const int isa = activeIsa();
  const bool amx = isa == ISA_AMX || isa == ISA_AMX_EMU;
  const int32_t k = w.k;
  const int32_t npad = w.nblocks * 16;
  // A with zero-padded rows when the kernel would read past k (or AMX needs whole tiles).
  const size_t needLd = amx ? static_cast<size_t>(w.kstride) * 4 : static_cast<size_t>(w.kgroups) * 4;
  const int32_t mPad = amx ? (m + 15) / 16 * 16 : m;
  const bool copyA = amx || needLd != static_cast<size_t>(k) || lda != static_cast<size_t>(k);
  AlignedBuf abuf(copyA ? static_cast<size_t>(mPad) * needLd : 1);
  thread_local Scratch sideBuf;
  void* side = sideBuf.get((static_cast<size_t>(m) + 3 * static_cast<size_t>(npad)) * 8 + 64);
  if (!abuf.p || !side) return false;
  int32_t* aSums = static_cast<int32_t*>(side);
  int32_t* colTerm = aSums + ((m + 15) / 16 * 16);
  int32_t* zw = colTerm + npad;
  double* mult = reinterpret_cast<double*>(zw + npad);
  const uint8_t* ap = a;
  size_t ld = lda;
  if (copyA) {
    uint8_t* dst = static_cast<uint8_t*>(abuf.p);
    std::memset(dst, 0, static_cast<size_t>(mPad) * needLd);
    for (int32_t r = 0; r < m; ++r) std::memcpy(dst + r * needLd, a + r * lda, static_cast<size_t>(k));
    ap = dst;
    ld = needLd;
  }
  if (isa == ISA_AVX512VNNI || ((isa == ISA_AMX || isa == ISA_AMX_EMU) && cpuFeatures().avx512vnni)) {
    rowSumsU8Avx512(a, lda, m, k, aSums);
  } else {
    for (int32_t r = 0; r < m; ++r) {
      const uint8_t* row = a + static_cast<size_t>(r) * lda;
      int32_t s = 0;
      for (int32_t i = 0; i < k; ++i) s += row[i];
      aSums[r] = s;
    }
  }
  GemmCtx c = gemmContext(w, za, e, colTerm, zw, mult, out, ldo);
  c.a = ap;
  c.lda = ld;
  c.m = m;
  c.aSums = aSums;
  const GemmFn fn = gemmFor(isa);
  ThreadPool& pool = ThreadPool::instance();
  const int threads = pool.threads();
  const double work = static_cast<double>(m) * w.nblocks * 16 * (w.kgroups * 4 + 16);
  if (threads <= 1 || work < 2.0e6) {
    fn(c, 0, m, 0, w.nblocks);
    return true;
  }
  // Split into a grid of tasks: channel blocks first (each thread streams its own weights),
  // then rows. Every output element is computed by exactly the same instruction sequence
  // whatever the split, so results do not depend on the thread count.
  const int32_t target = threads * 8;  // enough tasks to balance dynamically
  int32_t nbChunk = (w.nblocks + target - 1) / target;
  nbChunk = (nbChunk + 3) / 4 * 4;
  const int32_t nTasksN = (w.nblocks + nbChunk - 1) / nbChunk;
  int32_t mTasks = target / nTasksN;
  if (mTasks < 1) mTasks = 1;
  const int32_t mAlign = amx ? 32 : 6;
  int32_t mChunk = (m + mTasks - 1) / mTasks;
  mChunk = (mChunk + mAlign - 1) / mAlign * mAlign;
  const int32_t nTasksM = (m + mChunk - 1) / mChunk;
  pool.run(static_cast<int64_t>(nTasksN) * nTasksM, [&](int64_t t) {
    const int32_t tm = static_cast<int32_t>(t / nTasksN);
    const int32_t tn = static_cast<int32_t>(t % nTasksN);
    const int32_t m0 = tm * mChunk;
    const int32_t m1 = m0 + mChunk < m ? m0 + mChunk : m;
    const int32_t nb0 = tn * nbChunk;
    const int32_t nb1 = nb0 + nbChunk < w.nblocks ? nb0 + nbChunk : w.nblocks;
    fn(c, m0, m1, nb0, nb1);
  });
  return true;
}

bool runConv(const ConvCall& cc, void* out, ConvDirectArgs::After after, void* afterCtx) {
  const Epilogue& e = cc.e;
  const int64_t B = cc.B, C = cc.C, H = cc.H, W = cc.W, O = cc.O, Cg = cc.Cg, kh = cc.kh, kw = cc.kw;
  const int64_t sh = cc.sh, sw = cc.sw, ph = cc.ph, pw = cc.pw, dh = cc.dh, dw = cc.dw, G = cc.G;
  const int64_t Ho = cc.Ho, Wo = cc.Wo, K = cc.K, Og = cc.Og, HW = cc.HW;
  const int32_t za = cc.za;
  if (activeIsa() == ISA_AVX512VNNI) {
    const ConvDirectArgs d{cc.x, B, C, H, W, za, cc.packs.data(), O, kh, kw, sh, sw, ph, pw, dh, dw, G, Ho, Wo,
                           e.bias, e.outKind, e.mult, e.zo, e.relu, out, after, afterCtx};
    if (convDirectAvx512(d)) return true;
  }
  const size_t esz = e.outKind == OUT_U8 ? 1 : 4;
  std::vector<uint8_t> col(static_cast<size_t>(HW * K));
  std::vector<uint8_t> tmp(static_cast<size_t>(HW * Og) * esz);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < G; ++g) {
      // im2col: row (ho, wo), column (c, i, j); padding reads the zero point.
      for (int64_t ho = 0; ho < Ho; ++ho) {
        for (int64_t wo = 0; wo < Wo; ++wo) {
          uint8_t* row = col.data() + static_cast<size_t>((ho * Wo + wo) * K);
          for (int64_t c = 0; c < Cg; ++c) {
            const uint8_t* plane = cc.x + static_cast<size_t>(((b * C) + g * Cg + c) * H * W);
            for (int64_t i = 0; i < kh; ++i) {
              const int64_t y = ho * sh - ph + i * dh;
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t xx = wo * sw - pw + j * dw;
                *row++ = (y >= 0 && y < H && xx >= 0 && xx < W) ? plane[y * W + xx] : static_cast<uint8_t>(za);
              }
            }
          }
        }
      }
      Epilogue eg = e;
      if (e.bias) eg.bias = e.bias + g * Og;
      if (e.mult) eg.mult = e.mult + g * Og;
      if (!runGemm(col.data(), static_cast<size_t>(K), static_cast<int32_t>(HW), za, *cc.packs[static_cast<size_t>(g)], eg,
                   tmp.data(), static_cast<size_t>(Og)))
        return false;
      // [HW, Og] -> out[b, g*Og + o, :, :]
      uint8_t* dst = static_cast<uint8_t*>(out) + static_cast<size_t>((b * O + g * Og) * HW) * esz;
      for (int64_t o = 0; o < Og; ++o) {
        uint8_t* d = dst + static_cast<size_t>(o * HW) * esz;
        if (esz == 1) {
          for (int64_t p = 0; p < HW; ++p) d[p] = tmp[static_cast<size_t>(p * Og + o)];
        } else {
          for (int64_t p = 0; p < HW; ++p) std::memcpy(d + p * 4, tmp.data() + static_cast<size_t>(p * Og + o) * 4, 4);
        }
      }
    }
  }
  if (after) after(afterCtx, 0, B, 0, O);
  return true;
}

}  // namespace qbnn
