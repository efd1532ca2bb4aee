// Work splitting over the addon's thread pool for the fp32 kernels. Callers cut work into
// tasks by shape only, and each task writes its own part of the output, so results never depend
// on the number of threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>

#include "../pool.h"

namespace qbnn {
namespace fp32 {

// Below this many flops (or touched elements x 8) work runs on the calling thread.
constexpr double kParallelFlops = 1 << 18;

// Runs fn(t) for t < tasks on the pool (or here when the work is small), rethrowing the first
// exception (a failed allocation) on the calling thread.
template <typename Fn>
inline void parallel(int64_t tasks, double work, Fn&& fn) {
  if (tasks <= 1 || work < kParallelFlops) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::exception_ptr error;
  std::mutex m;
  ThreadPool::instance().run(tasks, [&](int64_t t) {
    try {
      fn(t);
    } catch (...) {
      std::lock_guard<std::mutex> lk(m);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
}

// fn(m) for every m < rows, in tasks of 64 rows; `perRow` estimates a row's work (flops).
template <typename Fn>
inline void forRows(int64_t rows, double perRow, Fn&& fn) {
  const int64_t tasks = (rows + 63) / 64;
  parallel(tasks, perRow * static_cast<double>(rows), [&](int64_t t) {
    for (int64_t m = t * 64, end = std::min(rows, m + 64); m < end; ++m) fn(m);
  });
}

}  // namespace fp32
}  // namespace qbnn
