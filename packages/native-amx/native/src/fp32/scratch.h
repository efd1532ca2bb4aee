// Grow-only, 64-byte aligned scratch memory owned by the calling thread (packing buffers,
// partial sums): no allocation or page faults on the hot path once warmed up.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace qbnn {
namespace fp32 {

class Scratch {
 public:
  ~Scratch() { std::free(p_); }
  float* floats(size_t n) {
    if (n > cap_) {
      std::free(p_);
      cap_ = n + n / 4;
      p_ = static_cast<float*>(std::aligned_alloc(64, (cap_ * sizeof(float) + 63) / 64 * 64));
      if (p_ == nullptr) {
        cap_ = 0;
        throw std::bad_alloc();
      }
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace fp32
}  // namespace qbnn
