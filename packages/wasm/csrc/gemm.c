// The u8 x s8 GEMM of the kernel contract (packages/core/src/kernels/types.ts) and the
// convolution over im2col rows, bit-identical to the JS reference.
//
// Built twice from this file: with QBNN_RELAXED the dot products use the relaxed-SIMD
// i32x4.relaxed_dot_i8x16_i7x16_add_s (weights as the i8 operand, activations as the "i7" one:
// exact only where the engine computes it as unsigned bytes without saturation, which
// src/module.ts checks at load before choosing that build); without it, plain SIMD128 widens
// both operands to i16 and uses i32x4.dot_i16x8_s, exact everywhere.
#include "common.h"

// Rows of the register-blocked microkernel (measured best on V8/x86-64: 2 for SIMD128, whose
// widened operands need twice the registers). -DMAX_ROWS=N overrides it for experiments.
#ifdef QBNN_RELAXED
#ifndef MAX_ROWS
#define MAX_ROWS 6
#endif
#else
#ifndef MAX_ROWS
#define MAX_ROWS 2
#endif
#endif

#define UNROLL _Pragma("clang loop unroll(full)")

// dots[r * PANEL + c] = sum_k a[r, k] w[c, k] for mr rows and one panel of PANEL channels over
// kg groups of 4 K. Called with a constant mr, so the loops unroll and the accumulators become
// registers: this is the generator of the register-blocked microkernels (one per row count).
INLINE void panel_dots(int mr, const uint8_t* a, int32_t lda, const int8_t* w, int32_t kg, int32_t* dots) {
#ifdef QBNN_RELAXED
  v128_t acc[MAX_ROWS][PANEL_VECS];
  UNROLL for (int r = 0; r < mr; r++) UNROLL for (int v = 0; v < PANEL_VECS; v++) acc[r][v] = wasm_i32x4_splat(0);
  for (int32_t g = 0; g < kg; g++) {
    v128_t wv[PANEL_VECS];
    UNROLL for (int v = 0; v < PANEL_VECS; v++) wv[v] = wasm_v128_load(w + (g * PANEL_VECS + v) * 16);
    UNROLL for (int r = 0; r < mr; r++) {
      const v128_t av = wasm_v128_load32_splat(a + r * lda + 4 * g);
      UNROLL for (int v = 0; v < PANEL_VECS; v++) {
        acc[r][v] = __builtin_wasm_relaxed_dot_i8x16_i7x16_add_s_i32x4((__i8x16)wv[v], (__i8x16)av,
                                                                       (__i32x4)acc[r][v]);
      }
    }
  }
  UNROLL for (int r = 0; r < mr; r++) UNROLL for (int v = 0; v < PANEL_VECS; v++) {
    wasm_v128_store(dots + r * PANEL + 4 * v, acc[r][v]);
  }
#else
  // Per vector of 4 channels x 4 K: `lo` sums channels 0-1 and `hi` channels 2-3, two partial
  // sums a channel (lanes [c0 k01, c0 k23, c1 k01, c1 k23]); |partial| <= 2 * 255 * 128 a step.
  v128_t lo[MAX_ROWS][PANEL_VECS], hi[MAX_ROWS][PANEL_VECS];
  UNROLL for (int r = 0; r < mr; r++) UNROLL for (int v = 0; v < PANEL_VECS; v++) {
    lo[r][v] = wasm_i32x4_splat(0);
    hi[r][v] = wasm_i32x4_splat(0);
  }
  for (int32_t g = 0; g < kg; g++) {
    v128_t wl[PANEL_VECS], wh[PANEL_VECS];
    UNROLL for (int v = 0; v < PANEL_VECS; v++) {
      const v128_t wv = wasm_v128_load(w + (g * PANEL_VECS + v) * 16);
      wl[v] = wasm_i16x8_extend_low_i8x16(wv);
      wh[v] = wasm_i16x8_extend_high_i8x16(wv);
    }
    UNROLL for (int r = 0; r < mr; r++) {
      // [a0 a1 a2 a3 a0 a1 a2 a3] as u16
      const v128_t av = wasm_u16x8_extend_low_u8x16(wasm_v128_load32_splat(a + r * lda + 4 * g));
      UNROLL for (int v = 0; v < PANEL_VECS; v++) {
        lo[r][v] = wasm_i32x4_add(lo[r][v], wasm_i32x4_dot_i16x8(wl[v], av));
        hi[r][v] = wasm_i32x4_add(hi[r][v], wasm_i32x4_dot_i16x8(wh[v], av));
      }
    }
  }
  UNROLL for (int r = 0; r < mr; r++) UNROLL for (int v = 0; v < PANEL_VECS; v++) {
    const v128_t even = wasm_i32x4_shuffle(lo[r][v], hi[r][v], 0, 2, 4, 6);
    const v128_t odd = wasm_i32x4_shuffle(lo[r][v], hi[r][v], 1, 3, 5, 7);
    wasm_v128_store(dots + r * PANEL + 4 * v, wasm_i32x4_add(even, odd));
  }
#endif
}

// One microkernel per row count (the tail of M uses the smaller ones).
#define DEFINE_KERNEL(MR)                                                                        \
  static void panel_dots_##MR(const uint8_t* a, int32_t lda, const int8_t* w, int32_t kg,        \
                              int32_t* dots) {                                                   \
    panel_dots(MR, a, lda, w, kg, dots);                                                         \
  }
DEFINE_KERNEL(1)
#if MAX_ROWS >= 2
DEFINE_KERNEL(2)
#endif
#if MAX_ROWS >= 3
DEFINE_KERNEL(3)
#endif
#if MAX_ROWS >= 4
DEFINE_KERNEL(4)
#endif
#if MAX_ROWS >= 5
DEFINE_KERNEL(5)
#endif
#if MAX_ROWS >= 6
DEFINE_KERNEL(6)
#endif
#if MAX_ROWS > 6
#error "MAX_ROWS is at most 6"
#endif

typedef void (*kernel_fn)(const uint8_t*, int32_t, const int8_t*, int32_t, int32_t*);
static const kernel_fn KERNELS[] = {
    0,
    panel_dots_1,
#if MAX_ROWS >= 2
    panel_dots_2,
#endif
#if MAX_ROWS >= 3
    panel_dots_3,
#endif
#if MAX_ROWS >= 4
    panel_dots_4,
#endif
#if MAX_ROWS >= 5
    panel_dots_5,
#endif
#if MAX_ROWS >= 6
    panel_dots_6,
#endif
};

// The per-channel terms of one panel, padded to PANEL (padded channels are never stored).
typedef struct {
  int32_t constant[PANEL];  // bias - Za sum_k w + K Za Zw (int32, wrapping like the contract)
  int32_t zero[PANEL];      // Zw
  double factor[PANEL];
} panel_terms_t;

static void panel_terms(const gemm_t* g, int32_t c0, int32_t nc, panel_terms_t* t) {
  const int32_t kza = g->k * g->a_zero;
  for (int j = 0; j < PANEL; j++) {
    if (j < nc) {
      const int32_t c = c0 + j;
      const int32_t zw = g->w_zero[c];
      const uint32_t b = g->bias ? (uint32_t)g->bias[c] : 0u;
      t->constant[j] = (int32_t)(b - (uint32_t)g->a_zero * (uint32_t)g->row_sums[c] + (uint32_t)kza * (uint32_t)zw);
      t->zero[j] = zw;
      t->factor[j] = g->kind == OUT_I32 ? 0.0 : g->factor[c];
    } else {
      t->constant[j] = 0;
      t->zero[j] = 0;
      t->factor[j] = 0.0;
    }
  }
}

// acc = dot - Zw sum_k a + constant, wrapped to int32, then the output stage, for mr rows.
static void finish(const gemm_t* g, int32_t r0, int mr, int32_t c0, int32_t nc, const int32_t* dots,
                   const int32_t* row_sum_a, const panel_terms_t* t) {
  const v128_t zo = wasm_f64x2_splat((double)g->out_zero);
  const v128_t lo = wasm_f64x2_splat((double)g->out_lo);
  const v128_t hi = wasm_f64x2_splat(255.0);
  for (int r = 0; r < mr; r++) {
    const v128_t sa = wasm_i32x4_splat(row_sum_a[r0 + r]);
    const int32_t base = (r0 + r) * g->row_stride;
    for (int v = 0; v < PANEL_VECS; v++) {
      const int c4 = 4 * v;
      if (c4 >= nc) break;
      const v128_t acc = wasm_i32x4_sub(
          wasm_i32x4_add(wasm_v128_load(dots + r * PANEL + c4), wasm_v128_load(t->constant + c4)),
          wasm_i32x4_mul(wasm_v128_load(t->zero + c4), sa));
      const int lanes = nc - c4 < 4 ? nc - c4 : 4;
      const int32_t at = base + (c0 + c4) * g->col_stride;
      if (g->kind == OUT_I32) {
        int32_t* o = (int32_t*)g->out;
        int32_t tmp[4];
        wasm_v128_store(tmp, acc);
        for (int j = 0; j < lanes; j++) o[at + j * g->col_stride] = tmp[j];
        continue;
      }
      // float64 products acc * factor[c], exactly as the reference (no fused multiply-add).
      const v128_t p0 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(acc), wasm_v128_load(t->factor + c4));
      const v128_t p1 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(acc, acc, 2, 3, 2, 3)),
                                       wasm_v128_load(t->factor + c4 + 2));
      if (g->kind == OUT_F32) {
        float* o = (float*)g->out;
        float tmp[4];
        wasm_v128_store(tmp, wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(p0), wasm_f32x4_demote_f64x2_zero(p1),
                                                0, 1, 4, 5));
        for (int j = 0; j < lanes; j++) o[at + j * g->col_stride] = tmp[j];
        continue;
      }
      // u8: clamp(roundHalfEven(v) + Zo, lo, 255); f64x2.nearest rounds ties to even.
      const v128_t q0 = wasm_f64x2_pmin(wasm_f64x2_pmax(wasm_f64x2_add(wasm_f64x2_nearest(p0), zo), lo), hi);
      const v128_t q1 = wasm_f64x2_pmin(wasm_f64x2_pmax(wasm_f64x2_add(wasm_f64x2_nearest(p1), zo), lo), hi);
      int32_t tmp[4];
      wasm_v128_store(tmp, wasm_i32x4_shuffle(wasm_i32x4_trunc_sat_f64x2_zero(q0),
                                              wasm_i32x4_trunc_sat_f64x2_zero(q1), 0, 1, 4, 5));
      uint8_t* o = (uint8_t*)g->out;
      for (int j = 0; j < lanes; j++) o[at + j * g->col_stride] = (uint8_t)tmp[j];
    }
  }
}

// Rows per cache block: the activations of one block stay in L2 while every panel passes.
#define BLOCK_BYTES (160 * 1024)

void gemm_run(const gemm_t* g) {
  const int32_t m = g->m, k = g->k, lda = g->lda, kg = k_groups(k);
  int32_t* row_sum_a = g->work;
  int32_t* dots = g->work + m;
  for (int32_t r = 0; r < m; r++) {
    const uint8_t* row = g->a + r * lda;
    int32_t s = 0;
    for (int32_t i = 0; i < k; i++) s += row[i];
    row_sum_a[r] = s;
  }
  int32_t block = (BLOCK_BYTES / (lda > 0 ? lda : 1)) / MAX_ROWS * MAX_ROWS;
  if (block < MAX_ROWS) block = MAX_ROWS;
  const int32_t np = panels(g->n);
  panel_terms_t terms;
  for (int32_t rb = 0; rb < m; rb += block) {
    const int32_t rend = rb + block < m ? rb + block : m;
    for (int32_t p = 0; p < np; p++) {
      const int32_t c0 = p * PANEL;
      const int32_t nc = g->n - c0 < PANEL ? g->n - c0 : PANEL;
      const int8_t* wp = g->w + (int32_t)p * kg * PANEL * 4;
      panel_terms(g, c0, nc, &terms);
      for (int32_t r = rb; r < rend; r += MAX_ROWS) {
        const int mr = rend - r < MAX_ROWS ? rend - r : MAX_ROWS;
        KERNELS[mr](g->a + r * lda, lda, wp, kg, dots);
        finish(g, r, mr, c0, nc, dots, row_sum_a, &terms);
      }
    }
  }
}

// work: m + PANEL * MAX_ROWS int32.
EXPORT("qbnn_gemm")
void qbnn_gemm(const uint8_t* a, int32_t m, int32_t k, int32_t a_zero, const int8_t* w, int32_t n,
               const int32_t* row_sums, const int32_t* w_zero, const int32_t* bias, int32_t kind,
               const double* factor, int32_t out_zero, int32_t out_lo, void* out, int32_t* work) {
  const gemm_t g = {a, m, k, k, a_zero, w, n, row_sums, w_zero, bias, kind, factor, out_zero, out_lo, out, n, 1, work};
  gemm_run(&g);
}

// Rows of work a convolution needs beyond its im2col matrix: see qbnn_conv2d.
EXPORT("qbnn_gemm_max_rows") int32_t qbnn_gemm_max_rows(void) { return MAX_ROWS; }

enum { G_BATCH, G_C, G_H, G_W, G_O, G_CG, G_KH, G_KW, G_GROUPS, G_SH, G_SW, G_PH, G_PW, G_DH, G_DW, G_HO, G_WO, G_XZERO };

// The reference convolution: per batch element and group, im2col rows (oh, ow) x columns
// (ci, i, j) with padding reading the input zero point, then the GEMM writing NCHW.
// geo: the 18 int32 above; packs: per group the addresses of its packed weights and row sums;
// cols: ho * wo * cg * kh * kw bytes (+16); work: ho * wo + PANEL * MAX_ROWS int32.
EXPORT("qbnn_conv2d")
void qbnn_conv2d(const uint8_t* x, const int32_t* geo, const int32_t* packs, const int32_t* w_zero,
                 const int32_t* bias, int32_t kind, const double* factor, int32_t out_zero, int32_t out_lo,
                 void* out, uint8_t* cols, int32_t* work) {
  const int32_t c = geo[G_C], h = geo[G_H], wd = geo[G_W], o = geo[G_O], cg = geo[G_CG];
  const int32_t kh = geo[G_KH], kw = geo[G_KW], groups = geo[G_GROUPS];
  const int32_t sh = geo[G_SH], sw = geo[G_SW], ph = geo[G_PH], pw = geo[G_PW], dh = geo[G_DH], dw = geo[G_DW];
  const int32_t ho = geo[G_HO], wo = geo[G_WO];
  const uint8_t za = (uint8_t)geo[G_XZERO];
  const int32_t og = o / groups, kg = cg * kh * kw, hw = ho * wo;
  const int32_t esize = kind == OUT_U8 ? 1 : 4;
  for (int32_t b = 0; b < geo[G_BATCH]; b++) {
    for (int32_t gi = 0; gi < groups; gi++) {
      int32_t col = 0;
      for (int32_t ci = 0; ci < cg; ci++) {
        const uint8_t* plane = x + (b * c + gi * cg + ci) * h * wd;
        for (int32_t i = 0; i < kh; i++) {
          for (int32_t j = 0; j < kw; j++, col++) {
            for (int32_t oh = 0; oh < ho; oh++) {
              const int32_t ih = oh * sh - ph + i * dh;
              uint8_t* dst = cols + oh * wo * kg + col;
              if (ih < 0 || ih >= h) {
                for (int32_t ow = 0; ow < wo; ow++) dst[ow * kg] = za;
                continue;
              }
              const uint8_t* src = plane + ih * wd;
              for (int32_t ow = 0; ow < wo; ow++) {
                const int32_t iw = ow * sw - pw + j * dw;
                dst[ow * kg] = iw >= 0 && iw < wd ? src[iw] : za;
              }
            }
          }
        }
      }
      const int32_t chan = gi * og;
      const gemm_t g = {
          cols, hw, kg, kg, za,
          (const int8_t*)(uintptr_t)packs[2 * gi], og, (const int32_t*)(uintptr_t)packs[2 * gi + 1],
          w_zero + chan, bias ? bias + chan : 0, kind, factor + (kind == OUT_I32 ? 0 : chan), out_zero, out_lo,
          (uint8_t*)out + (uintptr_t)((b * o + chan) * hw) * esize, 1, hw, work,
      };
      gemm_run(&g);
    }
  }
}
