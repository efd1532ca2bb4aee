#include "pool.h"

namespace qbnn {

namespace {
// True on a thread while it runs a task of a parallel region: a nested run (a plan's task
// calling a threaded kernel) then runs its tasks inline instead of re-locking the pool.
thread_local bool tInRegion = false;

struct RegionFlag {
  bool saved;
  RegionFlag() : saved(tInRegion) { tInRegion = true; }
  ~RegionFlag() { tInRegion = saved; }
};
}  // namespace

ThreadPool& ThreadPool::instance() {
  static ThreadPool* pool = new ThreadPool();  // never destroyed: workers may outlive statics
  return *pool;
}

ThreadPool::ThreadPool() {
  const unsigned hc = std::thread::hardware_concurrency();
  setThreads(hc == 0 ? 1 : static_cast<int>(hc));
}

ThreadPool::~ThreadPool() { stopAll(); }

void ThreadPool::stopAll() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stop_ = false;
}

void ThreadPool::setThreads(int n) {
  std::lock_guard<std::mutex> run(runMutex_);
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  stopAll();
  threads_ = n;
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker(i); });
}

void ThreadPool::worker(int) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t)>* fn;
    {
      std::unique_lock<std::mutex> lk(m_);
      cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      fn = fn_;
    }
    for (;;) {
      int64_t i;
      {
        std::lock_guard<std::mutex> lk(m_);
        if (stop_ || generation_ != seen || next_ >= tasks_) break;
        i = next_++;
        fn = fn_;
      }
      {
        RegionFlag flag;
        (*fn)(i);
      }
      std::lock_guard<std::mutex> lk(m_);
      if (++finished_ == tasks_) done_.notify_all();
    }
  }
}

void ThreadPool::run(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (tInRegion) {
    for (int64_t i = 0; i < tasks; ++i) fn(i);
    return;
  }
  std::unique_lock<std::mutex> run(runMutex_, std::try_to_lock);
  if (!run.owns_lock() || threads_ == 1 || tasks == 1) {
    // Busy (another JS thread is inside a parallel region) or nothing to share: run here.
    RegionFlag flag;
    for (int64_t i = 0; i < tasks; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(m_);
    fn_ = &fn;
    tasks_ = tasks;
    next_ = 0;
    finished_ = 0;
    ++generation_;
  }
  cv_.notify_all();
  for (;;) {
    int64_t i;
    {
      std::lock_guard<std::mutex> lk(m_);
      if (next_ >= tasks_) break;
      i = next_++;
    }
    {
      RegionFlag flag;
      fn(i);
    }
    std::lock_guard<std::mutex> lk(m_);
    if (++finished_ == tasks_) done_.notify_all();
  }
  std::unique_lock<std::mutex> lk(m_);
  done_.wait(lk, [&] { return finished_ == tasks_; });
  fn_ = nullptr;
}

}  // namespace qbnn
