// Execution plans: a quantised model compiled by @qbnn/qat (packages/core/src/kernels/plan.ts
// describes the steps) and run in one call per forward. Every step does exactly what the
// integer engine's op table does with the kernels called one by one (same drivers, same
// float64 steps in the same order), so the logits are bit-identical to it.
//
// Work is split into tasks that do not depend on the thread count: steps every sample shares
// run once per batch tile; each sample's stochastic weights are drawn by one task per (sample,
// layer); then one task per (sample, batch tile) runs the rest of the network on its rows.
// Activations live in per-thread arenas (task slots) and a per-plan arena (shared slots) that
// grow once and are reused across calls: nothing is allocated per sample.
#include "plan.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "driver.h"
#include "pool.h"

#if QBNN_X86
#include <immintrin.h>
#endif

namespace qbnn {
namespace {

[[noreturn]] void fail(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, "plan: " + msg); }

void need(Napi::Env env, bool ok, const std::string& msg) {
  if (!ok) fail(env, msg);
}

// ---------- reading the description

Napi::Value field(const Napi::Object& o, const char* name) { return o.Get(name); }

double num(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsNumber()) fail(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) fail(env, std::string(name) + " must be finite");
  return d;
}

int64_t integer(Napi::Env env, const Napi::Object& o, const char* name, double lo, double hi) {
  const double d = num(env, o, name);
  if (d != std::floor(d) || d < lo || d > hi)
    fail(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

bool flag(const Napi::Object& o, const char* name) { return field(o, name).ToBoolean().Value(); }

Napi::Object obj(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsObject()) fail(env, std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}

template <typename T>
std::vector<T> array(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const char* name, size_t length) {
  if (!v.IsTypedArray()) fail(env, std::string(name) + " must be a typed array");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.TypedArrayType() != type) fail(env, std::string(name) + " has the wrong element type");
  if (t.ElementLength() != length)
    fail(env, std::string(name) + " must have " + std::to_string(length) + " elements, got " +
                  std::to_string(t.ElementLength()));
  std::vector<T> out(length);
  if (length > 0) {
    const uint8_t* base = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    std::memcpy(out.data(), base, length * sizeof(T));
  }
  return out;
}

std::vector<double> notNaNF64(Napi::Env env, const Napi::Value& v, const char* name, size_t length) {
  std::vector<double> d = array<double>(env, v, napi_float64_array, name, length);
  for (double x : d)
    if (std::isnan(x)) fail(env, std::string(name) + " must not be NaN");
  return d;
}

std::vector<double> finiteF64(Napi::Env env, const Napi::Value& v, const char* name, size_t length) {
  std::vector<double> d = array<double>(env, v, napi_float64_array, name, length);
  for (double x : d)
    if (!std::isfinite(x)) fail(env, std::string(name) + " must be finite");
  return d;
}

// ---------- the plan

struct Slot {
  bool shared = false;
  int32_t index = -1;
};

enum StepOp : int { S_QUANTIZE, S_LAYER, S_LOCAL_GEMM, S_LOCAL_COMBINE, S_RELU, S_POOL, S_GAP, S_ADD, S_SPREAD };

struct Step {
  int op = S_RELU;
  bool shared = false;
  Slot in, out, scratch, mean, variance, a, b;
  int32_t layer = -1;
  double scale = 1, ma = 0, mb = 0;
  int32_t zeroPoint = 0, qmax = 255, za = 0, zb = 0, z = 0, lo = 0, hi = 255;
  int64_t size = 0;  // values per example (relu, add)
  // add: the float32 form of addAvx512 (fma(a, ma32, fma(b, mb32, zs32)) rounded to nearest even,
  // then clamped) gives the float64 formula's byte for every pair of input bytes (checked for all
  // 65,536 at parse time, addF32Exact), so its blocks need no check of their distance to a half
  bool addExact = false;
  int64_t channels = 0, h = 0, w = 0, hw = 0;
  PoolGeometry pool{};
  int64_t hs = 0, ws = 0, sh = 1, sw = 1, bh = 0, bw = 0;  // spread
  // a convolution layer whose output only a 2x2 stride-2 max pool reads: that pool's geometry
  // and output (its own step removed); the convolution writes the pooled output directly
  bool fusedPool = false;
  Slot pooled;
  int64_t pooledSize = 0;  // values per example of the pooled output
  // the pooled output's slot is the convolution's input (or its masked copy): the kernel writes
  // the pooled values into the convolution's own slot, then they are copied
  bool poolViaOut = false;
};

struct WeightSet {
  const Packed* p = nullptr;
  std::vector<double> mult;
  std::vector<int32_t> bias;
};

enum WeightKind : int { W_SETS, W_GAUSSIAN, W_LOCAL };

struct Layer {
  bool conv = false;
  int32_t n = 0, k = 0;
  int64_t G = 1;  // convolution groups: weights [n, k = C / G kh kw], packed whole, run per group
  int64_t C = 1, H = 1, W = 1, kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, Ho = 1, Wo = 1;
  // an unpadded 1x1 convolution with strides: the pixels its strides read ([C][H][W] of inH x inW
  // every subH-th row, subW-th column) are copied out first and the layer runs as a stride-1
  // convolution over them (H, W, sh, sw describe that); subH = 0 for every other layer
  int64_t subH = 0, subW = 0, inH = 0, inW = 0;
  int64_t inSize = 0, outSize = 0;
  int32_t inZero = 0;
  bool dropout = false;
  // a transposed convolution's masks: a spread step masks its input (before spreading, as the
  // engine does), so the layer takes its input as masked
  bool maskedBySpread = false;
  uint64_t threshold = 0;
  std::vector<uint8_t> table;
  int32_t maskedZero = 0;
  bool f32 = false;
  int32_t zo = 0, qmax = 255;
  bool relu = false;
  bool pool2 = false;  // its u8 output is pooled in the direct kernel (a step's fusedPool)
  int kind = W_SETS;
  // stored sets
  std::vector<WeightSet> sets;
  bool cycle = false;
  // the fused Gaussian sampler
  std::vector<int8_t> mu;
  std::vector<uint8_t> sigma;
  // below 8 bits: mu / sigma are packInts bytes, decoded a row at a time by the sampler
  int32_t muBits = 8, sigmaBits = 8;
  std::vector<int32_t> muZp, sigZp, noiseZp, wZp;
  std::vector<double> m1, m2, m3, mult;
  int32_t wqmin = -128, wqmax = 127;
  bool radial = false, hasBias = false;
  std::vector<double> biasMu, biasSigma, biasScale;
  int32_t sampled = -1;  // index among the sampled layers
  // local reparameterisation
  const Packed* meanP = nullptr;
  const Packed* varP = nullptr;
  std::vector<int32_t> meanBias, varBias;
  std::vector<double> meanMult, varMult;
  std::vector<uint8_t> square;
  double outScale = 1, epsScale = 0;
  // the float32 combine: per-output multipliers of one example, the scales as floats
  std::vector<float> meanE, varE;
  float outScaleF = 1, epsScaleF = 0;
};

// Weights drawn by the plan: the packed layout of common.h, zero padded.
struct OwnedPack {
  Packed p;
  explicit OwnedPack(int32_t n, int32_t k) {
    p.n = n;
    p.k = k;
    p.nblocks = (n + 15) / 16;
    p.kgroups = (k + 3) / 4;
    p.kstride = std::max(16, (p.kgroups + 15) / 16 * 16);
    p.data = static_cast<uint8_t*>(std::aligned_alloc(64, (p.bytes() + 63) / 64 * 64));
    p.rowSums = static_cast<int32_t*>(std::calloc(static_cast<size_t>(p.nblocks) * 16, sizeof(int32_t)));
    p.zeroPoint = static_cast<int32_t*>(std::calloc(static_cast<size_t>(p.nblocks) * 16, sizeof(int32_t)));
    if (p.data) std::memset(p.data, 0, p.bytes());
  }
  bool ok() const { return p.data && p.rowSums && p.zeroPoint; }
  ~OwnedPack() {
    std::free(p.data);
    std::free(p.rowSums);
    std::free(p.zeroPoint);
  }
};

// A convolution with fixed weights prepared once for a tile size: the direct kernel's weight
// reorder and planning, which it does on every call otherwise.
struct PreparedConv {
  std::vector<const Packed*> packs;
  ConvDirectPrepared* p = nullptr;
  size_t bytes = 0;
  ~PreparedConv() { convDirectRelease(p); }
};

// The packs of a grouped convolution's groups, cut from its whole pack.
struct GroupSlices {
  std::vector<std::unique_ptr<OwnedPack>> owned;
  std::vector<const Packed*> ptrs;
};

// Rows [r0, r0 + dst.n) of pack w copied into dst (same k; dst's padding stays zero).
void copyRows(const Packed& w, int32_t r0, Packed& dst) {
  for (int32_t r = 0; r < dst.n; ++r) {
    const int32_t sr = r0 + r;
    const uint8_t* src = w.data + static_cast<size_t>(sr / 16) * w.blockBytes() + static_cast<size_t>(sr % 16) * 4;
    uint8_t* d = dst.data + static_cast<size_t>(r / 16) * dst.blockBytes() + static_cast<size_t>(r % 16) * 4;
    for (int32_t g = 0; g < w.kgroups; ++g) std::memcpy(d + static_cast<size_t>(g) * 64, src + static_cast<size_t>(g) * 64, 4);
    dst.rowSums[r] = w.rowSums[sr];
    dst.zeroPoint[r] = w.zeroPoint[sr];
  }
}

// (layer, pack, rows of the tile)
using PreparedKey = std::tuple<int32_t, const Packed*, int64_t>;

struct Plan {
  int64_t inputSize = 0, classes = 0;
  std::vector<int64_t> taskBytes, sharedBytes;  // per example
  std::vector<Step> steps;
  std::vector<Layer> layers;
  std::vector<int32_t> sampledLayers;
  Slot output;
  int64_t maxTaskBytes = 1;
  // arenas and drawn weights, kept across calls
  Scratch sharedArena;
  std::vector<size_t> sharedOffsets;
  std::vector<std::unique_ptr<OwnedPack>> packs;  // [chunk slot][sampled layer]
  // a drawn convolution prepared for the call's two tile sizes (same index as packs)
  std::vector<std::unique_ptr<PreparedConv>> drawnPrepared[2];
  std::vector<std::vector<int32_t>> biases;  // same index
  int32_t chunkSlots = 0;
  std::map<PreparedKey, std::unique_ptr<PreparedConv>> prepared;
  // grouped convolutions: the rows of each group of a whole pack as packs of their own (fixed
  // weights sliced at creation; drawn ones refreshed after each draw, the map's entries made
  // before any task runs)
  std::map<const Packed*, GroupSlices> groups;
  size_t preparedBytes = 0;
  // whether tasks may stack several samples' rows (no weights depend on the sample), and the
  // shared slots that per-sample layer or add steps read (copied once per stacked sample then)
  bool stackable = false;
  Scratch logitsArena;  // a reducing call's logits
  std::vector<int32_t> replicaOf;  // per shared slot: its replica's index, or -1
  int32_t replicas = 0;
};

// The words of the Philox stream (key) from word `first`: as core's philoxFill / bernoulliFill.
struct WordStream {
  uint32_t k0, k1;
  uint64_t block = ~0ull;
  uint32_t w[4];
  uint32_t at(uint64_t word) {
    if ((word >> 2) != block) {
      block = word >> 2;
      philoxBlock(k0, k1, block, w);
    }
    return w[word & 3];
  }
};

void qnormalWords(uint32_t k0, uint32_t k1, uint64_t word0, int8_t* out, size_t count) {
  if (vectorRng()) qnormalAvx512(k0, k1, word0, out, count);
  else qnormalScalar(k0, k1, word0, out, count);
}

inline uint64_t ceil4(uint64_t v) { return (v + 3) / 4; }

// One call's constants.
struct Call {
  // the float input: float64 or float32 values (float32 widened exactly to float64)
  const double* x;
  const float* x32;
  int64_t B, L;
  const uint32_t* keys;
  const double* scalars;
  float* out;
  int64_t tileRows, lastRows;  // rows of a batch tile, and of the last one
  bool fuseGemv = false;  // see fusedGemv
  int64_t stack = 1;  // samples a task stacks (runPlan)
  std::vector<size_t> taskOffsets;
  std::vector<size_t> replicaOffsets;  // in the task arena, per replica
  size_t taskArenaBytes;
  std::atomic<bool> failed{false};
};

// One task: sample l (chunk slot s), rows [b0, b0 + rows); or, stacked (ns > 1), samples
// [l, l + ns) one after the other, each all B rows (b0 = 0, rows = ns B). Randomness is drawn per
// sample segment of rows / ns rows, at that sample's stream positions.
struct Task {
  Plan& p;
  Call& c;
  int64_t l, s, b0, rows;
  uint8_t* arena;
  int64_t ns = 1;
  int64_t seg() const { return rows / ns; }
  // A slot's rows: shared slots of stacked tasks read through their replica (ns copies).
  uint8_t* ptr(const Slot& slot) const {
    if (slot.shared) {
      if (ns > 1) {
        const int32_t r = p.replicaOf[static_cast<size_t>(slot.index)];
        if (r >= 0) return arena + c.replicaOffsets[static_cast<size_t>(r)];
      }
      return sharedRows(slot);
    }
    return arena + c.taskOffsets[static_cast<size_t>(slot.index)];
  }
  // A shared slot's own rows [b0, b0 + seg()) (what every sample segment reads).
  uint8_t* sharedRows(const Slot& slot) const {
    return static_cast<uint8_t*>(p.sharedArena.p) + p.sharedOffsets[static_cast<size_t>(slot.index)] +
           static_cast<size_t>(b0 * p.sharedBytes[static_cast<size_t>(slot.index)]);
  }
  // Segment j of a value of `stride` bytes a row: a shared slot's rows are every segment's.
  const uint8_t* segment(const Slot& slot, int64_t j, int64_t stride) const {
    if (slot.shared) return sharedRows(slot);
    return ptr(slot) + static_cast<size_t>(j * seg() * stride);
  }
};

thread_local Scratch tArena;
thread_local std::vector<int8_t> tEps;
thread_local std::vector<double> tM1;

inline uint8_t clampU8(double q, double lo, double hi) {
  q = q < lo ? lo : q;
  q = q > hi ? hi : q;
  return static_cast<uint8_t>(static_cast<int32_t>(q));
}

// MC Dropout of `count` values from word `word0` of the mask stream through the layer's table.
void dropoutRows(const Layer& L, uint32_t k0, uint32_t k1, uint64_t word0, const uint8_t* a, size_t count, uint8_t* out) {
  WordStream ws{k0, k1};
  const uint8_t* t = L.table.data();
  for (size_t i = 0; i < count; ++i) {
    const uint32_t keep = static_cast<uint64_t>(ws.at(word0 + i)) >= L.threshold ? 1u : 0u;
    out[i] = t[(keep << 8) | a[i]];
  }
}

// Whether a layer step masks its own input (MC Dropout not already applied by a spread step).
bool masksInput(const Layer& L) { return L.dropout && !L.maskedBySpread; }

// Slot `in` (`size` values an example) masked by layer `li`'s MC Dropout into `scratch`: sample
// l's mask from word l ceil(B size / 4) 4 of the layer's mask stream, as the engine's dropoutU8.
const uint8_t* maskRows(const Task& t, int32_t li, const Slot& in, int64_t size, uint8_t* scratch) {
  const Layer& L = t.p.layers[static_cast<size_t>(li)];
  const uint32_t* key = t.c.keys + li * 8;
  const uint64_t per = static_cast<uint64_t>(t.c.B * size);
  const size_t count = static_cast<size_t>(t.seg() * size);
  for (int64_t j = 0; j < t.ns; ++j) {
    const uint64_t word0 = static_cast<uint64_t>(t.l + j) * ceil4(per) * 4 + static_cast<uint64_t>(t.b0 * size);
    dropoutRows(L, key[4], key[5], word0, t.segment(in, j, size), count, scratch + j * count);
  }
  return scratch;
}

// Rows of a strided 1x1 convolution's input reduced to the pixels it reads (Layer::subH), into a
// per-thread buffer (valid until the next call on this thread); other layers' input unchanged.
#if QBNN_X86
// Every other byte of each row: bytes [2 x0, 2 x0 + 64) of the row are 32 words, whose low bytes
// (vpmovwb) are the output pixels [x0, x0 + 32).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,bmi2"))) void subsampleRows2(const uint8_t* in, int64_t planes,
                                                                                  int64_t inH, int64_t inW, int64_t subH,
                                                                                  int64_t Ho, int64_t Wo, uint8_t* out) {
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t y = 0; y < Ho; ++y) {
      const uint8_t* src = in + (pl * inH + y * subH) * inW;
      uint8_t* dst = out + (pl * Ho + y) * Wo;
      for (int64_t x0 = 0; x0 < Wo; x0 += 32) {
        const int64_t n = std::min<int64_t>(32, Wo - x0), have = std::min<int64_t>(64, inW - 2 * x0);
        const __m512i v = _mm512_maskz_loadu_epi8(_bzhi_u64(~0ULL, static_cast<unsigned>(have)), src + 2 * x0);
        _mm256_mask_storeu_epi8(dst + x0, static_cast<__mmask32>(_bzhi_u32(~0u, static_cast<unsigned>(n))),
                                _mm512_cvtepi16_epi8(v));
      }
    }
}

// The same for 2 x 2 strides when the rows are at most 32 pixels, a power of two, and each plane
// has an even number of them: the input is then a run of rows whose even rows' even pixels are
// kept, 16 of every 64 bytes (one vpermb a 64-byte step; `bytes` a multiple of 64).
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void subsampleRuns2(const uint8_t* in, int64_t bytes, int64_t W,
                                                                         uint8_t* out) {
  alignas(64) uint8_t idx[64] = {};
  const int64_t half = W / 2;
  for (int64_t j = 0; j < 16; ++j) idx[j] = static_cast<uint8_t>((j / half) * 2 * W + (j % half) * 2);
  const __m512i pick = _mm512_load_si512(idx);
  for (int64_t i = 0; i < bytes; i += 64)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i / 4),
                     _mm512_castsi512_si128(_mm512_permutexvar_epi8(pick, _mm512_loadu_si512(in + i))));
}
#endif

const uint8_t* convInput(const Layer& L, const uint8_t* a, int64_t rows) {
  if (L.subH == 0) return a;
  thread_local Scratch buf;
  uint8_t* out = static_cast<uint8_t*>(buf.get(static_cast<size_t>(rows * L.C * L.H * L.W) + 64));
  if (out == nullptr) return nullptr;
  const int64_t planes = rows * L.C;
#if QBNN_X86
  const int64_t bytes = planes * L.inH * L.inW;
  if (L.subH == 2 && L.subW == 2 && L.inW <= 32 && (L.inW & (L.inW - 1)) == 0 && L.inH % 2 == 0 && bytes % 64 == 0 &&
      cpuFeatures().avx512vbmi) {
    subsampleRuns2(a, bytes, L.inW, out);
    return out;
  }
  if (L.subW == 2 && cpuFeatures().avx512vnni) {
    subsampleRows2(a, planes, L.inH, L.inW, L.subH, L.H, L.W, out);
    return out;
  }
#endif
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t y = 0; y < L.H; ++y) {
      const uint8_t* src = a + (pl * L.inH + y * L.subH) * L.inW;
      uint8_t* dst = out + (pl * L.H + y) * L.W;
      for (int64_t x = 0; x < L.W; ++x) dst[x] = src[x * L.subW];
    }
  return out;
}

// The layer's input of this task: the masked copy (in `scratch`) under MC Dropout.
const uint8_t* layerInput(const Task& t, const Layer& L, const Step& st, uint8_t* scratch) {
  if (!masksInput(L)) return t.ptr(st.in);
  return maskRows(t, st.layer, st.in, L.inSize, scratch);
}

// The direct kernel's arguments of layer L's convolution over `rows` examples (packs: one a group).
ConvDirectArgs directArgs(const Layer& L, const uint8_t* a, int64_t rows, int32_t za, const Packed* const* packs,
                          const Epilogue& e, void* out) {
  return ConvDirectArgs{a,   rows, L.C,  L.H,  L.W,  za,  packs, L.n,       L.kh,    L.kw,   L.sh,    L.sw,    L.ph,   L.pw,
                        L.dh, L.dw, L.G,  L.Ho, L.Wo, e.bias, e.outKind, e.mult, e.zo, e.relu, out, nullptr, nullptr,
                        L.pool2 && e.outKind == OUT_U8 ? 1 : 0};
}

// The packs of each group of a convolution whose whole pack is w.
std::vector<const Packed*> groupPacks(const Plan& p, const Layer& L, const Packed& w) {
  if (L.G == 1) return {&w};
  return p.groups.at(&w).ptrs;
}

// Makes (or refreshes, `w` drawn again) the group slices of pack w of layer L.
void sliceGroups(Plan& p, const Layer& L, const Packed& w) {
  if (L.G == 1) return;
  // found without changing the map during a call (the entries are made before any task runs)
  const auto it = p.groups.find(&w);
  GroupSlices& gs = it != p.groups.end() ? it->second : p.groups[&w];
  const int32_t og = static_cast<int32_t>(L.n / L.G);
  if (gs.owned.empty()) {
    for (int64_t g = 0; g < L.G; ++g) {
      gs.owned.emplace_back(new OwnedPack(og, L.k));
      if (!gs.owned.back()->ok()) throw std::bad_alloc();
      gs.ptrs.push_back(&gs.owned.back()->p);
    }
  }
  for (int64_t g = 0; g < L.G; ++g) copyRows(w, static_cast<int32_t>(g) * og, gs.owned[static_cast<size_t>(g)]->p);
}

// The fixed-weight GEMMs of the plan's steps: stored sets, and local reparameterisation's mean
// and variance (the same arguments stepLayer and stepLocalGemm pass).
int32_t layerZa(const Layer& L) { return L.dropout ? L.maskedZero : L.inZero; }
Epilogue setEpilogue(const Layer& L, const WeightSet& ws) {
  return Epilogue{L.f32 ? OUT_F32 : OUT_U8, ws.mult.data(), L.zo, L.relu, ws.bias.empty() ? nullptr : ws.bias.data()};
}
Epilogue drawnEpilogue(const Plan& p, const Layer& L, size_t idx) {
  return Epilogue{L.f32 ? OUT_F32 : OUT_U8, L.mult.data(), L.zo, L.relu, L.hasBias ? p.biases[idx].data() : nullptr};
}
Epilogue localEpilogue(const std::vector<int32_t>& bias) {
  return Epilogue{OUT_I32, nullptr, 0, false, bias.empty() ? nullptr : bias.data()};
}

constexpr size_t kPreparedBudget = size_t{64} << 20;  // bytes of reordered weights kept

void prepareConv(Plan& p, int32_t li, int64_t rows, const Packed& w, int32_t za, const Epilogue& e) {
  const PreparedKey key{li, &w, rows};
  if (p.prepared.count(key) || p.preparedBytes + w.bytes() > kPreparedBudget) return;
  std::unique_ptr<PreparedConv> pc(new PreparedConv());
  pc->packs = groupPacks(p, p.layers[static_cast<size_t>(li)], w);
  pc->p = convDirectPrepare(directArgs(p.layers[static_cast<size_t>(li)], nullptr, rows, za, pc->packs.data(), e, nullptr));
  if (pc->p == nullptr) return;
  pc->bytes = w.bytes();
  p.preparedBytes += pc->bytes;
  p.prepared.emplace(key, std::move(pc));
}

// Prepares the fixed-weight convolutions for this call's tile sizes (rows of a task; before any
// task runs, so tasks only read the map). Sizes may repeat or be 0.
void prepareConvs(Plan& p, std::initializer_list<int64_t> sizes) {
  if (activeIsa() != ISA_AVX512VNNI) return;
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const Layer& L = p.layers[i];
    if (!L.conv) continue;
    const int32_t li = static_cast<int32_t>(i);
    for (int64_t rows : sizes) {
      if (rows <= 0) continue;
      if (L.kind == W_SETS) {
        for (const WeightSet& ws : L.sets) prepareConv(p, li, rows, *ws.p, layerZa(L), setEpilogue(L, ws));
      } else if (L.kind == W_LOCAL) {
        prepareConv(p, li, rows, *L.meanP, L.inZero, localEpilogue(L.meanBias));
        prepareConv(p, li, rows, *L.varP, 0, localEpilogue(L.varBias));
      }
    }
  }
}

// A drawn convolution prepared right after its draw, for `rows` (null when the direct kernel
// cannot take it). The slot's previous sample, prepared for the same shape, keeps its geometry
// and plane maps: only the new weights are folded in.
// `inPlace`: the sampler wrote the weights into the slot's tap order (tapDraw said so): the slot
// is repacked without reading the packs' weight bytes (which were not written).
void drawnPrepare(const Plan& p, std::unique_ptr<PreparedConv>& slot, const Layer& L, const Packed& w, int64_t rows,
                  int32_t za, const Epilogue& e, bool inPlace) {
  const std::vector<const Packed*> packs = groupPacks(p, L, w);
  if (slot && slot->packs == packs &&
      convDirectRepack(slot->p, directArgs(L, nullptr, rows, za, slot->packs.data(), e, nullptr), inPlace))
    return;
  std::unique_ptr<PreparedConv> pc(new PreparedConv());
  pc->packs = packs;
  pc->p = convDirectPrepare(directArgs(L, nullptr, rows, za, pc->packs.data(), e, nullptr));
  slot.reset(pc->p ? pc.release() : nullptr);
}

// `pre`: the layer's prepared convolution if the caller has one, else looked up among the
// fixed-weight ones.
// `direct` false: the fused-pool layer's unpooled fallback (im2col + GEMM, then the pool step).
bool runLinearOrConv(const Plan& p, int32_t li, const uint8_t* a, int64_t rows, int32_t za, const Packed& w,
                     const Epilogue& e, void* out, const PreparedConv* pre = nullptr, bool direct = true) {
  const Layer& L = p.layers[static_cast<size_t>(li)];
  if (!L.conv) return runGemm(a, static_cast<size_t>(L.k), static_cast<int32_t>(rows), za, w, e, out, static_cast<size_t>(L.n));
  a = convInput(L, a, rows);
  if (a == nullptr) return false;
  if (!direct) pre = nullptr;
  else if (pre == nullptr && !p.prepared.empty()) {
    const auto it = p.prepared.find(PreparedKey{li, &w, rows});
    if (it != p.prepared.end()) pre = it->second.get();
  }
  if (direct && pre != nullptr && activeIsa() == ISA_AVX512VNNI &&
      convDirectAvx512Prepared(directArgs(L, a, rows, za, pre->packs.data(), e, out), *pre->p))
    return true;
  ConvCall cc;
  cc.x = a;
  cc.B = rows, cc.C = L.C, cc.H = L.H, cc.W = L.W, cc.O = L.n, cc.Cg = L.C, cc.kh = L.kh, cc.kw = L.kw;
  cc.sh = L.sh, cc.sw = L.sw, cc.ph = L.ph, cc.pw = L.pw, cc.dh = L.dh, cc.dw = L.dw, cc.G = L.G;
  cc.Cg = L.C / L.G;
  cc.Ho = L.Ho, cc.Wo = L.Wo, cc.K = L.k, cc.Og = L.n / L.G, cc.HW = L.Ho * L.Wo;
  cc.za = za;
  cc.packs = groupPacks(p, L, w);
  cc.e = e;
  return runConv(cc, out, nullptr, nullptr);
}

// Batch 1 samples a non-radial Gaussian linear layer's weights in its step, dotting each row with
// the input as it is drawn (sampleRowsDotAvx512) instead of packing it for a GEMM: the draw then
// makes only its bias. Not when the draw of a chunk of few samples is split over threads (a
// step runs on one thread).
bool fusedGemv(const Call& c, const Layer& L) {
  return c.fuseGemv && !L.conv && L.kind == W_GAUSSIAN && !L.radial;
}

// The sampler's arguments for sample l (chunk slot s) of layer li, with its m1 (radial: scaled).
SampleCtx sampleContext(Plan& p, const Call& c, int64_t l, int64_t s, int32_t li, const double* m1) {
  const Layer& L = p.layers[static_cast<size_t>(li)];
  const size_t idx = static_cast<size_t>(s) * p.sampledLayers.size() + static_cast<size_t>(L.sampled);
  const uint32_t* key = c.keys + li * 8;
  const size_t nk = static_cast<size_t>(L.n) * static_cast<size_t>(L.k);
  const uint64_t position = static_cast<uint64_t>(l) * ceil4(nk);
  SampleCtx sx{L.mu.data(), L.sigma.data(), L.muZp.data(), L.sigZp.data(), L.noiseZp.data(), L.wZp.data(), m1,
               L.m2.data(), L.m3.data(), L.n, L.k, L.wqmin, L.wqmax, key[0], key[1], position, &p.packs[idx]->p};
  sx.muBits = L.muBits;
  sx.sigmaBits = L.sigmaBits;
  sx.muBytes = L.mu.size();
  sx.sigmaBytes = L.sigma.size();
  return sx;
}

// The layer of a batch of one whose weights are drawn here, row by row, each dotted with the
// input at once (see fusedGemv); the bias was drawn with the chunk's samples.
bool stepFusedGemv(const Task& t, int32_t li, const uint8_t* a, void* out) {
  const Layer& L = t.p.layers[static_cast<size_t>(li)];
  const size_t idx = static_cast<size_t>(t.s) * t.p.sampledLayers.size() + static_cast<size_t>(L.sampled);
  const SampleCtx sx = sampleContext(t.p, t.c, t.l, t.s, li, L.m1.data());
  thread_local Scratch dotBuf;
  int32_t* dots = static_cast<int32_t*>(dotBuf.get(static_cast<size_t>(L.n) * sizeof(int32_t)));
  return dots && sampleRowsDotAvx512(sx, a, 0, L.n, dots) &&
         gemvEpilogue(a, layerZa(L), *sx.out, drawnEpilogue(t.p, L, idx), dots, out);
}

bool stepLayer(const Task& t, const Step& st) {
  const Layer& L = t.p.layers[static_cast<size_t>(st.layer)];
  const uint8_t* a = layerInput(t, L, st, masksInput(L) ? t.ptr(st.scratch) : nullptr);
  const int32_t za = layerZa(L);
  const Packed* w;
  Epilogue e;
  const PreparedConv* pre = nullptr;
  if (L.kind == W_SETS) {
    const WeightSet& ws = L.sets[L.cycle ? static_cast<size_t>(t.l) % L.sets.size() : 0];
    w = ws.p;
    e = setEpilogue(L, ws);
  } else {
    const size_t idx = static_cast<size_t>(t.s) * t.p.sampledLayers.size() + static_cast<size_t>(L.sampled);
    w = &t.p.packs[idx]->p;
    e = drawnEpilogue(t.p, L, idx);
    if (L.conv) pre = t.p.drawnPrepared[t.rows == t.c.tileRows ? 0 : 1][idx].get();
  }
  uint8_t* out = t.ptr(st.out);
  // the low-bit clamp min(v, qmax) is monotone too: it commutes with the max pool
  auto clampLowBit = [&](uint8_t* v, int64_t perExample) {
    if (L.f32 || L.qmax == 255) return;
    const size_t count = static_cast<size_t>(t.rows * perExample);
    const uint8_t qm = static_cast<uint8_t>(L.qmax);
    for (size_t i = 0; i < count; ++i) v[i] = v[i] > qm ? qm : v[i];
  };
  if (st.fusedPool && activeIsa() == ISA_AVX512VNNI) {
    // the prepared direct kernel (a drawn convolution's, else a fixed one's) pools in its epilogue
    if (pre == nullptr) {
      const auto it = t.p.prepared.find(PreparedKey{st.layer, w, t.rows});
      if (it != t.p.prepared.end()) pre = it->second.get();
    }
    uint8_t* pooled = t.ptr(st.pooled);
    uint8_t* dst = st.poolViaOut ? out : pooled;
    const uint8_t* ca = pre != nullptr ? convInput(L, a, t.rows) : nullptr;
    if (ca != nullptr && convDirectAvx512Prepared(directArgs(L, ca, t.rows, za, pre->packs.data(), e, dst), *pre->p)) {
      clampLowBit(dst, st.pooledSize);
      if (st.poolViaOut) std::memcpy(pooled, dst, static_cast<size_t>(t.rows * st.pooledSize));
      return true;
    }
  }
  if (L.kind == W_GAUSSIAN && fusedGemv(t.c, L)) {
    if (!stepFusedGemv(t, st.layer, a, out)) return false;
  } else if (!runLinearOrConv(t.p, st.layer, a, t.rows, za, *w, e, out, pre, !st.fusedPool)) {
    return false;
  }
  clampLowBit(out, L.outSize);
  if (st.fusedPool)
    poolPlanesU8(out, t.rows * L.n, L.Ho, L.Wo, 0, st.pool, t.ptr(st.pooled));
  return true;
}

bool stepLocalGemm(const Task& t, const Step& st) {
  const Layer& L = t.p.layers[static_cast<size_t>(st.layer)];
  uint8_t* scratch = t.ptr(st.scratch);
  const size_t count = static_cast<size_t>(t.rows * L.inSize);
  // with MC Dropout the masked input fills the scratch's first half, its squares the second
  const uint8_t* a = layerInput(t, L, st, scratch);
  uint8_t* x2 = masksInput(L) ? scratch + count : scratch;
  const uint8_t* sq = L.square.data();
  for (size_t i = 0; i < count; ++i) x2[i] = sq[a[i]];
  // the integer engine runs both GEMMs on the input's grid (zero point 0 for the squares)
  return runLinearOrConv(t.p, st.layer, a, t.rows, L.inZero, *L.meanP, localEpilogue(L.meanBias), t.ptr(st.mean)) &&
         runLinearOrConv(t.p, st.layer, x2, t.rows, 0, *L.varP, localEpilogue(L.varBias), t.ptr(st.variance));
}

// The float32 combine of local reparameterisation (qat's engine/local.ts), each step one
// float32 operation rounded to nearest even, on `count` outputs whose per-output multipliers are
// mm / vm: y = f32(mu) mm + sqrt(max(f32(va) vm, +0)) (eps es); f32 output y, else
// clamp(rne(clamp(y / scale, -1024, 1024)) + zo, lo, hi). Returns how many it wrote.
struct Combine {
  const int32_t* mu;
  const int32_t* va;
  const int8_t* eps;
  const float* mm;
  const float* vm;
  float es, scale;
  bool f32;
  int32_t zo, lo, hi;
  void* out;
};

size_t combineScalar(const Combine& c, size_t from, size_t count) {
  for (size_t i = from; i < count; ++i) {
    const float mean = static_cast<float>(c.mu[i]) * c.mm[i];
    const float v = static_cast<float>(c.va[i]) * c.vm[i];
    const float sd = std::sqrt(v > 0.0f ? v : 0.0f);
    const float e = static_cast<float>(c.eps[i]) * c.es;
    const float prod = sd * e;
    const float y = mean + prod;
    if (c.f32) {
      static_cast<float*>(c.out)[i] = y;
      continue;
    }
    float q = y / c.scale;
    q = q > 1024.0f ? 1024.0f : q < -1024.0f ? -1024.0f : q;
    int32_t r = static_cast<int32_t>(std::nearbyint(q)) + c.zo;
    r = r < c.lo ? c.lo : r > c.hi ? c.hi : r;
    static_cast<uint8_t*>(c.out)[i] = static_cast<uint8_t>(r);
  }
  return count;
}

#if QBNN_X86
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) size_t combineAvx512(const Combine& c, size_t count) {
  const __m512 es = _mm512_set1_ps(c.es), scale = _mm512_set1_ps(c.scale), zero = _mm512_setzero_ps();
  const __m512 hiF = _mm512_set1_ps(1024.0f), loF = _mm512_set1_ps(-1024.0f);
  const __m512i zo = _mm512_set1_epi32(c.zo), lo = _mm512_set1_epi32(c.lo), hi = _mm512_set1_epi32(c.hi);
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512 mean = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(c.mu + i)), _mm512_loadu_ps(c.mm + i));
    // max(v, +0) returns its second operand for -0: +0, as the scalar form
    const __m512 v = _mm512_max_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(c.va + i)), _mm512_loadu_ps(c.vm + i)), zero);
    const __m512 e = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.eps + i)))), es);
    const __m512 y = _mm512_add_ps(mean, _mm512_mul_ps(_mm512_sqrt_ps(v), e));
    if (c.f32) {
      _mm512_storeu_ps(static_cast<float*>(c.out) + i, y);
      continue;
    }
    const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(y, scale), loF), hiF);
    __m512i r = _mm512_add_epi32(_mm512_cvt_roundps_epi32(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zo);
    r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(c.out) + i), _mm512_cvtepi32_epi8(r));
  }
  return i;
}
#endif

void stepLocalCombine(const Task& t, const Step& st) {
  const Layer& L = t.p.layers[static_cast<size_t>(st.layer)];
  const size_t count = static_cast<size_t>(t.rows * L.outSize);
  const uint64_t per = static_cast<uint64_t>(t.c.B * L.outSize);
  const uint32_t* key = t.c.keys + st.layer * 8;
  if (tEps.size() < count) tEps.resize(count);
  const size_t segCount = static_cast<size_t>(t.seg() * L.outSize);
  for (int64_t j = 0; j < t.ns; ++j)
    qnormalWords(key[6], key[7], static_cast<uint64_t>(t.l + j) * ceil4(per) * 4 + static_cast<uint64_t>(t.b0 * L.outSize),
                 tEps.data() + j * segCount, segCount);
  const size_t outSize = static_cast<size_t>(L.outSize);
  const size_t esz = L.f32 ? 4 : 1;
  uint8_t* out = t.ptr(st.out);
  // a shared mean and variance (the first random layer's) are every sample segment's rows
  const int64_t muRows = st.mean.shared ? t.seg() : t.rows;
  const int32_t* mu = reinterpret_cast<const int32_t*>(st.mean.shared ? t.sharedRows(st.mean) : t.ptr(st.mean));
  const int32_t* va =
      reinterpret_cast<const int32_t*>(st.variance.shared ? t.sharedRows(st.variance) : t.ptr(st.variance));
  for (int64_t r = 0; r < t.rows; ++r) {
    const size_t o = static_cast<size_t>(r) * outSize;
    const size_t m = static_cast<size_t>(r % muRows) * outSize;
    const Combine c{mu + m, va + m, tEps.data() + o, L.meanE.data(), L.varE.data(), L.epsScaleF, L.outScaleF,
                    L.f32, L.zo, L.relu ? L.zo : 0, L.qmax, out + o * esz};
    size_t done = 0;
#if QBNN_X86
    if (cpuFeatures().avx512vnni) done = combineAvx512(c, outSize);
#endif
    combineScalar(c, done, outSize);
  }
}

// A constant of the float32 residual add that is 0 or a normal float of magnitude in [2^-100, 2^100]:
// then no operation of the float32 form meets a denormal or an overflow, so MXCSR cannot matter.
bool addConstant(double m) { return m == 0 || (std::fabs(m) >= 0x1p-100 && std::fabs(m) <= 0x1p100); }

// clamp(roundHalfEven(v) + z, lo, hi) of 8 doubles to 8 bytes (roundscale to nearest even is
// roundHalfEven for every finite double; the clamp runs in double as clampU8 does).
#if QBNN_X86
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) inline void storeRequant8(__m512d v, __m512d z, __m512d lo,
                                                                                       __m512d hi, uint8_t* out) {
  __m512d q = _mm512_add_pd(_mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
  q = _mm512_min_pd(_mm512_max_pd(q, lo), hi);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm256_cvtepi32_epi8(_mm512_cvtpd_epi32(q)));
}

// The residual add of 8 values in float64 (as the scalar loop below).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) inline void addRequant8(const Step& st, const uint8_t* a,
                                                                                      const uint8_t* b, uint8_t* out) {
  const __m512d ma = _mm512_set1_pd(st.ma), mb = _mm512_set1_pd(st.mb), z = _mm512_set1_pd(st.z);
  const __m512d lo = _mm512_set1_pd(st.lo), hi = _mm512_set1_pd(st.hi);
  const __m256i va = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a))),
                                      _mm256_set1_epi32(st.za));
  const __m256i vb = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))),
                                      _mm256_set1_epi32(st.zb));
  const __m512d v = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(va), ma), _mm512_mul_pd(_mm512_cvtepi32_pd(vb), mb));
  storeRequant8(v, z, lo, hi, out);
}

// Blocks of 64 values of the add in float32 from i; returns where it stopped. Checked: a block
// with a lane within `margin` of a rounding half is redone in float64 (Exact: none, see
// Step::addExact).
template <bool Checked>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) size_t addBlocksF32(const Step& st, const uint8_t* a,
                                                                                  const uint8_t* b, uint8_t* out,
                                                                                  size_t count, float marginF) {
  constexpr int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512 ma = _mm512_set1_ps(static_cast<float>(st.ma)), mb = _mm512_set1_ps(static_cast<float>(st.mb));
  const __m512 zs = _mm512_set1_ps(static_cast<float>(st.z - st.ma * st.za - st.mb * st.zb));
  const __m512i lo = _mm512_set1_epi8(static_cast<char>(st.lo)), hi = _mm512_set1_epi8(static_cast<char>(st.hi));
  const __m512 margin = _mm512_set1_ps(marginF);
  // after the packs, 128-bit lane j holds 4 values of each of q0..q3's lane j: dword 4 k + j of
  // the result is dword 4 j + k of the packed bytes
  const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  size_t i = 0;
  for (; i + 64 <= count; i += 64) {
    __m512 f[4];
    for (int k = 0; k < 4; ++k) {
      const __m512 va = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16 * k))));
      const __m512 vb = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16 * k))));
      f[k] = _mm512_fmadd_round_ps(va, ma, _mm512_fmadd_round_ps(vb, mb, zs, rn), rn);
    }
    if constexpr (Checked) {
      // max(|f - rhe(f)|) over the 64 lanes
      const __m512 d01 = _mm512_range_ps(_mm512_reduce_ps(f[0], 0x08), _mm512_reduce_ps(f[1], 0x08), 0x0B);
      const __m512 d23 = _mm512_range_ps(_mm512_reduce_ps(f[2], 0x08), _mm512_reduce_ps(f[3], 0x08), 0x0B);
      if (_mm512_cmp_ps_mask(_mm512_range_ps(d01, d23, 0x0B), margin, _CMP_GE_OQ) != 0) {
        for (int k = 0; k < 64; k += 8) addRequant8(st, a + i + k, b + i + k, out + i + k);
        continue;
      }
    }
    const __m512i p01 = _mm512_packs_epi32(_mm512_cvt_roundps_epi32(f[0], rn), _mm512_cvt_roundps_epi32(f[1], rn));
    const __m512i p23 = _mm512_packs_epi32(_mm512_cvt_roundps_epi32(f[2], rn), _mm512_cvt_roundps_epi32(f[3], rn));
    const __m512i q = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(p01, p23));
    _mm512_storeu_si512(out + i, _mm512_min_epu8(_mm512_max_epu8(q, lo), hi));
  }
  return i;
}

// The residual add of `count` values; returns how many (64 at a time in float32 where that is
// exact, else 8 at a time in float64). Float32: f = fma(a, ma32, fma(b, mb32, zs)) on the bytes a,
// b themselves, with the zero points folded into zs = fl32(z - ma za - mb zb). When the add is
// addExact (every byte pair checked), f rounds to the float64 formula's integer after the clamp
// for any input. Otherwise: every magnitude in f is at most S = 255 (|ma| + |mb|) + |z|, so f is
// within 6 S 2^-24 < e = 2^-21 S of the float64 sum + z (ma32, mb32 normal floats): where no lane
// lies within e of a rounding half, f rounds to the integer the float64 sum does (|f| < 2^20: no
// int32 overflow); vreduceps / vrangeps track the lanes' distance to their rounded value, and a
// block of 64 with one too close to a half is redone in float64. The clamp then runs on those
// integers, as the scalar loop's: saturating packs to bytes (order kept), max lo, min hi.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) size_t addAvx512(const Step& st, const uint8_t* a,
                                                                               const uint8_t* b, uint8_t* out,
                                                                               size_t count) {
  const double e = 0x1p-21 * (255 * (std::fabs(st.ma) + std::fabs(st.mb)) + std::abs(st.z));
  size_t i = 0;
  if (st.addExact) i = addBlocksF32<false>(st, a, b, out, count, 0);
  else if (e <= 0.125 && addConstant(st.ma) && addConstant(st.mb))
    i = addBlocksF32<true>(st, a, b, out, count, static_cast<float>(0.5 - 2 * e));
  for (; i + 8 <= count; i += 8) addRequant8(st, a + i, b + i, out + i);
  return i;
}

// The global average pool of `planes` planes of hw values (zero point zp), 8 planes at a time;
// returns how many. A plane's sum of a - zp is exact in int64 and as a double (|s| < 2^53); the
// division, the rounding to nearest even and the clamp are the scalar loop's float64 operations,
// 8 lanes at once (same IEEE results).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) int64_t gapAvx512(const uint8_t* a, int64_t planes,
                                                                                int64_t hw, int32_t zp, uint8_t* out) {
  const __m512d dhw = _mm512_set1_pd(static_cast<double>(hw)), z = _mm512_set1_pd(zp);
  const __m512d lo = _mm512_setzero_pd(), hi = _mm512_set1_pd(255);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i bias = _mm512_set1_epi64(hw * zp);
  const __mmask64 tail = hw % 64 ? (~__mmask64{0}) >> (64 - hw % 64) : 0;
  const int64_t full = hw - hw % 64;
  int64_t pl = 0;
  for (; pl + 8 <= planes; pl += 8) {
    alignas(64) int64_t sums[8];
    for (int j = 0; j < 8; ++j) {
      const uint8_t* row = a + (pl + j) * hw;
      __m512i acc = zero;
      for (int64_t i = 0; i < full; i += 64) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_loadu_si512(row + i), zero));
      if (tail) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(tail, row + full), zero));
      sums[j] = _mm512_reduce_add_epi64(acc);
    }
    const __m512i s = _mm512_sub_epi64(_mm512_load_si512(sums), bias);
    storeRequant8(_mm512_div_pd(_mm512_cvtepi64_pd(s), dhw), z, lo, hi, out + pl);
  }
  return pl;
}

// The input quantisation of `count` values, 8 at a time; returns how many.
template <typename T>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) size_t quantizeAvx512(const Step& st, const T* x,
                                                                                    uint8_t* out, size_t count) {
  const __m512d scale = _mm512_set1_pd(st.scale), z = _mm512_set1_pd(st.zeroPoint);
  const __m512d lo = _mm512_setzero_pd(), hi = _mm512_set1_pd(st.qmax);
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m512d v;
    if constexpr (sizeof(T) == 4) v = _mm512_cvtps_pd(_mm256_loadu_ps(reinterpret_cast<const float*>(x + i)));
    else v = _mm512_loadu_pd(reinterpret_cast<const double*>(x + i));
    storeRequant8(_mm512_div_pd(v, scale), z, lo, hi, out + i);
  }
  return i;
}
#endif

// The input quantisation: clamp(roundHalfEven(x / scale) + zeroPoint, 0, qmax) in float64.
template <typename T>
void quantizeRows(const Step& st, const T* x, uint8_t* out, size_t count) {
  const double zp = st.zeroPoint, qm = st.qmax;
  size_t i = 0;
#if QBNN_X86
  if (cpuFeatures().avx512vnni) i = quantizeAvx512(st, x, out, count);
#endif
  for (; i < count; ++i) out[i] = clampU8(roundHalfEven(static_cast<double>(x[i]) / st.scale) + zp, 0, qm);
}

bool runStep(const Task& t, const Step& st) {
  const Plan& p = t.p;
  switch (st.op) {
    case S_QUANTIZE: {
      uint8_t* out = t.ptr(st.out);
      const size_t count = static_cast<size_t>(t.rows * p.inputSize);
      if (t.c.x32) quantizeRows(st, t.c.x32 + t.b0 * p.inputSize, out, count);
      else quantizeRows(st, t.c.x + t.b0 * p.inputSize, out, count);
      return true;
    }
    case S_LAYER:
      return stepLayer(t, st);
    case S_LOCAL_GEMM:
      return stepLocalGemm(t, st);
    case S_LOCAL_COMBINE:
      stepLocalCombine(t, st);
      return true;
    case S_RELU: {
      const uint8_t* a = t.ptr(st.in);
      uint8_t* out = t.ptr(st.out);
      const uint8_t z = static_cast<uint8_t>(st.zeroPoint);
      const size_t count = static_cast<size_t>(t.rows * st.size);
      for (size_t i = 0; i < count; ++i) out[i] = a[i] < z ? z : a[i];
      return true;
    }
    case S_SPREAD: {
      // each input pixel at (y sh + bh, x sw + bw) of a plane filled with the zero point; the
      // input first masked by its layer's MC Dropout when the step says so
      const uint8_t* a = st.layer >= 0 ? maskRows(t, st.layer, st.in, st.channels * st.h * st.w, t.ptr(st.scratch))
                                       : t.ptr(st.in);
      uint8_t* out = t.ptr(st.out);
      std::memset(out, st.zeroPoint, static_cast<size_t>(t.rows * st.channels * st.hs * st.ws));
      for (int64_t pl = 0; pl < t.rows * st.channels; ++pl) {
        for (int64_t iy = 0; iy < st.h; ++iy) {
          const int64_t y = iy * st.sh + st.bh;
          if (y < 0 || y >= st.hs) continue;
          for (int64_t ix = 0; ix < st.w; ++ix) {
            const int64_t xo = ix * st.sw + st.bw;
            if (xo >= 0 && xo < st.ws) out[(pl * st.hs + y) * st.ws + xo] = a[(pl * st.h + iy) * st.w + ix];
          }
        }
      }
      return true;
    }
    case S_POOL:
      poolPlanesU8(t.ptr(st.in), t.rows * st.channels, st.h, st.w, st.zeroPoint, st.pool, t.ptr(st.out));
      return true;
    case S_GAP: {
      const uint8_t* a = t.ptr(st.in);
      uint8_t* out = t.ptr(st.out);
      const int64_t planes = t.rows * st.channels;
      int64_t pl = 0;
#if QBNN_X86
      if (cpuFeatures().avx512vnni) pl = gapAvx512(a, planes, st.hw, st.zeroPoint, out);
#endif
      for (; pl < planes; ++pl) {
        int64_t s = 0;
        for (int64_t i = 0; i < st.hw; ++i) s += a[pl * st.hw + i] - st.zeroPoint;
        out[pl] = clampU8(roundHalfEven(static_cast<double>(s) / static_cast<double>(st.hw)) + st.zeroPoint, 0, 255);
      }
      return true;
    }
    case S_ADD: {
      const uint8_t* a = t.ptr(st.a);
      const uint8_t* b = t.ptr(st.b);
      uint8_t* out = t.ptr(st.out);
      const size_t count = static_cast<size_t>(t.rows * st.size);
      size_t i = 0;
#if QBNN_X86
      if (cpuFeatures().avx512vnni) i = addAvx512(st, a, b, out, count);
#endif
      for (; i < count; ++i) {
        const double v = static_cast<double>(a[i] - st.za) * st.ma + static_cast<double>(b[i] - st.zb) * st.mb;
        out[i] = clampU8(roundHalfEven(v) + st.z, st.lo, st.hi);
      }
      return true;
    }
  }
  return true;
}

// Whether the draw of chunk slot idx of layer L writes its weights straight into the tap order
// of the slot's prepared direct convolutions (the previous sample's, same call shape), and
// where: 1 or 2 orders (tile rows, last tile's rows), 0 for the packed layout (the first draw
// of a slot, a shape the orders do not cover, stacked tasks, which run the packs). The same
// answer in the draw and in prepareDrawn (nothing it reads changes in between).
int tapDraw(const Plan& p, const Call& c, const Layer& L, size_t idx, TapOrder orders[2]) {
  if (!L.conv || L.G != 1 || c.stack != 1 || activeIsa() != ISA_AVX512VNNI || !vectorRng() ||
      !cpuFeatures().avx512vbmi)
    return 0;
  const Packed* w = &p.packs[idx]->p;
  const Epilogue e = drawnEpilogue(p, L, idx);
  const int count = c.lastRows != c.tileRows ? 2 : 1;
  for (int k = 0; k < count; ++k) {
    const PreparedConv* pc = p.drawnPrepared[k][idx].get();
    if (pc == nullptr || pc->packs.size() != 1 || pc->packs[0] != w ||
        !convDirectTapOrder(pc->p, directArgs(L, nullptr, k ? c.lastRows : c.tileRows, layerZa(L), pc->packs.data(), e, nullptr),
                            orders[k]) ||
        orders[k].taps > 16)
      return 0;
  }
  return count;
}

// Sample l of a sampled layer into chunk slot s: the fused sampler (radial: m1 scaled by the
// sample's direction factor), and the int32 bias.
// Rows [r0, r1) of the sample (the bias with the first rows).
bool drawWeights(Plan& p, const Call& c, int64_t l, int64_t s, int32_t li, int32_t r0, int32_t r1) {
  const Layer& L = p.layers[static_cast<size_t>(li)];
  const size_t idx = static_cast<size_t>(s) * p.sampledLayers.size() + static_cast<size_t>(L.sampled);
  const uint32_t* key = c.keys + li * 8;
  const double* sc = c.scalars + (static_cast<size_t>(li) * static_cast<size_t>(c.L) + static_cast<size_t>(l)) * 2;
  const size_t nk = static_cast<size_t>(L.n) * static_cast<size_t>(L.k);
  const uint64_t position = static_cast<uint64_t>(l) * ceil4(nk);
  const double* m1 = L.m1.data();
  if (L.radial) {
    // f = r / (sqrt(sum eps^2) S_eps) over the layer's eps (the radial form's scale)
    if (tEps.size() < nk) tEps.resize(nk);
    qnormalWords(key[0], key[1], position * 4, tEps.data(), nk);
    int64_t ss = 0;
    for (size_t i = 0; i < nk; ++i) ss += static_cast<int64_t>(tEps[i]) * tEps[i];
    const double f = ss > 0 ? sc[0] / (std::sqrt(static_cast<double>(ss)) * L.epsScale) : 1e-12;
    tM1.resize(static_cast<size_t>(L.n));
    for (int32_t i = 0; i < L.n; ++i) tM1[static_cast<size_t>(i)] = L.m1[static_cast<size_t>(i)] * f;
    m1 = tM1.data();
  }
  const SampleCtx sx = sampleContext(p, c, l, s, li, m1);
  TapOrder orders[2];
  if (const int count = tapDraw(p, c, L, idx, orders)) {
    if (!sampleRowsTapsAvx512(sx, r0, r1, orders, count)) return false;
  } else if (!fusedGemv(c, L)) {
    if (vectorRng()) sampleRowsAvx512(sx, r0, r1);
    else sampleRowsScalar(sx, r0, r1);
  }
  if (!L.hasBias || r0 != 0) return true;
  const size_t n = static_cast<size_t>(L.n);
  if (tEps.size() < n) tEps.resize(n);
  qnormalWords(key[2], key[3], static_cast<uint64_t>(l) * ceil4(n) * 4, tEps.data(), n);
  double cb = L.epsScale;
  if (L.radial) {
    int64_t ss = 0;
    for (size_t i = 0; i < n; ++i) ss += static_cast<int64_t>(tEps[i]) * tEps[i];
    cb = ss > 0 ? sc[1] / std::sqrt(static_cast<double>(ss)) : 0;
  }
  std::vector<int32_t>& bias = p.biases[idx];
  for (size_t i = 0; i < n; ++i) {
    const double b = L.biasMu[i] + L.biasSigma[i] * (static_cast<double>(tEps[i]) * cb);
    double v = roundHalfEven(b / L.biasScale[i]);
    v = v > 2147483647.0 ? 2147483647.0 : v < -2147483647.0 ? -2147483647.0 : v;
    bias[i] = static_cast<int32_t>(v);
  }
  return true;
}

// Rows a task of a layer's draw samples: when a chunk of few samples is drawn by several threads,
// blocks of 16 rows of at least ~64K weights, so a big layer's draw spreads over them (a radial
// layer whole: its scale needs every eps of the layer); otherwise whole layers (fewer sampler
// calls; many samples already balance the threads). Every row is drawn from its own stream
// position whatever the split: results do not depend on it.
int32_t drawRowsPerTask(const Layer& L, bool split) {
  if (L.radial || !split) return L.n;
  const int64_t blocks = ((int64_t{1} << 16) + 16 * int64_t{L.k} - 1) / (16 * int64_t{L.k});
  return static_cast<int32_t>(std::min<int64_t>(L.n, 16 * blocks));
}

// A drawn convolution's weights prepared for the call's tile sizes, so that every batch tile of
// the sample runs without reordering them again.
void prepareDrawn(Plan& p, const Call& c, int64_t s, int32_t li) {
  const Layer& L = p.layers[static_cast<size_t>(li)];
  const size_t idx = static_cast<size_t>(s) * p.sampledLayers.size() + static_cast<size_t>(L.sampled);
  if (L.conv) sliceGroups(p, L, p.packs[idx]->p);
  if (!L.conv || activeIsa() != ISA_AVX512VNNI) {
    for (int k = 0; k < 2; ++k) p.drawnPrepared[k][idx].reset();
    return;
  }
  const Epilogue e = drawnEpilogue(p, L, idx);
  TapOrder orders[2];
  const bool inPlace = tapDraw(p, c, L, idx, orders) > 0;
  drawnPrepare(p, p.drawnPrepared[0][idx], L, p.packs[idx]->p, c.tileRows, layerZa(L), e, inPlace);
  if (c.lastRows != c.tileRows)
    drawnPrepare(p, p.drawnPrepared[1][idx], L, p.packs[idx]->p, c.lastRows, layerZa(L), e, inPlace);
  else p.drawnPrepared[1][idx].reset();
}

// ---------- parsing

bool sameSlot(const Slot& a, const Slot& b) { return a.index >= 0 && a.shared == b.shared && a.index == b.index; }

// Whether the value in `slot` is read by step `from` or a later one before a step overwrites it
// (slots are reused along the steps), or is the plan's output.
bool readLater(const Plan& p, size_t from, const Slot& slot) {
  for (size_t j = from; j < p.steps.size(); ++j) {
    const Step& o = p.steps[j];
    const bool local = o.op == S_LOCAL_COMBINE;
    for (const Slot* r : {&o.in, &o.a, &o.b, local ? &o.mean : nullptr, local ? &o.variance : nullptr})
      if (r != nullptr && sameSlot(*r, slot)) return true;
    const bool gemm = o.op == S_LOCAL_GEMM;
    for (const Slot* w : {&o.out, &o.scratch, gemm ? &o.mean : nullptr, gemm ? &o.variance : nullptr})
      if (w != nullptr && sameSlot(*w, slot)) return false;
  }
  return sameSlot(p.output, slot);
}

// Folds each 2x2 stride-2 max pool (no padding) that alone reads a u8 convolution's output into
// that convolution's step: the direct kernel then pools its int32 sums and requantises a quarter
// of the outputs (exact: see ConvDirectArgs::pool2). The convolution's own slot stays for the
// fallback (im2col + GEMM, then this pool).
void fusePools(Plan& p) {
  std::vector<int> uses(p.layers.size(), 0);
  for (const Step& st : p.steps)
    if (st.layer >= 0) ++uses[static_cast<size_t>(st.layer)];
  for (size_t i = 0; i + 1 < p.steps.size(); ++i) {
    Step& st = p.steps[i];
    const Step& pool = p.steps[i + 1];
    if (st.op != S_LAYER || pool.op != S_POOL || st.shared != pool.shared || !sameSlot(pool.in, st.out)) continue;
    Layer& L = p.layers[static_cast<size_t>(st.layer)];
    const PoolGeometry& g = pool.pool;
    if (!L.conv || L.f32 || L.kind == W_LOCAL || L.pool2 || uses[static_cast<size_t>(st.layer)] != 1 || g.kind != 0 ||
        g.kh != 2 || g.kw != 2 || g.sh != 2 || g.sw != 2 || g.ph != 0 || g.pw != 0 || pool.channels != L.n ||
        pool.h != L.Ho || pool.w != L.Wo || L.Ho < 2 || L.Wo < 2)
      continue;
    if (readLater(p, i + 2, st.out)) continue;
    st.fusedPool = true;
    st.pool = g;
    st.pooled = pool.out;
    st.pooledSize = L.n * (L.Ho / 2) * (L.Wo / 2);
    st.poolViaOut = sameSlot(pool.out, st.in) || sameSlot(pool.out, st.scratch);
    L.pool2 = true;
    p.steps.erase(p.steps.begin() + static_cast<std::ptrdiff_t>(i) + 1);
  }
}

Slot readSlot(Napi::Env env, const Napi::Object& step, const char* name, const Plan& p, int64_t needBytes) {
  Napi::Object o = obj(env, field(step, name), name);
  Slot s;
  s.shared = flag(o, "shared");
  const std::vector<int64_t>& sizes = s.shared ? p.sharedBytes : p.taskBytes;
  s.index = static_cast<int32_t>(integer(env, o, "index", 0, static_cast<double>(sizes.size()) - 1));
  need(env, sizes[static_cast<size_t>(s.index)] >= needBytes,
       std::string("slot ") + name + " is smaller than the values it holds");
  return s;
}

void readWeights(Napi::Env env, const Napi::Object& w, Layer& L, Plan& p) {
  const std::string kind = field(w, "kind").ToString().Utf8Value();
  const size_t n = static_cast<size_t>(L.n), nk = n * static_cast<size_t>(L.k);
  auto packOf = [&](const Napi::Value& v, const char* name) {
    if (!v.IsObject()) fail(env, std::string(name) + " must be native packed weights");
    const Packed& pk = packedFromHandle(env, v.As<Napi::Object>().Get("handle"), name);
    need(env, pk.n == L.n && pk.k == L.k, std::string(name) + " is not packed [n, k]");
    return &pk;
  };
  auto optI32 = [&](const Napi::Value& v, const char* name) {
    return v.IsUndefined() || v.IsNull() ? std::vector<int32_t>() : array<int32_t>(env, v, napi_int32_array, name, n);
  };
  if (kind == "sets") {
    L.kind = W_SETS;
    L.cycle = flag(w, "cycle");
    Napi::Value sv = field(w, "sets");
    need(env, sv.IsArray(), "sets must be an array");
    Napi::Array sets = sv.As<Napi::Array>();
    need(env, sets.Length() >= 1 && sets.Length() <= (1u << 20), "sets must hold 1 to 2^20 weight sets");
    for (uint32_t i = 0; i < sets.Length(); ++i) {
      Napi::Object s = obj(env, sets.Get(i), "sets[i]");
      WeightSet ws;
      ws.p = packOf(s.Get("packed"), "sets[i].packed");
      ws.mult = finiteF64(env, s.Get("mult"), "sets[i].mult", n);
      ws.bias = optI32(s.Get("bias"), "sets[i].bias");
      L.sets.push_back(std::move(ws));
    }
  } else if (kind == "gaussian") {
    L.kind = W_GAUSSIAN;
    Napi::Object a = obj(env, field(w, "args"), "args");
    L.muBits = a.Has("muBits") ? static_cast<int32_t>(integer(env, a, "muBits", 2, 8)) : 8;
    L.sigmaBits = a.Has("sigmaBits") ? static_cast<int32_t>(integer(env, a, "sigmaBits", 2, 8)) : 8;
    const auto packedLength = [nk](int32_t b) { return (nk * static_cast<size_t>(b) + 7) / 8; };
    L.mu = L.muBits < 8 ? array<int8_t>(env, a.Get("mu"), napi_uint8_array, "mu", packedLength(L.muBits))
                        : array<int8_t>(env, a.Get("mu"), napi_int8_array, "mu", nk);
    L.sigma = array<uint8_t>(env, a.Get("sigma"), napi_uint8_array, "sigma",
                             L.sigmaBits < 8 ? packedLength(L.sigmaBits) : nk);
    L.muZp = array<int32_t>(env, a.Get("muZeroPoint"), napi_int32_array, "muZeroPoint", n);
    L.sigZp = array<int32_t>(env, a.Get("sigmaZeroPoint"), napi_int32_array, "sigmaZeroPoint", n);
    L.noiseZp = array<int32_t>(env, a.Get("noiseZeroPoint"), napi_int32_array, "noiseZeroPoint", n);
    L.wZp = array<int32_t>(env, a.Get("weightZeroPoint"), napi_int32_array, "weightZeroPoint", n);
    L.m1 = finiteF64(env, a.Get("m1"), "m1", n);
    L.m2 = finiteF64(env, a.Get("m2"), "m2", n);
    L.m3 = finiteF64(env, a.Get("m3"), "m3", n);
    const int64_t bits = integer(env, a, "bits", 2, 8);
    L.wqmin = -(1 << (bits - 1));
    L.wqmax = (1 << (bits - 1)) - 1;
    for (size_t i = 0; i < n; ++i) {
      need(env, L.wZp[i] >= L.wqmin && L.wZp[i] <= L.wqmax && L.noiseZp[i] >= L.wqmin && L.noiseZp[i] <= L.wqmax,
           "noise/weight zero points must be in the signed range of bits");
      need(env, std::abs(L.muZp[i]) <= (1 << 16) && std::abs(L.sigZp[i]) <= (1 << 16), "zero point out of range");
    }
    L.mult = finiteF64(env, field(w, "mult"), "mult", n);
    L.radial = field(w, "direction").ToString().Utf8Value() == "radial";
    L.epsScale = num(env, w, "epsScale");
    Napi::Value bv = field(w, "bias");
    L.hasBias = bv.IsObject();
    if (L.hasBias) {
      Napi::Object b = bv.As<Napi::Object>();
      L.biasMu = finiteF64(env, b.Get("mu"), "bias.mu", n);
      L.biasSigma = finiteF64(env, b.Get("sigma"), "bias.sigma", n);
      L.biasScale = finiteF64(env, b.Get("scale"), "bias.scale", n);
    }
    L.sampled = static_cast<int32_t>(p.sampledLayers.size());
    p.sampledLayers.push_back(static_cast<int32_t>(p.layers.size()));
  } else if (kind == "local") {
    L.kind = W_LOCAL;
    L.meanP = packOf(field(w, "mean"), "mean");
    L.varP = packOf(field(w, "variance"), "variance");
    L.meanBias = optI32(field(w, "meanBias"), "meanBias");
    L.varBias = optI32(field(w, "varianceBias"), "varianceBias");
    // float32 values: an extreme scale overflows to infinity there, as in the engine's combine
    // (its logits are then an ERR_NAN error, as the engine's)
    L.meanMult = notNaNF64(env, field(w, "meanMult"), "meanMult", n);
    L.varMult = notNaNF64(env, field(w, "varMult"), "varMult", n);
    L.square = array<uint8_t>(env, field(w, "square"), napi_uint8_array, "square", 256);
    L.outScale = num(env, w, "outScale");
    L.epsScale = num(env, w, "epsScale");
    need(env, L.outScale > 0, "outScale must be positive");
    L.outScaleF = static_cast<float>(L.outScale);
    L.epsScaleF = static_cast<float>(L.epsScale);
    need(env, static_cast<double>(L.outScaleF) == L.outScale && static_cast<double>(L.epsScaleF) == L.epsScale,
         "outScale and epsScale must be float32 values");
    need(env, L.outSize % L.n == 0, "local outputs must be whole channels");
    const size_t inner = static_cast<size_t>(L.outSize / L.n);
    for (size_t i = 0; i < static_cast<size_t>(L.outSize); ++i) {
      const float m = static_cast<float>(L.meanMult[i / inner]), v = static_cast<float>(L.varMult[i / inner]);
      need(env, static_cast<double>(m) == L.meanMult[i / inner] && static_cast<double>(v) == L.varMult[i / inner],
           "meanMult and varMult must be float32 values");
      L.meanE.push_back(m);
      L.varE.push_back(v);
    }
  } else {
    fail(env, "unknown weights kind '" + kind + "'");
  }
}

Layer readLayer(Napi::Env env, const Napi::Object& o, Plan& p) {
  Layer L;
  L.conv = field(o, "op").ToString().Utf8Value() == "conv2d";
  L.n = static_cast<int32_t>(integer(env, o, "n", 1, 1 << 24));
  L.k = static_cast<int32_t>(integer(env, o, "k", 1, 33025));
  L.inSize = integer(env, o, "inSize", 1, 1 << 30);
  L.outSize = integer(env, o, "outSize", 1, 1 << 30);
  L.inZero = static_cast<int32_t>(integer(env, o, "inZeroPoint", 0, 255));
  if (L.conv) {
    Napi::Object c = obj(env, field(o, "conv"), "conv");
    auto ints = [&](const char* name, size_t len, std::vector<int64_t>& out) {
      Napi::Value v = c.Get(name);
      need(env, v.IsArray() && v.As<Napi::Array>().Length() == len, std::string("conv.") + name + " must have " + std::to_string(len) + " entries");
      Napi::Array arr = v.As<Napi::Array>();
      for (uint32_t i = 0; i < len; ++i) {
        Napi::Value e = arr.Get(i);
        need(env, e.IsNumber(), std::string("conv.") + name + " must hold integers");
        const double x = e.As<Napi::Number>().DoubleValue();
        need(env, x == std::floor(x) && x >= 0 && x <= (1 << 20), std::string("conv.") + name + " out of range");
        out.push_back(static_cast<int64_t>(x));
      }
    };
    std::vector<int64_t> in, ws, st, pd, dl;
    ints("input", 3, in);
    ints("wShape", 4, ws);
    ints("stride", 2, st);
    ints("padding", 2, pd);
    ints("dilation", 2, dl);
    L.C = in[0], L.H = in[1], L.W = in[2];
    L.kh = ws[2], L.kw = ws[3];
    L.sh = st[0], L.sw = st[1], L.ph = pd[0], L.pw = pd[1], L.dh = dl[0], L.dw = dl[1];
    Napi::Value gv = c.Get("groups");
    L.G = gv.IsUndefined() ? 1 : integer(env, c, "groups", 1, 1 << 20);
    need(env, L.C % L.G == 0 && L.n % L.G == 0, "conv groups must divide the input and output channels");
    need(env, ws[0] == L.n && ws[1] * L.G == L.C && ws[1] * L.kh * L.kw == L.k,
         "conv weights do not match n, k, the input and the groups");
    need(env, L.C >= 1 && L.H >= 1 && L.W >= 1 && L.kh >= 1 && L.kw >= 1 && L.sh >= 1 && L.sw >= 1 && L.dh >= 1 &&
                  L.dw >= 1,
         "conv shapes must be positive");
    const int64_t effH = L.dh * (L.kh - 1) + 1, effW = L.dw * (L.kw - 1) + 1;
    need(env, L.H + 2 * L.ph >= effH && L.W + 2 * L.pw >= effW, "kernel larger than the padded input");
    L.Ho = (L.H + 2 * L.ph - effH) / L.sh + 1;
    L.Wo = (L.W + 2 * L.pw - effW) / L.sw + 1;
    need(env, L.inSize == L.C * L.H * L.W && L.outSize == L.n * L.Ho * L.Wo, "conv sizes do not match its shapes");
    if (L.kh == 1 && L.kw == 1 && L.ph == 0 && L.pw == 0 && (L.sh > 1 || L.sw > 1)) {
      L.subH = L.sh, L.subW = L.sw, L.inH = L.H, L.inW = L.W;
      L.H = L.Ho, L.W = L.Wo, L.sh = 1, L.sw = 1;
    }
  } else {
    need(env, L.inSize == L.k && L.outSize == L.n, "linear sizes must be k and n");
  }
  Napi::Value dv = field(o, "dropout");
  if (dv.IsObject()) {
    Napi::Object d = dv.As<Napi::Object>();
    L.dropout = true;
    L.threshold = static_cast<uint64_t>(integer(env, d, "threshold", 0, 4294967296.0));
    L.table = array<uint8_t>(env, d.Get("table"), napi_uint8_array, "dropout.table", 512);
    L.maskedZero = static_cast<int32_t>(integer(env, d, "maskedZeroPoint", 0, 255));
  }
  Napi::Object out = obj(env, field(o, "output"), "output");
  L.f32 = field(out, "kind").ToString().Utf8Value() == "f32";
  if (!L.f32) {
    L.zo = static_cast<int32_t>(integer(env, out, "zeroPoint", 0, 255));
    L.relu = flag(out, "relu");
    L.qmax = static_cast<int32_t>(integer(env, out, "qmax", 1, 255));
  }
  readWeights(env, obj(env, field(o, "weights"), "weights"), L, p);
  if (L.conv && L.G > 1) {
    for (const WeightSet& ws : L.sets) sliceGroups(p, L, *ws.p);
    if (L.kind == W_LOCAL) {
      sliceGroups(p, L, *L.meanP);
      sliceGroups(p, L, *L.varP);
    }
  }
  return L;
}

std::vector<int64_t> readSizes(Napi::Env env, const Napi::Object& desc, const char* name) {
  Napi::Value v = desc.Get(name);
  need(env, v.IsArray(), std::string(name) + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    need(env, e.IsNumber(), std::string(name) + " must hold byte counts");
    const double d = e.As<Napi::Number>().DoubleValue();
    need(env, d == std::floor(d) && d >= 0 && d <= (1 << 30), std::string(name) + " must hold byte counts");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

// Whether the float32 form of the add (see Step::addExact) equals the float64 formula after the
// clamp for all 65,536 pairs of input bytes. Its constants must be 0 or normal floats of at least
// 2^-100 (then no operation meets a denormal and the vector path's MXCSR cannot matter).
bool addF32Exact(const Step& st) {
  const double zs64 = st.z - st.ma * st.za - st.mb * st.zb;
  if (!addConstant(st.ma) || !addConstant(st.mb) || !addConstant(zs64)) return false;
  const float ma = static_cast<float>(st.ma), mb = static_cast<float>(st.mb), zs = static_cast<float>(zs64);
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) {
      const float f = std::fmaf(static_cast<float>(a), ma, std::fmaf(static_cast<float>(b), mb, zs));
      if (!(std::fabs(f) < 1e9f)) return false;
      const double k32 = std::min<double>(std::max<double>(std::nearbyint(f), st.lo), st.hi);
      const double v = static_cast<double>(a - st.za) * st.ma + static_cast<double>(b - st.zb) * st.mb;
      const double k64 = std::min<double>(std::max<double>(roundHalfEven(v) + st.z, st.lo), st.hi);
      if (k32 != k64) return false;
    }
  return true;
}

Step readStep(Napi::Env env, const Napi::Object& o, bool shared, Plan& p) {
  Step st;
  st.shared = shared;
  const std::string op = field(o, "op").ToString().Utf8Value();
  auto layerOf = [&]() -> const Layer& {
    st.layer = static_cast<int32_t>(integer(env, o, "layer", 0, static_cast<double>(p.layers.size()) - 1));
    return p.layers[static_cast<size_t>(st.layer)];
  };
  if (op == "quantize") {
    st.op = S_QUANTIZE;
    st.out = readSlot(env, o, "out", p, p.inputSize);
    st.scale = num(env, o, "scale");
    st.zeroPoint = static_cast<int32_t>(integer(env, o, "zeroPoint", 0, 255));
    st.qmax = static_cast<int32_t>(integer(env, o, "qmax", 1, 255));
    need(env, st.scale > 0, "quantize scale must be positive");
  } else if (op == "layer" || op == "localGemm" || op == "localCombine") {
    const Layer& L = layerOf();
    const int64_t valueBytes = L.f32 ? 4 : 1;
    if (op == "layer") {
      need(env, L.kind != W_LOCAL, "a local layer runs as localGemm + localCombine");
      st.op = S_LAYER;
      st.in = readSlot(env, o, "in", p, L.inSize);
      st.out = readSlot(env, o, "out", p, L.outSize * valueBytes);
      if (masksInput(L)) st.scratch = readSlot(env, o, "scratch", p, L.inSize);
    } else if (op == "localGemm") {
      need(env, L.kind == W_LOCAL, "localGemm needs local weights");
      st.op = S_LOCAL_GEMM;
      st.in = readSlot(env, o, "in", p, L.inSize);
      st.mean = readSlot(env, o, "mean", p, L.outSize * 4);
      st.variance = readSlot(env, o, "variance", p, L.outSize * 4);
      st.scratch = readSlot(env, o, "scratch", p, L.inSize * (masksInput(L) ? 2 : 1));
    } else {
      need(env, L.kind == W_LOCAL, "localCombine needs local weights");
      need(env, L.outSize % L.n == 0, "local outputs must be whole channels");
      st.op = S_LOCAL_COMBINE;
      st.mean = readSlot(env, o, "mean", p, L.outSize * 4);
      st.variance = readSlot(env, o, "variance", p, L.outSize * 4);
      st.out = readSlot(env, o, "out", p, L.outSize * valueBytes);
    }
  } else if (op == "relu") {
    st.op = S_RELU;
    st.size = integer(env, o, "size", 1, 1 << 30);
    st.in = readSlot(env, o, "in", p, st.size);
    st.out = readSlot(env, o, "out", p, st.size);
    st.zeroPoint = static_cast<int32_t>(integer(env, o, "zeroPoint", 0, 255));
  } else if (op == "pool") {
    st.op = S_POOL;
    Napi::Value sv = o.Get("shape"), kv = o.Get("kernel"), tv = o.Get("stride"), pv = o.Get("padding");
    auto at = [&](const Napi::Value& v, uint32_t i, const char* name) -> int64_t {
      need(env, v.IsArray() && v.As<Napi::Array>().Length() > i, std::string("pool.") + name + " is too short");
      Napi::Value e = v.As<Napi::Array>().Get(i);
      need(env, e.IsNumber(), std::string("pool.") + name + " must hold integers");
      const double d = e.As<Napi::Number>().DoubleValue();
      need(env, d == std::floor(d) && d >= 0 && d <= (1 << 20), std::string("pool.") + name + " out of range");
      return static_cast<int64_t>(d);
    };
    st.channels = at(sv, 0, "shape"), st.h = at(sv, 1, "shape"), st.w = at(sv, 2, "shape");
    PoolGeometry& g = st.pool;
    g.kind = field(o, "kind").ToString().Utf8Value() == "avg" ? 1 : 0;
    g.kh = static_cast<int32_t>(at(kv, 0, "kernel")), g.kw = static_cast<int32_t>(at(kv, 1, "kernel"));
    g.sh = static_cast<int32_t>(at(tv, 0, "stride")), g.sw = static_cast<int32_t>(at(tv, 1, "stride"));
    g.ph = static_cast<int32_t>(at(pv, 0, "padding")), g.pw = static_cast<int32_t>(at(pv, 1, "padding"));
    need(env, st.channels >= 1 && st.h >= 1 && st.w >= 1 && g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1 &&
                  2 * g.ph <= g.kh && 2 * g.pw <= g.kw && st.h + 2 * g.ph >= g.kh && st.w + 2 * g.pw >= g.kw,
         "bad pool geometry");
    g.ho = (st.h + 2 * g.ph - g.kh) / g.sh + 1;
    g.wo = (st.w + 2 * g.pw - g.kw) / g.sw + 1;
    st.zeroPoint = static_cast<int32_t>(integer(env, o, "zeroPoint", 0, 255));
    st.in = readSlot(env, o, "in", p, st.channels * st.h * st.w);
    st.out = readSlot(env, o, "out", p, st.channels * g.ho * g.wo);
  } else if (op == "spread") {
    st.op = S_SPREAD;
    auto pair = [&](const char* name, double lo, int64_t& a, int64_t& b) {
      Napi::Value v = o.Get(name);
      need(env, v.IsArray() && v.As<Napi::Array>().Length() == 2, std::string("spread.") + name + " must have 2 entries");
      for (uint32_t i = 0; i < 2; ++i) {
        Napi::Value e = v.As<Napi::Array>().Get(i);
        need(env, e.IsNumber(), std::string("spread.") + name + " must hold integers");
        const double x = e.As<Napi::Number>().DoubleValue();
        need(env, x == std::floor(x) && x >= lo && x <= (1 << 20), std::string("spread.") + name + " out of range");
        (i == 0 ? a : b) = static_cast<int64_t>(x);
      }
    };
    Napi::Value sv = o.Get("shape");
    need(env, sv.IsArray() && sv.As<Napi::Array>().Length() == 3, "spread.shape must have 3 entries");
    int64_t c3[3];
    for (uint32_t i = 0; i < 3; ++i) {
      Napi::Value e = sv.As<Napi::Array>().Get(i);
      need(env, e.IsNumber(), "spread.shape must hold integers");
      const double x = e.As<Napi::Number>().DoubleValue();
      need(env, x == std::floor(x) && x >= 1 && x <= (1 << 20), "spread.shape out of range");
      c3[i] = static_cast<int64_t>(x);
    }
    st.channels = c3[0], st.h = c3[1], st.w = c3[2];
    pair("spread", 1, st.hs, st.ws);
    pair("stride", 1, st.sh, st.sw);
    pair("before", -(1 << 20), st.bh, st.bw);
    need(env, static_cast<double>(st.channels) * st.hs * st.ws <= (1 << 30), "spread output too large");
    st.zeroPoint = static_cast<int32_t>(integer(env, o, "zeroPoint", 0, 255));
    st.in = readSlot(env, o, "in", p, st.channels * st.h * st.w);
    st.out = readSlot(env, o, "out", p, st.channels * st.hs * st.ws);
    if (!field(o, "dropout").IsUndefined()) {
      st.layer = static_cast<int32_t>(integer(env, o, "dropout", 0, static_cast<double>(p.layers.size()) - 1));
      Layer& L = p.layers[static_cast<size_t>(st.layer)];
      need(env, L.dropout && L.conv && L.inSize == st.channels * st.hs * st.ws,
           "a spread step's dropout must name the MC Dropout convolution it feeds");
      L.maskedBySpread = true;
      st.scratch = readSlot(env, o, "scratch", p, st.channels * st.h * st.w);
    }
  } else if (op == "globalAvgPool") {
    st.op = S_GAP;
    st.channels = integer(env, o, "channels", 1, 1 << 30);
    st.hw = integer(env, o, "hw", 1, 1 << 30);
    st.zeroPoint = static_cast<int32_t>(integer(env, o, "zeroPoint", 0, 255));
    st.in = readSlot(env, o, "in", p, st.channels * st.hw);
    st.out = readSlot(env, o, "out", p, st.channels);
  } else if (op == "add") {
    st.op = S_ADD;
    st.size = integer(env, o, "size", 1, 1 << 30);
    st.a = readSlot(env, o, "a", p, st.size);
    st.b = readSlot(env, o, "b", p, st.size);
    st.out = readSlot(env, o, "out", p, st.size);
    st.za = static_cast<int32_t>(integer(env, o, "za", 0, 255));
    st.zb = static_cast<int32_t>(integer(env, o, "zb", 0, 255));
    st.z = static_cast<int32_t>(integer(env, o, "z", 0, 255));
    st.lo = static_cast<int32_t>(integer(env, o, "lo", 0, 255));
    st.hi = static_cast<int32_t>(integer(env, o, "hi", 0, 255));
    st.ma = num(env, o, "ma");
    st.mb = num(env, o, "mb");
    st.addExact = addF32Exact(st);
  } else {
    fail(env, "unknown step '" + op + "'");
  }
  // a shared step reads and writes shared slots only (it runs once for every sample); a
  // per-sample step writes task slots
  std::vector<const Slot*> writes, reads;
  if (st.op == S_LOCAL_GEMM) writes = {&st.mean, &st.variance, &st.scratch};
  else if (st.op == S_LAYER || st.op == S_SPREAD) writes = {&st.out, &st.scratch};
  else writes = {&st.out};
  if (st.op == S_LOCAL_COMBINE) reads = {&st.mean, &st.variance};
  else if (st.op == S_ADD) reads = {&st.a, &st.b};
  else reads = {&st.in};
  for (const Slot* s : writes) need(env, s->index < 0 || s->shared == shared, "a step must write slots of its kind");
  if (shared) {
    for (const Slot* s : reads) need(env, s->index < 0 || s->shared, "a shared step must read shared slots");
    const bool random = st.op == S_LOCAL_COMBINE ||
                        (st.op == S_LAYER && (p.layers[static_cast<size_t>(st.layer)].kind != W_SETS ||
                                              p.layers[static_cast<size_t>(st.layer)].cycle)) ||
                        ((st.op == S_LAYER || st.op == S_LOCAL_GEMM) && p.layers[static_cast<size_t>(st.layer)].dropout) ||
                        (st.op == S_SPREAD && st.layer >= 0);
    need(env, !random, "a random step cannot be shared");
  }
  return st;
}

Plan* readPlan(Napi::Env env, const Napi::Object& desc) {
  std::unique_ptr<Plan> p(new Plan());
  p->inputSize = integer(env, desc, "inputSize", 1, 1 << 30);
  p->classes = integer(env, desc, "classes", 1, 1 << 24);
  p->taskBytes = readSizes(env, desc, "taskSlots");
  p->sharedBytes = readSizes(env, desc, "sharedSlots");
  for (int64_t b : p->taskBytes) p->maxTaskBytes = std::max(p->maxTaskBytes, b);
  Napi::Value lv = desc.Get("layers"), sv = desc.Get("steps"), fv = desc.Get("sharedSteps");
  need(env, lv.IsArray() && sv.IsArray() && fv.IsArray(), "layers, steps and sharedSteps must be arrays");
  Napi::Array layers = lv.As<Napi::Array>(), steps = sv.As<Napi::Array>(), shared = fv.As<Napi::Array>();
  need(env, steps.Length() == shared.Length() && steps.Length() >= 1, "one sharedSteps entry per step");
  for (uint32_t i = 0; i < layers.Length(); ++i) p->layers.push_back(readLayer(env, obj(env, layers.Get(i), "layer"), *p));
  bool seenTask = false;
  for (uint32_t i = 0; i < steps.Length(); ++i) {
    const bool sh = shared.Get(i).ToBoolean().Value();
    p->steps.push_back(readStep(env, obj(env, steps.Get(i), "step"), sh, *p));
    if (!sh) seenTask = true;
  }
  need(env, seenTask, "the last layer must run per sample");
  p->output = readSlot(env, desc, "output", *p, p->classes * 4);
  need(env, !p->output.shared, "the output must be a task slot");
  fusePools(*p);
  const Step& last = p->steps.back();
  need(env, last.out.index == p->output.index && !last.out.shared &&
                (last.op == S_LAYER || last.op == S_LOCAL_COMBINE) &&
                p->layers[static_cast<size_t>(last.layer)].f32 &&
                p->layers[static_cast<size_t>(last.layer)].outSize == p->classes,
       "the last step must write the float logits to the output slot");
  p->sharedOffsets.assign(p->sharedBytes.size(), 0);
  // Stacking samples in a task needs weights that no sample draws (no sampled layer, no cycled
  // sets). Shared slots that a per-sample layer (without dropout) or add reads are replicated
  // per stacked sample; local combines and dropout read shared rows per sample segment.
  p->stackable = p->sampledLayers.empty();
  for (const Layer& L : p->layers) p->stackable = p->stackable && !(L.kind == W_SETS && L.cycle);
  p->replicaOf.assign(p->sharedBytes.size(), -1);
  for (const Step& st : p->steps) {
    if (st.shared || st.op == S_LOCAL_COMBINE || st.op == S_QUANTIZE) continue;
    const bool masked = ((st.op == S_LAYER || st.op == S_LOCAL_GEMM) && masksInput(p->layers[static_cast<size_t>(st.layer)])) ||
                        (st.op == S_SPREAD && st.layer >= 0);
    if (masked) continue;
    for (const Slot* r : {&st.in, &st.a, &st.b}) {
      if (r->index >= 0 && r->shared && p->replicaOf[static_cast<size_t>(r->index)] < 0)
        p->replicaOf[static_cast<size_t>(r->index)] = p->replicas++;
    }
  }
  return p.release();
}

// ---------- running

// Rows of a batch tile: activations of a tile stay within ~512 KiB per slot (L2), at most 64,
// and the tiles of B rows as even as they can be (one size, the last tile at most `tiles - 1`
// rows shorter), so that a prepared convolution serves every tile.
int64_t tileRowsFor(const Plan& p, int64_t B) {
  int64_t t = (int64_t{1} << 19) / std::max<int64_t>(p.maxTaskBytes, 1);
  t = std::max<int64_t>(1, std::min<int64_t>(t, 64));
  const int64_t tiles = (B + t - 1) / t;
  return (B + tiles - 1) / tiles;
}

constexpr size_t kSampleBudget = size_t{64} << 20;  // bytes of drawn weights held at once

void runPlan(Napi::Env env, Plan& p, Call& c) {
  const int64_t B = c.B, L = c.L;
  c.tileRows = tileRowsFor(p, B);
  const int64_t tiles = (B + c.tileRows - 1) / c.tileRows;
  c.lastRows = B - (tiles - 1) * c.tileRows;
  // samples a task stacks: whole batches of B rows while they fit a tile (small batches)
  const int64_t stack = p.stackable && L > 1 ? std::min(L, std::max<int64_t>(1, tileRowsFor(p, L * B) / B)) : 1;
  c.stack = stack;
  size_t off = 0;
  c.taskOffsets.clear();
  for (int64_t b : p.taskBytes) {
    c.taskOffsets.push_back(off);
    off += (static_cast<size_t>(b * c.tileRows * stack) + 63) / 64 * 64;
  }
  c.replicaOffsets.clear();
  if (stack > 1) {
    for (size_t i = 0; i < p.replicaOf.size(); ++i) {
      if (p.replicaOf[i] < 0) continue;
      c.replicaOffsets.resize(std::max<size_t>(c.replicaOffsets.size(), static_cast<size_t>(p.replicaOf[i]) + 1));
      c.replicaOffsets[static_cast<size_t>(p.replicaOf[i])] = off;
      off += (static_cast<size_t>(p.sharedBytes[i] * B * stack) + 63) / 64 * 64;
    }
  }
  c.taskArenaBytes = std::max<size_t>(off, 64);
  size_t soff = 0;
  for (size_t i = 0; i < p.sharedBytes.size(); ++i) {
    p.sharedOffsets[i] = soff;
    soff += (static_cast<size_t>(p.sharedBytes[i] * B) + 63) / 64 * 64;
  }
  if (!p.sharedArena.get(std::max<size_t>(soff, 64))) throw Napi::Error::New(env, "plan: out of memory");
  ThreadPool& pool = ThreadPool::instance();
  auto runSteps = [&](int64_t l, int64_t s, int64_t tile, bool shared, int64_t ns = 1) {
    uint8_t* arena = static_cast<uint8_t*>(tArena.get(c.taskArenaBytes));
    if (!arena) {
      c.failed = true;
      return;
    }
    const int64_t b0 = tile * c.tileRows;
    Task t{p, c, l, s, b0, ns > 1 ? ns * B : std::min(c.tileRows, B - b0), arena, ns};
    if (ns > 1) {
      for (size_t i = 0; i < p.replicaOf.size(); ++i) {
        if (p.replicaOf[i] < 0) continue;
        const Slot sl{true, static_cast<int32_t>(i)};
        const size_t bytes = static_cast<size_t>(p.sharedBytes[i] * B);
        uint8_t* dst = t.ptr(sl);
        for (int64_t j = 0; j < ns; ++j) std::memcpy(dst + j * bytes, t.sharedRows(sl), bytes);
      }
    }
    for (const Step& st : p.steps) {
      if (st.shared != shared) continue;
      if (!runStep(t, st)) {
        c.failed = true;
        return;
      }
    }
    if (shared) return;
    const float* logits = reinterpret_cast<const float*>(t.ptr(p.output));
    std::memcpy(c.out + (l * B + b0) * p.classes, logits, sizeof(float) * static_cast<size_t>(t.rows * p.classes));
  };
  bool anyShared = false;
  for (const Step& st : p.steps) anyShared = anyShared || st.shared;
  prepareConvs(p, {c.tileRows, c.lastRows, stack * B, (L % stack) * B});
  if (anyShared) pool.run(tiles, [&](int64_t t) { runSteps(0, 0, t, true); });
  // the drawn weights of a chunk of samples
  size_t perSample = 0;
  for (int32_t li : p.sampledLayers) {
    const Layer& ly = p.layers[static_cast<size_t>(li)];
    perSample += static_cast<size_t>((ly.n + 15) / 16 * 16) * static_cast<size_t>((ly.k + 63) / 64 * 64) + 1024;
  }
  const size_t nsl = p.sampledLayers.size();
  // One thread draws a sample and runs it before drawing the next: the sample's weights are then
  // still in the caches when its convolutions read them, and every sample reuses one slot's memory
  // (ResNet-18 L8 b32 0.98x, LeNet-5 L20 b32 0.976x the time of drawing 8 or 20 at once).
  // Several threads draw a chunk of samples at once (in parallel).
  const int64_t chunk =
      nsl == 0 ? L
      : pool.threads() == 1 && stack == 1
          ? 1
          : std::max<int64_t>(1, std::min<int64_t>(L, static_cast<int64_t>(kSampleBudget / std::max<size_t>(perSample, 1))));
  if (nsl > 0 && p.chunkSlots < chunk) {
    for (int64_t s = p.chunkSlots; s < chunk; ++s) {
      for (int32_t li : p.sampledLayers) {
        const Layer& ly = p.layers[static_cast<size_t>(li)];
        std::unique_ptr<OwnedPack> pk(new OwnedPack(ly.n, ly.k));
        if (!pk->ok()) throw Napi::Error::New(env, "plan: out of memory for sampled weights");
        p.packs.push_back(std::move(pk));
        if (ly.conv) sliceGroups(p, ly, p.packs.back()->p);
        p.biases.emplace_back(static_cast<size_t>(ly.n));
        for (auto& d : p.drawnPrepared) d.emplace_back();
      }
    }
    p.chunkSlots = static_cast<int32_t>(chunk);
  }
  // the draw of a sample: (layer, first row) parts
  const bool split = pool.threads() > 1 && chunk < 2 * pool.threads();
  c.fuseGemv = B == 1 && !split && vectorRng();
  std::vector<std::pair<int32_t, int32_t>> parts;
  for (int32_t li : p.sampledLayers) {
    const Layer& ly = p.layers[static_cast<size_t>(li)];
    for (int32_t r0 = 0; r0 < ly.n; r0 += fusedGemv(c, ly) ? ly.n : drawRowsPerTask(ly, split)) parts.emplace_back(li, r0);
  }
  const int64_t np = static_cast<int64_t>(parts.size());
  for (int64_t l0 = 0; l0 < L; l0 += chunk) {
    const int64_t g = std::min(chunk, L - l0);
    if (nsl > 0) {
      pool.run(g * np, [&](int64_t t) {
        const int64_t s = t / np;
        const auto [li, r0] = parts[static_cast<size_t>(t % np)];
        const Layer& ly = p.layers[static_cast<size_t>(li)];
        if (!drawWeights(p, c, l0 + s, s, li, r0, std::min(ly.n, r0 + drawRowsPerTask(ly, split)))) c.failed = true;
      });
      pool.run(g * static_cast<int64_t>(nsl), [&](int64_t t) {
        prepareDrawn(p, c, t / static_cast<int64_t>(nsl), p.sampledLayers[static_cast<size_t>(t % static_cast<int64_t>(nsl))]);
      });
    }
    if (stack > 1) {
      pool.run((g + stack - 1) / stack, [&](int64_t t) {
        const int64_t l = l0 + t * stack;
        runSteps(l, 0, 0, false, std::min(stack, l0 + g - l));
      });
    } else {
      pool.run(g * tiles, [&](int64_t t) { runSteps(l0 + t / tiles, t / tiles, t % tiles, false); });
    }
    if (c.failed) break;
  }
  if (c.failed) throw Napi::Error::New(env, "plan: out of memory in a kernel");
}

// ---------- the Monte Carlo predictive (core's kernels/softmax.ts: same constants, same
// operations in the same order, so the same bits)

struct ExpTables {
  static constexpr int kTerms = 15, kSplit = 1000;
  double invFactorial[kTerms];
  double invPow2[kSplit + 1];
  ExpTables() {
    invFactorial[0] = 1;
    for (int i = 1; i < kTerms; ++i) invFactorial[i] = invFactorial[i - 1] / i;
    invPow2[0] = 1;
    for (int i = 1; i <= kSplit; ++i) invPow2[i] = invPow2[i - 1] * 0.5;
  }
};

// exp(x) for x <= 0: x = k ln 2 + r, Taylor polynomial of exp(r), times 2^k.
double expNonPositive(double x) {
  static const ExpTables t;
  constexpr double kLn2Hi = 0.6931471803691238, kLn2Lo = 1.9082149292705877e-10;
  constexpr double kLog2e = 1.4426950408889634;  // Math.LOG2E
  if (x < -746) return 0;
  const double k = std::floor(x * kLog2e + 0.5);
  const double r = x - k * kLn2Hi - k * kLn2Lo;
  double p = t.invFactorial[ExpTables::kTerms - 1];
  for (int n = ExpTables::kTerms - 2; n >= 0; --n) p = p * r + t.invFactorial[n];
  const int ki = static_cast<int>(-k);
  return ki > ExpTables::kSplit ? p * t.invPow2[ki - ExpTables::kSplit] * t.invPow2[ExpTables::kSplit] : p * t.invPow2[ki];
}

// out[b, c] for b in [b0, b1): the mean over L samples of softmax(logits[l, b, :]), summed in
// float64 over l ascending, rounded to float32.
void meanSoftmaxRows(const float* logits, int64_t L, int64_t B, int64_t C, int64_t b0, int64_t b1, float* out) {
  std::vector<double> p(static_cast<size_t>(C)), e(static_cast<size_t>(C));
  for (int64_t b = b0; b < b1; ++b) {
    std::fill(p.begin(), p.end(), 0.0);
    for (int64_t l = 0; l < L; ++l) {
      const float* row = logits + (l * B + b) * C;
      double m = -INFINITY;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(row[c]));
      double s = 0;
      for (int64_t c = 0; c < C; ++c) {
        e[static_cast<size_t>(c)] = expNonPositive(static_cast<double>(row[c]) - m);
        s += e[static_cast<size_t>(c)];
      }
      for (int64_t c = 0; c < C; ++c) p[static_cast<size_t>(c)] += e[static_cast<size_t>(c)] / s / static_cast<double>(L);
    }
    for (int64_t c = 0; c < C; ++c) out[b * C + c] = static_cast<float>(p[static_cast<size_t>(c)]);
  }
}

// The index of the first value of x[0, n) that is not finite, n when every one is.
#if QBNN_X86
// 64 bytes at a time (vfpclass: NaN or infinity), then the block that has one, value by value.
template <typename T>
__attribute__((target("avx512f,avx512dq"))) size_t firstNonFiniteAvx512(const T* x, size_t n) {
  constexpr size_t kLanes = 64 / sizeof(T);
  constexpr int kNanInf = 0x01 | 0x08 | 0x10 | 0x80;  // QNaN, +inf, -inf, SNaN
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    if constexpr (sizeof(T) == 4) {
      if (_mm512_fpclass_ps_mask(_mm512_loadu_ps(reinterpret_cast<const float*>(x + i)), kNanInf) != 0) break;
    } else {
      if (_mm512_fpclass_pd_mask(_mm512_loadu_pd(reinterpret_cast<const double*>(x + i)), kNanInf) != 0) break;
    }
  }
  for (; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return n;
}
#endif
template <typename T>
size_t firstNonFinite(const T* x, size_t n) {
#if QBNN_X86
  if (cpuFeatures().avx512vnni) return firstNonFiniteAvx512(x, n);
#endif
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return n;
}

constexpr napi_type_tag kPlanTag = {0x7162626e506c616eULL, 0x6e61746976653031ULL};

Plan* unwrapPlan(Napi::Env env, const Napi::Value& v) {
  bool ok = false;
  if (!v.IsExternal() || napi_check_object_type_tag(env, v, &kPlanTag, &ok) != napi_ok || !ok)
    throw Napi::TypeError::New(env, "plan: not a native plan handle");
  Plan* p = v.As<Napi::External<Plan>>().Data();
  return p;
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "plan: desc must be an object");
  Plan* p = readPlan(env, info[0].As<Napi::Object>());
  auto ext = Napi::External<Plan>::New(env, p, [](Napi::Env, Plan* q) { delete q; });
  napi_type_tag_object(env, ext, &kPlanTag);
  return ext;
}

// run(plan, x, batch, samples, keys, scalars, out, meanSoftmax): -1, or the index of a value of
// x that is not finite (then nothing ran). With meanSoftmax, out receives the MC predictive
// [batch, classes] instead of the logits; a logit that is not finite returns -2 - its index
// (its value in out[0]).
Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8) throw Napi::TypeError::New(env, "plan.run needs 8 arguments");
  const bool reduce = info[7].ToBoolean().Value();
  Plan* p = unwrapPlan(env, info[0]);
  need(env, !p->steps.empty(), "the plan was disposed");
  auto typedArg = [&](size_t i, napi_typedarray_type type, const char* name) {
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
      throw Napi::TypeError::New(env, std::string("plan.run: ") + name + " has the wrong type");
    return info[i].As<Napi::TypedArray>();
  };
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(env, "plan.run: x has the wrong type");
  Napi::TypedArray x = info[1].As<Napi::TypedArray>();
  const bool x32 = x.TypedArrayType() == napi_float32_array;
  if (!x32 && x.TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, "plan.run: x must be a Float64Array or a Float32Array");
  if (!info[2].IsNumber() || !info[3].IsNumber()) throw Napi::TypeError::New(env, "plan.run: batch and samples must be numbers");
  const double bd = info[2].As<Napi::Number>().DoubleValue(), ld = info[3].As<Napi::Number>().DoubleValue();
  need(env, bd == std::floor(bd) && bd >= 1 && bd <= (1 << 24) && ld == std::floor(ld) && ld >= 1 && ld <= (1 << 24),
       "batch and samples must be integers in [1, 2^24]");
  Napi::TypedArray keys = typedArg(4, napi_uint32_array, "keys");
  Napi::TypedArray scalars = typedArg(5, napi_float64_array, "scalars");
  Napi::TypedArray out = typedArg(6, napi_float32_array, "out");
  const int64_t B = static_cast<int64_t>(bd), L = static_cast<int64_t>(ld);
  const size_t nl = p->layers.size();
  need(env, x.ElementLength() == static_cast<size_t>(B * p->inputSize), "x must hold batch * inputSize values");
  need(env, keys.ElementLength() == nl * 8, "keys must hold 8 words a layer");
  need(env, scalars.ElementLength() == nl * static_cast<size_t>(L) * 2, "scalars must hold 2 a layer and sample");
  need(env, out.ElementLength() == static_cast<size_t>((reduce ? 1 : L) * B * p->classes),
       reduce ? "out must hold batch * classes" : "out must hold samples * batch * classes");
  need(env, static_cast<double>(B) * static_cast<double>(p->maxTaskBytes) < 1e12, "batch too large");
  auto data = [](Napi::TypedArray& t) {
    return static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  };
  // a value that is not finite: its index, nothing computed (the caller names it)
  const size_t nx = x.ElementLength();
  const size_t bad = x32 ? firstNonFinite(reinterpret_cast<const float*>(data(x)), nx)
                         : firstNonFinite(reinterpret_cast<const double*>(data(x)), nx);
  if (bad < nx) return Napi::Number::New(env, static_cast<double>(bad));
  Call c;
  c.x = x32 ? nullptr : reinterpret_cast<const double*>(data(x));
  c.x32 = x32 ? reinterpret_cast<const float*>(data(x)) : nullptr;
  c.B = B;
  c.L = L;
  c.keys = reinterpret_cast<const uint32_t*>(data(keys));
  c.scalars = reinterpret_cast<const double*>(data(scalars));
  float* dst = reinterpret_cast<float*>(data(out));
  const size_t nlogits = static_cast<size_t>(L * B * p->classes);
  c.out = dst;
  if (reduce) {
    c.out = static_cast<float*>(p->logitsArena.get(nlogits * sizeof(float)));
    if (c.out == nullptr) throw Napi::Error::New(env, "plan: out of memory");
  }
  runPlan(env, *p, c);
  if (!reduce) return Napi::Number::New(env, -1);
  for (size_t i = 0; i < nlogits; ++i) {
    if (!std::isfinite(c.out[i])) {
      dst[0] = c.out[i];
      return Napi::Number::New(env, -2.0 - static_cast<double>(i));
    }
  }
  const int64_t rowsPerTask = 64, tasks = (B + rowsPerTask - 1) / rowsPerTask;
  const float* logits = c.out;
  const int64_t C = p->classes;
  ThreadPool::instance().run(tasks, [&](int64_t t) {
    meanSoftmaxRows(logits, L, B, C, t * rowsPerTask, std::min(B, (t + 1) * rowsPerTask), dst);
  });
  return Napi::Number::New(env, -1);
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "plan.dispose needs the plan");
  Plan* p = unwrapPlan(env, info[0]);
  // keep the object (the finalizer deletes it) but free what it holds
  p->steps.clear();
  p->layers.clear();
  p->packs.clear();
  p->biases.clear();
  p->chunkSlots = 0;
  p->prepared.clear();
  p->preparedBytes = 0;
  p->groups.clear();
  for (auto& d : p->drawnPrepared) d.clear();
  for (Scratch* a : {&p->sharedArena, &p->logitsArena}) {
    std::free(a->p);
    a->p = nullptr;
    a->cap = 0;
  }
  return env.Undefined();
}

}  // namespace

Napi::Object makePlanExports(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("create", Napi::Function::New(env, Create));
  o.Set("run", Napi::Function::New(env, Run));
  o.Set("dispose", Napi::Function::New(env, Dispose));
  return o;
}

}  // namespace qbnn
