// Node-API surface of the qbnn native kernels. Every entry point validates types, lengths and
// shapes before touching memory: a wrong argument is a thrown TypeError/RangeError.
#include <napi.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <atomic>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "driver.h"
#include "plan.h"
#include "fp32/binding.h"
#include "philox.h"
#include "pool.h"

namespace qbnn {
namespace {

constexpr int32_t kMaxK = 33025;  // MAX_GEMM_K of @qbnn/core
constexpr double kMaxElems = 1ULL << 40;


const char* isaName(int isa) {
  switch (isa) {
    case ISA_AMX: return "amx";
    case ISA_AMX_EMU: return "amx-emulated";
    case ISA_AVX512VNNI: return "avx512vnni";
    case ISA_AVXVNNI: return "avxvnni";
    case ISA_AVX2: return "avx2";
    default: return "scalar";
  }
}

bool isaAvailable(int isa) {
  const CpuFeatures& f = cpuFeatures();
  switch (isa) {
    case ISA_AMX: return f.amx;
    case ISA_AMX_EMU: return true;
    case ISA_AVX512VNNI: return f.avx512vnni;
    case ISA_AVXVNNI: return f.avxvnni;
    case ISA_AVX2: return f.avx2;
    default: return true;
  }
}

int bestIsa() {
  const int order[] = {ISA_AMX, ISA_AVX512VNNI, ISA_AVXVNNI, ISA_AVX2, ISA_SCALAR};
  for (int i : order)
    if (isaAvailable(i)) return i;
  return ISA_SCALAR;
}


// ---------- argument helpers

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void throwRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

template <typename T>
struct View {
  T* data = nullptr;
  size_t length = 0;
};

template <typename T>
View<T> typed(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type want, const char* name,
              bool optional = false) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) {
    if (optional) return {};
    throwType(env, std::string(name) + " is required");
  }
  if (!info[i].IsTypedArray()) throwType(env, std::string(name) + " must be a typed array");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value ab;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, info[i], &type, &length, &data, &ab, &offset) != napi_ok)
    throwType(env, std::string(name) + ": cannot read typed array");
  if (type != want) {
    const char* names[] = {"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
                           "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"};
    throwType(env, std::string(name) + " must be a " + names[want]);
  }
  if (length > 0 && data == nullptr) throwType(env, std::string(name) + " is detached");
  return {static_cast<T*>(data), length};
}

double number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) throwType(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int32_t integer(const Napi::CallbackInfo& info, size_t i, const char* name, double lo, double hi) {
  const double v = number(info, i, name);
  if (!(v == std::floor(v)) || v < lo || v > hi)
    throwRange(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(static_cast<int64_t>(lo)) +
                               ", " + std::to_string(static_cast<int64_t>(hi)) + "], got " + std::to_string(v));
  return static_cast<int32_t>(v);
}

uint32_t u32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  const double v = number(info, i, name);
  if (!(v == std::floor(v)) || v < 0 || v > 4294967295.0)
    throwRange(info.Env(), std::string(name) + " must be a uint32");
  return static_cast<uint32_t>(v);
}

uint64_t position(const Napi::CallbackInfo& info, size_t i) {
  const double v = number(info, i, "position");
  if (!(v == std::floor(v)) || v < 0 || v > 9007199254740991.0)
    throwRange(info.Env(), "position must be a non-negative safe integer");
  return static_cast<uint64_t>(v);
}

// ---------- packed weights handle

// Memory for packed weights: 64-byte aligned. From 64 KiB on (Linux) it is mapped directly and
// unmapped when freed, so disposing a pack returns its pages to the OS at once: through malloc,
// freed multi-hundred-kilobyte blocks interleaved with small live ones fragment the heap, and a
// synchronous loop that packs and disposes grew to gigabytes resident (issue 17, D19). From
// 1 MiB on the mapping is 2 MiB aligned and advised as transparent huge pages, so a fresh
// multi-megabyte pack costs a few page faults instead of hundreds and the GEMM streams it with
// fewer TLB misses. Mapped pages start zeroed.
constexpr size_t kMapFrom = 64u << 10;

size_t roundedBytes(size_t bytes) { return (bytes + 63) / 64 * 64; }

void* allocLarge(size_t bytes) {
  const size_t rounded = roundedBytes(bytes);
#if defined(__linux__)
  if (rounded >= kMapFrom) {
    constexpr size_t kHuge = 2u << 20;
    const bool huge = rounded >= (1u << 20);
    const size_t size = huge ? (rounded + kHuge - 1) / kHuge * kHuge : rounded;
    const size_t span = huge ? size + kHuge : size;
    void* m = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    if (!huge) return m;
    // keep the 2 MiB aligned part of the over-sized mapping, unmap the rest
    const uintptr_t base = reinterpret_cast<uintptr_t>(m);
    const uintptr_t aligned = (base + kHuge - 1) / kHuge * kHuge;
    if (aligned > base) munmap(m, aligned - base);
    const uintptr_t end = base + span, used = aligned + size;
    if (end > used) munmap(reinterpret_cast<void*>(used), end - used);
#if defined(MADV_HUGEPAGE)
    madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
#endif
    return reinterpret_cast<void*>(aligned);
  }
#endif
  return std::aligned_alloc(64, rounded);
}

// Frees what allocLarge(bytes) returned.
void freeLarge(void* p, size_t bytes) {
  if (p == nullptr) return;
  const size_t rounded = roundedBytes(bytes);
#if defined(__linux__)
  if (rounded >= kMapFrom) {
    constexpr size_t kHuge = 2u << 20;
    munmap(p, rounded >= (1u << 20) ? (rounded + kHuge - 1) / kHuge * kHuge : rounded);
    return;
  }
#endif
  std::free(p);
}

constexpr napi_type_tag kPackedTag = {0x7162626e5061636bULL, 0x6e61746976653031ULL};

struct PackedBox {
  Packed p;
  int64_t bytes = 0;
  void release() {
    freeLarge(p.data, p.bytes());
    std::free(p.rowSums);
    std::free(p.zeroPoint);
    p.data = nullptr;
    p.rowSums = nullptr;
    p.zeroPoint = nullptr;
  }
  ~PackedBox() { release(); }
};

PackedBox* allocPacked(Napi::Env env, int32_t n, int32_t k) {
  auto* box = new PackedBox();
  Packed& p = box->p;
  p.n = n;
  p.k = k;
  p.nblocks = (n + 15) / 16;
  p.kgroups = (k + 3) / 4;
  p.kstride = (p.kgroups + 15) / 16 * 16;
  if (p.kstride == 0) p.kstride = 16;
  const size_t bytes = p.bytes();
  if (bytes == 0) {
    delete box;
    throw Napi::Error::New(env, "empty packed weights");
  }
  p.data = static_cast<uint8_t*>(allocLarge(bytes));
  p.rowSums = static_cast<int32_t*>(std::calloc(static_cast<size_t>(p.nblocks) * 16, sizeof(int32_t)));
  p.zeroPoint = static_cast<int32_t*>(std::calloc(static_cast<size_t>(p.nblocks) * 16, sizeof(int32_t)));
  if (!p.data || !p.rowSums || !p.zeroPoint) {
    delete box;
    throw Napi::Error::New(env, "out of memory packing weights");
  }
  std::memset(p.data, 0, bytes);
  box->bytes = static_cast<int64_t>(bytes);
  return box;
}

Napi::Object wrapPacked(Napi::Env env, PackedBox* box) {
  auto ext = Napi::External<PackedBox>::New(env, box, [](Napi::Env e, PackedBox* b) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -b->bytes);
    delete b;
  });
  napi_type_tag_object(env, ext, &kPackedTag);
  Napi::MemoryManagement::AdjustExternalMemory(env, box->bytes);
  const int32_t n = box->p.n;
  auto rowSums = Napi::Int32Array::New(env, static_cast<size_t>(n));
  auto zp = Napi::Int32Array::New(env, static_cast<size_t>(n));
  std::memcpy(rowSums.Data(), box->p.rowSums, sizeof(int32_t) * static_cast<size_t>(n));
  std::memcpy(zp.Data(), box->p.zeroPoint, sizeof(int32_t) * static_cast<size_t>(n));
  auto obj = Napi::Object::New(env);
  obj.Set("handle", ext);
  obj.Set("rowSums", rowSums);
  obj.Set("zeroPoint", zp);
  return obj;
}

PackedBox* unwrapPacked(Napi::Env env, Napi::Value v, const char* name) {
  bool ok = false;
  if (!v.IsExternal() || napi_check_object_type_tag(env, v, &kPackedTag, &ok) != napi_ok || !ok)
    throwType(env, std::string(name) + " is not a native packed-weights handle");
  PackedBox* box = v.As<Napi::External<PackedBox>>().Data();
  if (box->p.data == nullptr) throw Napi::Error::New(env, std::string(name) + " was disposed");
  return box;
}

// ---------- GEMM driver

// Validates the epilogue arguments at info[i..i+4]: kind, mult, zo, relu, bias (bias first).
Epilogue readEpilogue(const Napi::CallbackInfo& info, size_t i, int32_t n) {
  Napi::Env env = info.Env();
  Epilogue e{};
  View<int32_t> bias = typed<int32_t>(info, i, napi_int32_array, "bias", true);
  if (bias.data && bias.length != static_cast<size_t>(n))
    throwRange(env, "bias length " + std::to_string(bias.length) + " != n = " + std::to_string(n));
  e.bias = bias.data;
  e.outKind = integer(info, i + 1, "output kind", 0, 2);
  View<double> mult = typed<double>(info, i + 2, napi_float64_array, "multipliers", e.outKind == OUT_I32);
  if (e.outKind != OUT_I32) {
    if (mult.length != static_cast<size_t>(n))
      throwRange(env, "multipliers length " + std::to_string(mult.length) + " != n = " + std::to_string(n));
    for (size_t j = 0; j < mult.length; ++j)
      if (!std::isfinite(mult.data[j])) throwRange(env, "multipliers must be finite");
  }
  e.mult = e.outKind == OUT_I32 ? nullptr : mult.data;
  e.zo = integer(info, i + 3, "output zero point", 0, 255);
  e.relu = i + 4 < info.Length() && info[i + 4].ToBoolean().Value();
  return e;
}

void* outPtr(const Napi::CallbackInfo& info, size_t i, int32_t kind, size_t count) {
  Napi::Env env = info.Env();
  if (kind == OUT_U8) {
    View<uint8_t> o = typed<uint8_t>(info, i, napi_uint8_array, "out (u8 output)");
    if (o.length != count) throwRange(env, "out length " + std::to_string(o.length) + " != " + std::to_string(count));
    return o.data;
  }
  if (kind == OUT_F32) {
    View<float> o = typed<float>(info, i, napi_float32_array, "out (f32 output)");
    if (o.length != count) throwRange(env, "out length " + std::to_string(o.length) + " != " + std::to_string(count));
    return o.data;
  }
  View<int32_t> o = typed<int32_t>(info, i, napi_int32_array, "out (i32 output)");
  if (o.length != count) throwRange(env, "out length " + std::to_string(o.length) + " != " + std::to_string(count));
  return o.data;
}

// ---------- exported functions

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpuFeatures();
  auto o = Napi::Object::New(env);
  o.Set("isa", isaName(activeIsa()));
  o.Set("best", isaName(bestIsa()));
  auto avail = Napi::Array::New(env);
  uint32_t j = 0;
  for (int isa : {ISA_AMX, ISA_AVX512VNNI, ISA_AVXVNNI, ISA_AVX2, ISA_SCALAR, ISA_AMX_EMU})
    if (isaAvailable(isa)) avail.Set(j++, isaName(isa));
  o.Set("available", avail);
  o.Set("amxHardware", f.amxHardware);
  o.Set("vbmi", f.avx512vbmi);
  o.Set("amxNote", f.amxNote);
  o.Set("threads", ThreadPool::instance().threads());
#if defined(__SANITIZE_ADDRESS__)
  o.Set("sanitized", true);
#else
  o.Set("sanitized", false);
#endif
#if QBNN_X86
  o.Set("arch", "x64");
#else
  o.Set("arch", "other");
#endif
  return o;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throwType(env, "isa must be a string");
  const std::string s = info[0].As<Napi::String>().Utf8Value();
  int want = -1;
  for (int isa : {ISA_SCALAR, ISA_AVX2, ISA_AVXVNNI, ISA_AVX512VNNI, ISA_AMX, ISA_AMX_EMU})
    if (s == isaName(isa)) want = isa;
  if (s == "best") want = bestIsa();
  if (want < 0) throwRange(env, "unknown isa '" + s + "'");
  if (!isaAvailable(want)) throwRange(env, "isa '" + s + "' is not available on this CPU");
  setActiveIsa(want);
  return Napi::String::New(env, isaName(want));
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  ThreadPool::instance().setThreads(integer(info, 0, "threads", 1, 256));
  return Napi::Number::New(info.Env(), ThreadPool::instance().threads());
}

Napi::Value SetQnormalTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View<uint32_t> t = typed<uint32_t>(info, 0, napi_uint32_array, "thresholds");
  if (t.length != 255) throwRange(env, "thresholds must have 255 entries");
  const char* why = "";
  if (!setQnormalTable(t.data, &why)) throwRange(env, why);
  return env.Undefined();
}

// An [n, k] integer tensor argument: one value a byte (`bits` 8: an Int8Array when signed, else a
// Uint8Array) or core's packInts bytes of `bits` < 8 (a Uint8Array of exactly
// ceil(n k bits / 8) bytes). `bitsAt` is the optional argument holding bits (default 8).
struct IntTensor {
  const uint8_t* data;
  size_t bytes;
  int32_t bits;
};
IntTensor intTensor(const Napi::CallbackInfo& info, size_t at, size_t bitsAt, const char* name, bool sign, size_t nk) {
  Napi::Env env = info.Env();
  const bool given = bitsAt < info.Length() && !info[bitsAt].IsUndefined() && !info[bitsAt].IsNull();
  const int32_t bits = given ? integer(info, bitsAt, "bits of a packed tensor", 2, 8) : 8;
  if (bits == 8) {
    if (sign) {
      View<int8_t> v = typed<int8_t>(info, at, napi_int8_array, name);
      if (v.length != nk) throwRange(env, std::string(name) + " length must be n * k");
      return {reinterpret_cast<const uint8_t*>(v.data), v.length, 8};
    }
    View<uint8_t> v = typed<uint8_t>(info, at, napi_uint8_array, name);
    if (v.length != nk) throwRange(env, std::string(name) + " length must be n * k");
    return {v.data, v.length, 8};
  }
  View<uint8_t> v = typed<uint8_t>(info, at, napi_uint8_array, name);
  if (v.length != (nk * static_cast<size_t>(bits) + 7) / 8)
    throwRange(env, std::string(name) + " must hold n * k packed values of its bits, ceil(n k bits / 8) bytes");
  return {v.data, v.length, bits};
}

Napi::Value Pack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t n = integer(info, 1, "n", 1, 1 << 24);
  const int32_t k = integer(info, 2, "k", 1, kMaxK);
  View<int32_t> zp = typed<int32_t>(info, 3, napi_int32_array, "zeroPoint");
  if (static_cast<double>(n) * k > kMaxElems) throwRange(env, "weights too large");
  const IntTensor w = intTensor(info, 0, 4, "weights", true, static_cast<size_t>(n) * static_cast<size_t>(k));
  if (zp.length != static_cast<size_t>(n)) throwRange(env, "zeroPoint length must be n");
  for (int32_t i = 0; i < n; ++i)
    if (zp.data[i] < -128 || zp.data[i] > 127) throwRange(env, "weight zero points must be in [-128, 127]");
  PackedBox* box = allocPacked(env, n, k);
  Packed& p = box->p;
  const size_t bs = p.blockBytes();
  std::vector<int8_t> row(w.bits < 8 ? static_cast<size_t>(k) : 0);
  for (int32_t r = 0; r < n; ++r) {
    const int8_t* src = reinterpret_cast<const int8_t*>(w.data) + static_cast<size_t>(r) * k;
    if (w.bits < 8) {
      unpackInts(w.data, w.bytes, static_cast<uint64_t>(r) * static_cast<uint64_t>(k), static_cast<size_t>(k), w.bits,
                 true, row.data());
      src = row.data();
    }
    uint8_t* dst = p.data + static_cast<size_t>(r / 16) * bs + static_cast<size_t>(r % 16) * 4;
    int32_t sum = 0;
    for (int32_t i = 0; i < k; ++i) {
      sum += src[i];
      dst[static_cast<size_t>(i >> 2) * 64 + (i & 3)] = static_cast<uint8_t>(src[i]);
    }
    p.rowSums[r] = sum;
    p.zeroPoint[r] = zp.data[r];
  }
  return wrapPacked(env, box);
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throwType(env, "handle required");
  bool ok = false;
  if (!info[0].IsExternal() || napi_check_object_type_tag(env, info[0], &kPackedTag, &ok) != napi_ok || !ok)
    throwType(env, "not a native packed-weights handle");
  PackedBox* box = info[0].As<Napi::External<PackedBox>>().Data();
  if (box->p.data) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -box->bytes);
    box->release();
    box->bytes = 0;
  }
  return env.Undefined();
}

// qgemm(a, m, k, aZeroPoint, handle, bias|null, kind, mult|null, zo, relu, out)
Napi::Value QGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View<uint8_t> a = typed<uint8_t>(info, 0, napi_uint8_array, "a");
  const int32_t m = integer(info, 1, "m", 1, 1 << 30);
  const int32_t k = integer(info, 2, "k", 1, kMaxK);
  const int32_t za = integer(info, 3, "aZeroPoint", 0, 255);
  if (info.Length() < 5) throwType(env, "w is required");
  PackedBox* box = unwrapPacked(env, info[4], "w");
  const Packed& w = box->p;
  if (w.k != k) throwRange(env, "a has k = " + std::to_string(k) + " but the weights were packed with k = " +
                                    std::to_string(w.k));
  if (static_cast<double>(m) * k > kMaxElems || static_cast<double>(m) * w.n > kMaxElems)
    throwRange(env, "GEMM too large");
  if (a.length != static_cast<size_t>(m) * static_cast<size_t>(k))
    throwRange(env, "a length " + std::to_string(a.length) + " != m * k = " + std::to_string(int64_t(m) * k));
  const Epilogue e = readEpilogue(info, 5, w.n);
  void* out = outPtr(info, 10, e.outKind, static_cast<size_t>(m) * static_cast<size_t>(w.n));
  if (!runGemm(a.data, static_cast<size_t>(k), m, za, w, e, out, static_cast<size_t>(w.n)))
    throw Napi::Error::New(env, "out of memory in qgemm");
  return env.Undefined();
}


ConvCall parseConv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ConvCall cc;
  View<uint8_t> x = typed<uint8_t>(info, 0, napi_uint8_array, "x");
  View<int32_t> xs = typed<int32_t>(info, 1, napi_int32_array, "xShape");
  const int32_t za = integer(info, 2, "xZeroPoint", 0, 255);
  if (info.Length() < 4 || !info[3].IsArray()) throwType(env, "w must be an array of packed handles");
  Napi::Array handles = info[3].As<Napi::Array>();
  View<int32_t> ws = typed<int32_t>(info, 4, napi_int32_array, "wShape");
  View<int32_t> geo = typed<int32_t>(info, 5, napi_int32_array, "geometry");
  if (xs.length != 4 || ws.length != 4 || geo.length != 7) throwRange(env, "bad shape arrays");
  const int64_t B = xs.data[0], C = xs.data[1], H = xs.data[2], W = xs.data[3];
  const int64_t O = ws.data[0], Cg = ws.data[1], kh = ws.data[2], kw = ws.data[3];
  const int64_t sh = geo.data[0], sw = geo.data[1], ph = geo.data[2], pw = geo.data[3], dh = geo.data[4],
                dw = geo.data[5], G = geo.data[6];
  if (B < 1 || C < 1 || H < 1 || W < 1 || O < 1 || Cg < 1 || kh < 1 || kw < 1) throwRange(env, "shapes must be positive");
  // Bound each factor first so that no product below can overflow.
  if (Cg > kMaxK || kh > kMaxK || kw > kMaxK || sh > kMaxK || sw > kMaxK || dh > kMaxK || dw > kMaxK ||
      ph > (1 << 20) || pw > (1 << 20))
    throwRange(env, "kernel, stride, dilation or padding out of range");
  if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || ph < 0 || pw < 0 || G < 1) throwRange(env, "bad stride/padding/dilation/groups");
  if (C % G != 0 || O % G != 0 || C / G != Cg) throwRange(env, "channels do not match groups");
  if (static_cast<double>(B) * C * H * W > kMaxElems) throwRange(env, "input too large");
  if (x.length != static_cast<size_t>(B * C * H * W)) throwRange(env, "x length does not match xShape");
  const int64_t effH = dh * (kh - 1) + 1, effW = dw * (kw - 1) + 1;
  if (H + 2 * ph < effH || W + 2 * pw < effW) throwRange(env, "kernel larger than padded input");
  const int64_t Ho = (H + 2 * ph - effH) / sh + 1, Wo = (W + 2 * pw - effW) / sw + 1;
  const int64_t K = Cg * kh * kw, Og = O / G, HW = Ho * Wo;
  if (K > kMaxK) throwRange(env, "C/groups * kh * kw exceeds MAX_GEMM_K");
  if (handles.Length() != static_cast<uint32_t>(G)) throwRange(env, "need one packed weight per group");
  cc.packs.resize(static_cast<size_t>(G));
  for (int64_t g = 0; g < G; ++g) {
    const Packed& p = unwrapPacked(env, handles.Get(static_cast<uint32_t>(g)), "w[g]")->p;
    if (p.n != Og || p.k != K) throwRange(env, "packed weights of group " + std::to_string(g) + " are not [O/groups, C/groups*kh*kw]");
    cc.packs[static_cast<size_t>(g)] = &p;
  }
  cc.e = readEpilogue(info, 6, static_cast<int32_t>(O));
  if (static_cast<double>(B) * O * HW > kMaxElems || static_cast<double>(HW) * K > kMaxElems) throwRange(env, "output too large");
  cc.x = x.data;
  cc.B = B, cc.C = C, cc.H = H, cc.W = W, cc.O = O, cc.Cg = Cg, cc.kh = kh, cc.kw = kw, cc.sh = sh, cc.sw = sw;
  cc.ph = ph, cc.pw = pw, cc.dh = dh, cc.dw = dw, cc.G = G, cc.Ho = Ho, cc.Wo = Wo, cc.K = K, cc.Og = Og, cc.HW = HW;
  cc.za = za;
  return cc;
}

Napi::Value QConv2d(const Napi::CallbackInfo& info) {
  const ConvCall cc = parseConv(info);
  void* out = outPtr(info, 11, cc.e.outKind, static_cast<size_t>(cc.B * cc.O * cc.HW));
  if (!runConv(cc, out, nullptr, nullptr)) throw Napi::Error::New(info.Env(), "out of memory in qconv2d");
  return info.Env().Undefined();
}

// A convolution with its weights reordered once (convDirectPrepare): the validated call without
// its input and output pointers, and the prepared plan.
constexpr napi_type_tag kPreparedTag = {0x7162626e50726570ULL, 0x6e61746976653032ULL};

struct PreparedBox {
  ConvCall cc;
  ConvDirectPrepared* plan = nullptr;
  ~PreparedBox() { convDirectRelease(plan); }
};

ConvDirectArgs directArgs(const ConvCall& cc, const uint8_t* x, void* out) {
  const Epilogue& e = cc.e;
  return ConvDirectArgs{x,     cc.B,  cc.C,  cc.H,  cc.W,  cc.za, cc.packs.data(), cc.O,   cc.kh,   cc.kw,
                        cc.sh, cc.sw, cc.ph, cc.pw, cc.dh, cc.dw, cc.G,           cc.Ho,  cc.Wo,   e.bias,
                        e.outKind, e.mult, e.zo, e.relu, out, nullptr, nullptr};
}

// qconv2dPrepare(conv args...): a handle, or null when the direct kernel cannot take the shape
// on this CPU (then call qconv2d). The handle keeps no reference to the arguments.
Napi::Value QConv2dPrepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ConvCall cc = parseConv(info);
  if (!isaAvailable(ISA_AVX512VNNI)) return env.Null();
  ConvDirectPrepared* plan = convDirectPrepare(directArgs(cc, cc.x, nullptr));
  if (plan == nullptr) return env.Null();
  auto* box = new PreparedBox();
  box->plan = plan;
  cc.x = nullptr;
  cc.packs.clear();
  cc.e.bias = nullptr;
  cc.e.mult = nullptr;
  box->cc = cc;
  auto ext = Napi::External<PreparedBox>::New(env, box, [](Napi::Env, PreparedBox* b) { delete b; });
  napi_type_tag_object(env, ext, &kPreparedTag);
  return ext;
}

PreparedBox* unwrapPrepared(Napi::Env env, Napi::Value v) {
  bool ok = false;
  if (!v.IsExternal() || napi_check_object_type_tag(env, v, &kPreparedTag, &ok) != napi_ok || !ok)
    throwType(env, "prepared must be a handle from qconv2dPrepare");
  PreparedBox* box = v.As<Napi::External<PreparedBox>>().Data();
  if (box->plan == nullptr) throw Napi::Error::New(env, "prepared convolution was disposed");
  return box;
}

// qconv2dPrepared(handle, x, out): the prepared convolution of a new input.
Napi::Value QConv2dPrepared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throwType(env, "prepared is required");
  const PreparedBox* box = unwrapPrepared(env, info[0]);
  const ConvCall& cc = box->cc;
  View<uint8_t> x = typed<uint8_t>(info, 1, napi_uint8_array, "x");
  if (x.length != static_cast<size_t>(cc.B * cc.C * cc.H * cc.W)) throwRange(env, "x length does not match the prepared shape");
  void* out = outPtr(info, 2, cc.e.outKind, static_cast<size_t>(cc.B * cc.O * cc.HW));
  if (!convDirectAvx512Prepared(directArgs(cc, x.data, out), *box->plan))
    throw Napi::Error::New(env, "prepared convolution does not match its plan");
  return env.Undefined();
}

Napi::Value QConv2dPreparedDispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throwType(env, "prepared is required");
  PreparedBox* box = unwrapPrepared(env, info[0]);
  convDirectRelease(box->plan);
  box->plan = nullptr;
  return env.Undefined();
}

// [kind (0 max, 1 avg), kh, kw, sh, sw, ph, pw] over planes of h x w; padding at most half the kernel.
PoolGeometry readPool(const Napi::CallbackInfo& info, size_t i, int64_t h, int64_t w) {
  Napi::Env env = info.Env();
  View<int32_t> p = typed<int32_t>(info, i, napi_int32_array, "pool");
  if (p.length != 7) throwRange(env, "pool must be [kind, kh, kw, sh, sw, ph, pw]");
  PoolGeometry g{p.data[0], p.data[1], p.data[2], p.data[3], p.data[4], p.data[5], p.data[6], 0, 0};
  if (g.kind != 0 && g.kind != 1) throwRange(env, "pool kind must be 0 (max) or 1 (avg)");
  if (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.kh > (1 << 20) || g.kw > (1 << 20) || g.sh > (1 << 20) ||
      g.sw > (1 << 20) || g.ph < 0 || g.pw < 0 || 2 * g.ph > g.kh || 2 * g.pw > g.kw)
    throwRange(env, "bad pool kernel, stride or padding");
  if (h + 2 * g.ph < g.kh || w + 2 * g.pw < g.kw) throwRange(env, "pool window larger than the padded input");
  g.ho = (h + 2 * g.ph - g.kh) / g.sh + 1;
  g.wo = (w + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

// qpool2d(x, [B, C, H, W], zeroPoint, pool, out)
Napi::Value QPool2d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View<uint8_t> x = typed<uint8_t>(info, 0, napi_uint8_array, "x");
  View<int32_t> xs = typed<int32_t>(info, 1, napi_int32_array, "xShape");
  if (xs.length != 4) throwRange(env, "xShape must have 4 entries");
  for (size_t i = 0; i < 4; ++i)
    if (xs.data[i] < 1) throwRange(env, "shapes must be positive");
  const int64_t planes = static_cast<int64_t>(xs.data[0]) * xs.data[1], h = xs.data[2], w = xs.data[3];
  if (static_cast<double>(planes) * h * w > kMaxElems || x.length != static_cast<size_t>(planes * h * w))
    throwRange(env, "x length does not match xShape");
  const int32_t z = integer(info, 2, "zeroPoint", 0, 255);
  const PoolGeometry g = readPool(info, 3, h, w);
  View<uint8_t> out = typed<uint8_t>(info, 4, napi_uint8_array, "out");
  if (out.length != static_cast<size_t>(planes * g.ho * g.wo)) throwRange(env, "out length does not match the pooled shape");
  poolPlanesU8(x.data, planes, h, w, z, g, out.data);
  return env.Undefined();
}

struct ConvPoolCtx {
  const ConvCall* cc;
  const uint8_t* conv;
  PoolGeometry g;
  uint8_t* out;
};

// qconv2dPool(conv args..., relu, pool, out): the convolution (u8 output) into a scratch buffer,
// each task's planes pooled as soon as they are written (still in cache).
Napi::Value QConv2dPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ConvCall cc = parseConv(info);
  if (cc.e.outKind != OUT_U8) throwRange(env, "qconv2dPool needs u8 output");
  const PoolGeometry g = readPool(info, 11, cc.Ho, cc.Wo);
  View<uint8_t> out = typed<uint8_t>(info, 12, napi_uint8_array, "out");
  if (out.length != static_cast<size_t>(cc.B * cc.O * g.ho * g.wo)) throwRange(env, "out length does not match the pooled shape");
  std::vector<uint8_t> conv(static_cast<size_t>(cc.B * cc.O * cc.HW));
  ConvPoolCtx ctx{&cc, conv.data(), g, out.data};
  const bool ok = runConv(cc, conv.data(), [](void* p, int64_t b0, int64_t n, int64_t o0, int64_t o1) {
    const ConvPoolCtx& c = *static_cast<const ConvPoolCtx*>(p);
    const int64_t hw = c.cc->HW, phw = c.g.ho * c.g.wo;
    for (int64_t b = b0; b < b0 + n; ++b) {
      const size_t plane0 = static_cast<size_t>(b * c.cc->O + o0);
      poolPlanesU8(c.conv + plane0 * hw, o1 - o0, c.cc->Ho, c.cc->Wo, c.cc->e.zo, c.g, c.out + plane0 * phw);
    }
  }, &ctx);
  if (!ok) throw Napi::Error::New(env, "out of memory in qconv2dPool");
  return env.Undefined();
}

Napi::Value Philox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t k0 = u32(info, 0, "key[0]"), k1 = u32(info, 1, "key[1]");
  const uint64_t pos = position(info, 2);
  View<uint32_t> out = typed<uint32_t>(info, 3, napi_uint32_array, "out");
  for (size_t i = 0; i < out.length; i += 4) {
    uint32_t w[4];
    philoxBlock(k0, k1, pos + i / 4, w);
    for (size_t j = 0; j < 4 && i + j < out.length; ++j) out.data[i + j] = w[j];
  }
  return env.Undefined();
}

Napi::Value QNormal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!qnormalReady()) throw Napi::Error::New(env, "quantised normal table not set");
  const uint32_t k0 = u32(info, 0, "key[0]"), k1 = u32(info, 1, "key[1]");
  const uint64_t pos = position(info, 2);
  View<int8_t> out = typed<int8_t>(info, 3, napi_int8_array, "out");
  const size_t count = out.length;
  const uint64_t word0 = pos * 4;
  const bool vec = vectorRng();
  // Chunks of a fixed size (independent of the thread count), each a pure function of its range.
  constexpr size_t kChunk = 1 << 16;
  const int64_t tasks = static_cast<int64_t>((count + kChunk - 1) / kChunk);
  auto fn = [&](int64_t t) {
    const size_t s = static_cast<size_t>(t) * kChunk;
    const size_t len = count - s < kChunk ? count - s : kChunk;
    if (vec) qnormalAvx512(k0, k1, word0 + s, out.data + s, len);
    else qnormalScalar(k0, k1, word0 + s, out.data + s, len);
  };
  if (tasks <= 1) {
    if (tasks == 1) fn(0);
  } else {
    ThreadPool::instance().run(tasks, fn);
  }
  return env.Undefined();
}

// mapWords(words, out, mode): 0 = scalar guided lookup, 1 = AVX-512 guided lookup, 2 = plain
// binary search, 3 = AVX-512 register binary search alone, 4 = AVX-512 VBMI byte lanes.
Napi::Value MapWords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!qnormalReady()) throw Napi::Error::New(env, "quantised normal table not set");
  View<uint32_t> w = typed<uint32_t>(info, 0, napi_uint32_array, "words");
  View<int8_t> out = typed<int8_t>(info, 1, napi_int8_array, "out");
  const int32_t mode = integer(info, 2, "mode", 0, 4);
  if (w.length != out.length) throwRange(env, "words and out must have the same length");
  if ((mode == 1 || mode == 3) && !cpuFeatures().avx512vnni) throwRange(env, "AVX-512 not available");
  if (mode == 0) qnormalMapWordsScalar(w.data, out.data, w.length);
  else if (mode == 1) qnormalMapWordsAvx512(w.data, out.data, w.length);
  else if (mode == 3) qnormalMapWordsAvx512Search(w.data, out.data, w.length);
  else if (mode == 4) {
    if (!cpuFeatures().avx512vbmi || !qnormalByteTables().ready) throwRange(env, "AVX-512 VBMI byte tables not available");
    qnormalMapWordsAvx512Bytes(w.data, out.data, w.length);
  }
  else
    for (size_t i = 0; i < w.length; ++i) out.data[i] = qnormalBinarySearch(w.data[i]);
  return env.Undefined();
}

// sampleGaussian(mu, muZp, sigma, sigmaZp, noiseZp, weightZp, m1, m2, m3, n, k, bits, key0, key1, position
//                [, into, intoRowSums, intoZeroPoint, muBits, sigmaBits]): a new pack, or, with `into` (a pack of the same
// n and k), the sample written over it (no allocation) and its row sums and zero points copied
// to the two Int32Arrays; then it returns undefined. muBits / sigmaBits < 8: mu / sigma are
// packInts bytes (Uint8Array), decoded a row at a time.
Napi::Value SampleGaussian(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!qnormalReady()) throw Napi::Error::New(env, "quantised normal table not set");
  View<int32_t> muZp = typed<int32_t>(info, 1, napi_int32_array, "muZeroPoint");
  View<int32_t> sigmaZp = typed<int32_t>(info, 3, napi_int32_array, "sigmaZeroPoint");
  View<int32_t> noiseZp = typed<int32_t>(info, 4, napi_int32_array, "noiseZeroPoint");
  View<int32_t> weightZp = typed<int32_t>(info, 5, napi_int32_array, "weightZeroPoint");
  View<double> m1 = typed<double>(info, 6, napi_float64_array, "m1");
  View<double> m2 = typed<double>(info, 7, napi_float64_array, "m2");
  View<double> m3 = typed<double>(info, 8, napi_float64_array, "m3");
  const int32_t n = integer(info, 9, "n", 1, 1 << 24);
  const int32_t k = integer(info, 10, "k", 1, kMaxK);
  const int32_t bits = integer(info, 11, "bits", 2, 8);
  const uint32_t key0 = u32(info, 12, "key[0]"), key1 = u32(info, 13, "key[1]");
  const uint64_t pos = position(info, 14);
  const size_t nk = static_cast<size_t>(n) * static_cast<size_t>(k);
  if (static_cast<double>(n) * k > kMaxElems) throwRange(env, "weights too large");
  const IntTensor mu = intTensor(info, 0, 18, "mu", true, nk);
  const IntTensor sigma = intTensor(info, 2, 19, "sigma", false, nk);
  const size_t un = static_cast<size_t>(n);
  if (muZp.length != un || sigmaZp.length != un || noiseZp.length != un || weightZp.length != un)
    throwRange(env, "zero point arrays must have length n");
  if (m1.length != un || m2.length != un || m3.length != un) throwRange(env, "multiplier arrays must have length n");
  const int32_t qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
  for (size_t i = 0; i < un; ++i) {
    if (!std::isfinite(m1.data[i]) || !std::isfinite(m2.data[i]) || !std::isfinite(m3.data[i]))
      throwRange(env, "multipliers must be finite");
    if (weightZp.data[i] < qmin || weightZp.data[i] > qmax || noiseZp.data[i] < qmin || noiseZp.data[i] > qmax)
      throwRange(env, "noise/weight zero points must be in the signed range of `bits`");
    if (std::abs(muZp.data[i]) > 1 << 16 || std::abs(sigmaZp.data[i]) > 1 << 16) throwRange(env, "zero point out of range");
  }
  const bool into = info.Length() > 15 && !info[15].IsUndefined() && !info[15].IsNull();
  View<int32_t> intoSums{}, intoZp{};
  PackedBox* box = nullptr;
  if (into) {
    box = unwrapPacked(env, info[15], "into");
    if (box->p.n != n || box->p.k != k) throwRange(env, "into is not packed [n, k]");
    intoSums = typed<int32_t>(info, 16, napi_int32_array, "intoRowSums");
    intoZp = typed<int32_t>(info, 17, napi_int32_array, "intoZeroPoint");
    if (intoSums.length != un || intoZp.length != un) throwRange(env, "into row sums and zero points must have length n");
  } else {
    box = allocPacked(env, n, k);
  }
  SampleCtx s{reinterpret_cast<const int8_t*>(mu.data), sigma.data, muZp.data, sigmaZp.data, noiseZp.data, weightZp.data,
              m1.data, m2.data, m3.data, n, k, qmin, qmax, key0, key1, pos, &box->p};
  s.muBits = mu.bits;
  s.sigmaBits = sigma.bits;
  s.muBytes = mu.bytes;
  s.sigmaBytes = sigma.bytes;
  const bool vec = vectorRng();
  // (.., into, .., x, dots): batch 1 as plans run it, each row dotted with x as it is drawn, the
  // pack's bytes not written (its row sums are); one thread; false without the AVX-512 sampler
  if (info.Length() > 21 && !info[20].IsUndefined() && !info[20].IsNull()) {
    if (!into) throwRange(env, "a sample + dot needs into");
    View<uint8_t> x = typed<uint8_t>(info, 20, napi_uint8_array, "x");
    View<int32_t> dots = typed<int32_t>(info, 21, napi_int32_array, "dots");
    if (x.length != static_cast<size_t>(k) || dots.length != un) throwRange(env, "x must have k values, dots n");
    if (!vec || !sampleRowsDotAvx512(s, x.data, 0, n, dots.data)) return Napi::Boolean::New(env, false);
    std::memcpy(intoSums.data, box->p.rowSums, sizeof(int32_t) * un);
    std::memcpy(intoZp.data, box->p.zeroPoint, sizeof(int32_t) * un);
    return Napi::Boolean::New(env, true);
  }
  const int64_t tasks = box->p.nblocks;
  auto fn = [&](int64_t t) {
    const int32_t n0 = static_cast<int32_t>(t) * 16;
    const int32_t n1 = n0 + 16 < n ? n0 + 16 : n;
    if (vec) sampleRowsAvx512(s, n0, n1);
    else sampleRowsScalar(s, n0, n1);
  };
  if (static_cast<double>(n) * k < 65536.0) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
  } else {
    ThreadPool::instance().run(tasks, fn);
  }
  if (into) {
    std::memcpy(intoSums.data, box->p.rowSums, sizeof(int32_t) * un);
    std::memcpy(intoZp.data, box->p.zeroPoint, sizeof(int32_t) * un);
    return env.Undefined();
  }
  return wrapPacked(env, box);
}

// Unpacks to row-major [n, k] (tests and debugging).
Napi::Value Unpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throwType(env, "handle required");
  const Packed& p = unwrapPacked(env, info[0], "w")->p;
  auto out = Napi::Int8Array::New(env, static_cast<size_t>(p.n) * static_cast<size_t>(p.k));
  const size_t bs = p.blockBytes();
  for (int32_t r = 0; r < p.n; ++r)
    for (int32_t i = 0; i < p.k; ++i)
      out[static_cast<size_t>(r) * p.k + i] = static_cast<int8_t>(
          p.data[static_cast<size_t>(r / 16) * bs + static_cast<size_t>(i >> 2) * 64 + (r % 16) * 4 + (i & 3)]);
  return out;
}

// peak(iters, 'zmm' | 'ymm') -> GOPS of a dependency-free vpdpbusd loop on this thread.
Napi::Value Peak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t iters = integer(info, 0, "iters", 1, 1 << 30);
  const bool ymm = info.Length() > 1 && info[1].IsString() && info[1].As<Napi::String>().Utf8Value() == "ymm";
  const CpuFeatures& f = cpuFeatures();
  if (ymm ? !f.avxvnni : !f.avx512vnni) return env.Null();
  const auto t0 = std::chrono::steady_clock::now();
  const double ops = ymm ? vpdpbusdPeakOpsYmm(iters) : vpdpbusdPeakOps(iters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Napi::Number::New(env, ops / s / 1e9);
}

// CPU seconds consumed by the calling thread (CLOCK_THREAD_CPUTIME_ID), for benchmarks on
// shared machines: unlike wall-clock time it excludes time other processes hold the core.
Napi::Value ThreadCpuTime(const Napi::CallbackInfo& info) {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return Napi::Number::New(info.Env(), static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  setActiveIsa(bestIsa());
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setQnormalTable", Napi::Function::New(env, SetQnormalTable));
  exports.Set("pack", Napi::Function::New(env, Pack));
  exports.Set("unpack", Napi::Function::New(env, Unpack));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("qgemm", Napi::Function::New(env, QGemm));
  exports.Set("qconv2d", Napi::Function::New(env, QConv2d));
  exports.Set("qconv2dPrepare", Napi::Function::New(env, QConv2dPrepare));
  exports.Set("qconv2dPrepared", Napi::Function::New(env, QConv2dPrepared));
  exports.Set("qconv2dPreparedDispose", Napi::Function::New(env, QConv2dPreparedDispose));
  exports.Set("qpool2d", Napi::Function::New(env, QPool2d));
  exports.Set("qconv2dPool", Napi::Function::New(env, QConv2dPool));
  exports.Set("philox", Napi::Function::New(env, Philox));
  exports.Set("qnormal", Napi::Function::New(env, QNormal));
  exports.Set("mapWords", Napi::Function::New(env, MapWords));
  exports.Set("sampleGaussian", Napi::Function::New(env, SampleGaussian));
  exports.Set("peak", Napi::Function::New(env, Peak));
  exports.Set("threadCpuTime", Napi::Function::New(env, ThreadCpuTime));
  exports.Set("fp32", fp32::makeExports(env));
  exports.Set("plan", makePlanExports(env));
  return exports;
}

}  // namespace

const Packed& packedFromHandle(Napi::Env env, Napi::Value v, const char* name) {
  return unwrapPacked(env, v, name)->p;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return Init(env, exports); }

}  // namespace qbnn

static Napi::Object QbnnInit(Napi::Env env, Napi::Object exports) { return qbnn::InitModule(env, exports); }

NODE_API_MODULE(qbnn_native, QbnnInit)
