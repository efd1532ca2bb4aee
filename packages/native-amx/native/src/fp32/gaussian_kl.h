// The closed-form KL of N(mu, softplus(rho)^2) to N(m0, s0^2) and its gradient, one pass each
// (the 'QbnnGaussianKl' / 'QbnnGaussianKlGrad' tfjs kernels; see @qbnn/core's gaussian-kl.ts for
// the formulas). Element maths in float32 (AVX-512 polynomials, or libm in the portable loop);
// the sum in float64 over fixed chunks added in order, so it is the same on any thread count.
#pragma once

#include <cstdint>

namespace qbnn {
namespace fp32 {

double gaussianKlSum(const float* mu, const float* rho, int64_t n, double m0, double s0);

void gaussianKlGrad(const float* mu, const float* rho, int64_t n, double m0, double s0, double dy, float* dMu,
                    float* dRho);

// The Gaussian weight sample fused with its KL (the 'QbnnGaussianSampleKl' kernel): w = mu + sigma *
// eps with sigma = softplus(rho), and the KL of (mu, sigma) to the prior (returned, equal to
// gaussianKlSum's), from one sigma a weight in one pass.
double gaussianSampleKl(const float* mu, const float* rho, const float* eps, float* w, int64_t n, double m0,
                        double s0);
// Its gradient from dw and the KL's scalar gradient dkl, in one pass: dMu = dw + dkl d(KL)/dmu,
// dRho = (dw * eps) * sigmoid(rho) + dkl d(KL)/drho.
void gaussianSampleKlGrad(const float* mu, const float* rho, const float* eps, const float* dw, int64_t n, double m0,
                          double s0, double dkl, float* dMu, float* dRho);

// AVX-512 bodies over one chunk (gaussian_kl_avx512.cc): add the chunk's KL sum to *sum (and
// write the sample when eps is not null) / write dy times the KL's gradient (plus the sample's
// from dw when dw is not null); false when not compiled in.
bool gaussianKlChunkAvx512(const float* mu, const float* rho, const float* eps, float* w, int64_t n, double m0,
                           double inv2s2, double* sum);
bool gaussianKlGradChunkAvx512(const float* mu, const float* rho, const float* eps, const float* dw, int64_t n,
                               double m0, double scaleMu, float invS2, float dy, float* dMu, float* dRho);

}  // namespace fp32
}  // namespace qbnn
