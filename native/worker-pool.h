// Native threads: every thread lvmfs starts blocks all signals except the reader wake-up
// signal (signals are Node's to handle, and a signal landing in a thread that holds a lock
// would stall it), carries a name (visible in /proc and tests), and is joined before the
// session it serves is destroyed.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lvmfs {

// The signal Session::Close sends to reader threads blocked in read(2) on /dev/fuse: its
// handler does nothing and is installed without SA_RESTART, so the read returns EINTR.
int WakeSignal();

// Starts a thread named `name` (at most 15 characters) with every signal but WakeSignal()
// blocked.
std::thread StartThread(const std::string& name, std::function<void()> body);

// A fixed set of threads running posted jobs in order of posting. Stop() runs every job
// already posted, then joins; Post after Stop runs nothing and returns false.
class WorkerPool {
 public:
  WorkerPool(const std::string& name, unsigned threads);
  ~WorkerPool();
  bool Post(std::function<void()> job);
  void Stop();

 private:
  void Loop();
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// Waits for a known number of jobs posted elsewhere to finish.
class Latch {
 public:
  explicit Latch(int count) : count_(count) {}
  void CountDown();
  void Wait();

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  int count_;
};

}  // namespace lvmfs
