#include "worker-pool.h"

#include <pthread.h>
#include <signal.h>

namespace lvmfs {

namespace {

void IgnoreWake(int) {}

}  // namespace

int WakeSignal() {
  static const int signal = [] {
    int chosen = SIGRTMIN + 6;
    struct sigaction action = {};
    action.sa_handler = IgnoreWake;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: a blocked read(2) returns EINTR
    sigaction(chosen, &action, nullptr);
    return chosen;
  }();
  return signal;
}

std::thread StartThread(const std::string& name, std::function<void()> body) {
  int wake = WakeSignal();
  sigset_t all, previous;
  sigfillset(&all);
  sigdelset(&all, wake);
  // The new thread inherits the creating thread's mask; restore ours right after.
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  std::thread thread([name, body = std::move(body)] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    body();
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

WorkerPool::WorkerPool(const std::string& name, unsigned threads) {
  for (unsigned i = 0; i < threads; i++) threads_.push_back(StartThread(name, [this] { Loop(); }));
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

void WorkerPool::Loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
      if (jobs_.empty()) return;  // stopping, and every posted job has run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void Latch::CountDown() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (--count_ == 0) done_.notify_all();
}

void Latch::Wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return count_ <= 0; });
}

}  // namespace lvmfs
