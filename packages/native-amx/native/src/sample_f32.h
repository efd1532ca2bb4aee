// The fused Gaussian sampler's two rounding steps in float32, 16 lanes a register, with a proof
// that each lane is the contract's float64 result or a flag saying the vector must be redone in
// float64 (kernels/types.ts GaussianSampleArgs). Included by rng_avx512.cc inside its AVX-512
// target region.
//
// Step 1: x = p m1 (p = eps (sigma - Zsig), an integer, |p| < 2^24, exact in float32),
// y = f32(p m1f) with m1f = f32(m1). |m1f - m1| <= 2^-24 |m1| and the product's rounding
// give |y - x| <= 2^-22.9 |x|; the contract's z = f64(x) is within 2^-53 |x| of x. With
// R = max(|nLo|, |nHi|) + 1 (nLo = qmin - Zn, nHi = qmax - Zn):
//  - |x| <= R: |y - z| <= e1 = 2^-22 R. y is clamped to [nLo - 1/4, nHi + 1/4] and rounded to
//    r = rint(yc) (exact in float32; yc - r is exact too). If |yc - r| < 1/2 - 2 e1, no
//    half-integer lies within e1 of y, so RHE(z) = r when y was not clamped; when it was
//    (y > nHi + 1/4), z > nHi - 1/2 and clamp(RHE(z)) = nHi = r (likewise below).
//  - |x| > R: z and y are both beyond nHi + 1/2 (or below nLo - 1/2): both clamp to the bound,
//    and |yc - r| = 1/4 passes the test.
// Step 2: x2 = a + b + Zw, a = dmu m2, b = n' m3 (dmu = mu - Zmu with mu in [-128, 127], so
// |dmu| <= 128 + |Zmu|; |n'| <= 255, n' = r exactly; Zw an integer, so RHE(a + b) + Zw = RHE(x2));
// y2 = f32(fma(n', m3f, f32(fma(dmu, m2f, Zw)))) is within 3 2^-24 S (1 + 2^-22) of x2, with
// S = |a| + |b| + |Zw| (roundings of m2f, m3f and the two fmas), and the contract's
// f64(f64(a) + f64(b)) + Zw within 2^-51 S of it, so e2 = 2^-22 ((128 + |Zmu|) |m2| + 255 |m3| + |Zw|)
// bounds the distance for every input and, when |y2 - rint(y2)| < 1/2 - 2 e2, RHE of the
// contract's value is rint(y2).
// The weight's clamp to [qmin, qmax] (integers) commutes with the rounding, so it is applied to
// the integer; for 8-bit weights it is the int8 saturation of the pack itself.
// One test covers both steps: max(|d1|, |d2|) < min(t1, t2) (d = value - its rounding).
// A row whose multipliers are not 0 or normal float32 magnitudes, or give e1 or e2 >= 1/8, takes
// the float64 path throughout (ok = false). Ties of the contract (z exactly a half-integer)
// always fail the test, so they are decided in float64.
#pragma once

#include <immintrin.h>

#include <cmath>

#include "common.h"

namespace qbnn {

struct Float32Row {
  bool ok;
  // 8-bit weights: step 2's clamp is the pack's int8 saturation (no clamp here).
  bool saturate;
  __m512 m1, m2, m3, nLo, nHi, zw, t;
  __m512i wLo, wHi;

  Float32Row(const SampleCtx& s, int32_t n) {
    const double lo = s.qmin - s.noiseZp[n], hi = s.qmax - s.noiseZp[n];
    const double e1 = (std::fmax(std::fabs(lo), std::fabs(hi)) + 1) * 0x1p-22;
    const double e2 =
        ((128.0 + std::abs(s.muZp[n])) * std::fabs(s.m2[n]) + 255 * std::fabs(s.m3[n]) + std::abs(s.weightZp[n])) *
        0x1p-22;
    auto normal = [](double m) { return m == 0 || (std::fabs(m) >= 0x1p-100 && std::fabs(m) <= 0x1p100); };
    ok = normal(s.m1[n]) && normal(s.m2[n]) && normal(s.m3[n]) && e1 < 0.125 && e2 < 0.125;
    saturate = s.qmin == -128 && s.qmax == 127;
    m1 = _mm512_set1_ps(static_cast<float>(s.m1[n]));
    m2 = _mm512_set1_ps(static_cast<float>(s.m2[n]));
    m3 = _mm512_set1_ps(static_cast<float>(s.m3[n]));
    nLo = _mm512_set1_ps(static_cast<float>(lo - 0.25));
    nHi = _mm512_set1_ps(static_cast<float>(hi + 0.25));
    zw = _mm512_set1_ps(static_cast<float>(s.weightZp[n]));
    wLo = _mm512_set1_epi32(s.qmin);
    wHi = _mm512_set1_epi32(s.qmax);
    // Rounded down (the float next to it towards 0), so |d| < t implies |d| < 1/2 - 2 e for both
    // steps' e.
    const float t0 = static_cast<float>(0.5 - 2 * std::fmax(e1, e2));
    t = _mm512_castsi512_ps(_mm512_sub_epi32(_mm512_castps_si512(_mm512_set1_ps(t0)), _mm512_set1_epi32(t0 != 0)));
  }

  // The weights (zero point added; not clamped to int8 when `saturate`) of 16 lanes from
  // p = eps (sigma - Zsig) and dmu = mu - Zmu; false when some lane is not proven (w is then not
  // the contract's and the caller redoes the vector in float64).
  inline bool combine(__m512i prod, __m512i dmu, __m512i& w) const {
    if (!ok) return false;
    const __m512 y1 = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(prod), m1), nLo), nHi);
    const __m512 r1 = _mm512_roundscale_ps(y1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 y2 = _mm512_fmadd_ps(r1, m3, _mm512_fmadd_ps(_mm512_cvtepi32_ps(dmu), m2, zw));
    const __m512 d2 = _mm512_sub_ps(y2, _mm512_roundscale_ps(y2, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // max(|y1 - r1|, |d2|) (vrangeps: larger magnitude, sign cleared)
    const __m512 d = _mm512_range_ps(_mm512_sub_ps(y1, r1), d2, 0x0b);
    w = _mm512_cvt_roundps_epi32(y2, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (!saturate) w = _mm512_min_epi32(_mm512_max_epi32(w, wLo), wHi);
    return _mm512_cmp_ps_mask(d, t, _CMP_LT_OQ) == 0xffff;
  }
};

}  // namespace qbnn
