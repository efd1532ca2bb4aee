// The int8 GEMM and convolution drivers shared by the N-API entry points (addon.cc) and the
// execution plans (plan.cc): ISA dispatch, the per-call epilogue constants, threading. Inputs
// are already validated; the drivers do not touch JS values, so they can run on pool threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.h"

namespace qbnn {

// The ISA path the kernels use (an Isa value), chosen at load and by setIsa.
int activeIsa();
void setActiveIsa(int isa);
// Whether the quantised-normal sampler and the fused weight sampler take their AVX-512 paths.
bool vectorRng();

struct Epilogue {
  int32_t outKind;
  const double* mult;  // length n (null for i32)
  int32_t zo;
  bool relu;
  const int32_t* bias;  // length n or null
};

// C[m, n] (row-major, ldo) = requant(A[m, k] (row stride lda) x W^T). Runs on the pool (or on
// the calling thread inside a parallel region). False when out of memory.
bool runGemm(const uint8_t* a, size_t lda, int32_t m, int32_t za, const Packed& w, const Epilogue& e, void* out,
             size_t ldo);

// Batch 1 (m = 1) from its raw dot products raw[n] = sum_k a[k] W[n, k]: the epilogue runGemm
// applies, with W's rowSums and zeroPoint (its packed bytes are not read). False when out of memory.
bool gemvEpilogue(const uint8_t* a, int32_t za, const Packed& w, const Epilogue& e, const int32_t* raw, void* out);

// A validated convolution: qconv2d(x, [B, C, H, W], xZeroPoint, handles[], [O, Cg, kh, kw],
// [sh, sw, ph, pw, dh, dw, groups], bias|null, kind, mult|null, zo, relu, ...).
struct ConvCall {
  const uint8_t* x;
  int64_t B, C, H, W, O, Cg, kh, kw, sh, sw, ph, pw, dh, dw, G, Ho, Wo, K, Og, HW;
  int32_t za;
  std::vector<const Packed*> packs;
  Epilogue e;
};

// Runs a convolution into out (NCHW [B, O, Ho, Wo]). `after` (direct path) is called when a
// task has written output channels [o0, o1) of images [b0, b0 + n). False when out of memory.
bool runConv(const ConvCall& cc, void* out, ConvDirectArgs::After after, void* afterCtx);

}  // namespace qbnn
