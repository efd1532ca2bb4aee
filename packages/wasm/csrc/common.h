// Shared definitions of the qbnn WebAssembly kernels (freestanding C: no libc, no allocator).
// Every buffer lives in the module's linear memory and is laid out by the JavaScript side
// (src/memory.ts); the C side only computes.
#ifndef QBNN_WASM_COMMON_H
#define QBNN_WASM_COMMON_H

#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define INLINE static inline __attribute__((always_inline))

// Packed weights: panels of PANEL output channels; in a panel, groups of 4 consecutive K values,
// each group PANEL * 4 bytes = PANEL / 4 vectors of [4 channels x 4 K]. N is padded to PANEL and
// K to 4 with zero weights (a zero weight makes any activation byte read beside it harmless).
#define PANEL 8
#define PANEL_VECS (PANEL / 4)

static inline int32_t k_groups(int32_t k) { return (k + 3) >> 2; }
static inline int32_t panels(int32_t n) { return (n + PANEL - 1) / PANEL; }

// Output kinds (src/provider.ts passes the same numbers).
#define OUT_U8 0
#define OUT_F32 1
#define OUT_I32 2

// One GEMM: u8 activations [m, k] (row stride lda) times packed s8 weights [n, k], the output
// stage of the kernel contract written at out + (r * row_stride + c * col_stride) elements.
typedef struct {
  const uint8_t* a;
  int32_t m, k, lda, a_zero;
  const int8_t* w;
  int32_t n;
  const int32_t* row_sums;
  const int32_t* w_zero;
  const int32_t* bias;  // null when absent
  int32_t kind;
  const double* factor;  // u8: requantisation multipliers; f32: accumulator scales
  int32_t out_zero, out_lo;
  void* out;
  int32_t row_stride, col_stride;
  int32_t* work;  // m + PANEL * MAX_ROWS int32 of scratch
} gemm_t;

void gemm_run(const gemm_t* g);

// The quantised normal of one Philox stream range: out[j] from word j % 4 of block
// position + j / 4 (position < 2^53).
void qnormal_fill(uint32_t k0, uint32_t k1, uint64_t position, int8_t* out, int32_t count);

void pack_weights(const int8_t* w, int32_t n, int32_t k, int8_t* packed, int32_t* row_sums);

#endif
