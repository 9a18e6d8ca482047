// A backing target that is not a file: an NBD export (nbd-client.cc). The native data path
// addresses it, like a file, by an fd in the volume map: a token fd (an eventfd, on which any
// pread/pwrite fails with ESPIPE, so a path that forgot the lookup fails loudly) registered here
// with its target. FinishMap resolves each copy's target once; fsync looks the fd up.
#pragma once
#include <errno.h>
#include <stdint.h>

#include <condition_variable>
#include <memory>
#include <mutex>

namespace lvmfs {

enum class RemoteOp : uint8_t { kRead, kWrite, kFlush, kZero };

// One transfer's completion, waited for by the thread that started it.
class RemoteWaiter {
 public:
  void Finish(int result) {
    std::lock_guard<std::mutex> lock(mutex_);
    result_ = result;
    finished_ = true;
    done_.notify_one();
  }
  int Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return finished_; });
    return result_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  bool finished_ = false;
  int result_ = 0;
};

class RemoteTarget {
 public:
  virtual ~RemoteTarget() = default;
  // Starts one transfer; the waiter is finished with 0 or -errno on the target's own thread.
  // False when the target is closed (the waiter is then never finished).
  virtual bool Start(RemoteOp op, uint8_t* buffer, uint64_t length, uint64_t offset, RemoteWaiter* waiter) = 0;
};

// Runs one transfer to completion: 0 or -errno.
inline int RemoteTransfer(RemoteTarget& target, RemoteOp op, uint8_t* buffer, uint64_t length, uint64_t offset) {
  RemoteWaiter waiter;
  if (!target.Start(op, buffer, length, offset, &waiter)) return -ENOTCONN;
  return waiter.Wait();
}

void RegisterRemoteFd(int fd, std::shared_ptr<RemoteTarget> target);
void UnregisterRemoteFd(int fd);
// The target registered for `fd`, or null (a plain file or device).
std::shared_ptr<RemoteTarget> LookupRemoteFd(int fd);

}  // namespace lvmfs
