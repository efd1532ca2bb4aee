// A small fixed thread pool. `run(tasks, fn)` calls fn(i) for every i < tasks, spread over the
// workers and the calling thread, and returns when all are done. Work is split into tasks by
// the caller in a way that does not depend on the thread count, and each task writes a
// disjoint part of the output, so results are identical for any number of threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qbnn {

class ThreadPool {
 public:
  static ThreadPool& instance();
  void setThreads(int n);
  int threads() const { return threads_; }
  void run(int64_t tasks, const std::function<void(int64_t)>& fn);
  ~ThreadPool();

 private:
  ThreadPool();
  void stopAll();
  void worker(int id);

  std::mutex runMutex_;  // one parallel region at a time
  std::mutex m_;
  std::condition_variable cv_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t tasks_ = 0;
  int64_t next_ = 0;
  int64_t finished_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int threads_ = 1;
};

}  // namespace qbnn
