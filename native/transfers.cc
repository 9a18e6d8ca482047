#include "transfers.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"

#ifdef LVMFS_HAVE_URING
#include <liburing.h>
#endif

namespace lvmfs {

namespace {

bool Aligned(const CopyTarget& copy, uint64_t offset, uint64_t length, const void* buffer) {
  uint64_t align = copy.alignBytes;
  return (offset % align) == 0 && (length % align) == 0 &&
         (reinterpret_cast<uintptr_t>(buffer) % align) == 0;
}

int SyncFd(int fd, bool dataOnly) {
  if (int fault = InjectedSyncFault(fd)) return fault;
  if (auto remote = LookupRemoteFd(fd)) return RemoteTransfer(*remote, RemoteOp::kFlush, nullptr, 0, 0);
  return (dataOnly ? fdatasync(fd) : fsync(fd)) == 0 ? 0 : -errno;
}

void RunOne(Transfer& transfer) {
  switch (transfer.op) {
    case kTransferRead:
    case kTransferWrite:
      transfer.result = TransferFull(*transfer.copy, transfer.op == kTransferWrite, transfer.buffer,
                                     transfer.length, transfer.offset);
      return;
    case kTransferSync:
    case kTransferDataSync:
      transfer.result = SyncFd(transfer.fd, transfer.op == kTransferDataSync);
      return;
  }
}

// Starts the batch's transfers to remote targets, which run on their connections' threads while
// the rest go through the ring; their results are set by FinishRemote.
// Empty (no allocation) when the batch has no remote transfer: the common, all-local case.
std::vector<std::unique_ptr<RemoteWaiter>> StartRemote(std::vector<Transfer>& batch) {
  std::vector<std::unique_ptr<RemoteWaiter>> waiters;
  for (size_t i = 0; i < batch.size(); i++) {
    Transfer& transfer = batch[i];
    bool sync = transfer.op == kTransferSync || transfer.op == kTransferDataSync;
    std::shared_ptr<RemoteTarget> remote = sync ? LookupRemoteFd(transfer.fd) : transfer.copy->remote;
    if (!remote) continue;
    int fault = sync ? InjectedSyncFault(transfer.fd)
                     : InjectedFault(transfer.copy->fd, transfer.op == kTransferWrite, transfer.offset, transfer.length);
    transfer.result = fault != 0 ? fault : -ENOTCONN;
    if (fault != 0) continue;
    auto waiter = std::make_unique<RemoteWaiter>();
    RemoteOp op = sync ? RemoteOp::kFlush : transfer.op == kTransferWrite ? RemoteOp::kWrite : RemoteOp::kRead;
    if (!remote->Start(op, transfer.buffer, transfer.length, transfer.offset, waiter.get())) continue;
    if (waiters.empty()) waiters.resize(batch.size());
    waiters[i] = std::move(waiter);
  }
  return waiters;
}

void FinishRemote(std::vector<Transfer>& batch, std::vector<std::unique_ptr<RemoteWaiter>>& waiters) {
  for (size_t i = 0; i < waiters.size(); i++) {
    if (waiters[i]) batch[i].result = waiters[i]->Wait();
  }
}

bool IsRemote(const Transfer& transfer) {
  bool sync = transfer.op == kTransferSync || transfer.op == kTransferDataSync;
  return sync ? LookupRemoteFd(transfer.fd) != nullptr : transfer.copy->remote != nullptr;
}

#ifdef LVMFS_HAVE_URING
constexpr unsigned kRingEntries = 64;

// One ring per thread that runs batches (readers, resume threads), set up on first use.
struct ThreadRing {
  struct io_uring ring;
  bool ready = false;
  bool refused = false;
  ~ThreadRing() {
    if (ready) io_uring_queue_exit(&ring);
  }
  bool Ensure() {
    if (ready || refused) return ready;
    ready = io_uring_queue_init(kRingEntries, &ring, 0) == 0;
    refused = !ready;
    return ready;
  }
};
thread_local ThreadRing tRing;

// Prepares one transfer, or settles it at once (an injected fault). False: no SQE left.
bool Prepare(struct io_uring& ring, Transfer& transfer, bool* settled) {
  *settled = false;
  if (IsRemote(transfer)) {
    *settled = true;  // started by StartRemote, finished by FinishRemote
    return true;
  }
  if (transfer.op == kTransferSync || transfer.op == kTransferDataSync) {
    if (int fault = InjectedSyncFault(transfer.fd)) {
      transfer.result = fault;
      *settled = true;
      return true;
    }
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) return false;
    io_uring_prep_fsync(sqe, transfer.fd, transfer.op == kTransferDataSync ? IORING_FSYNC_DATASYNC : 0);
    io_uring_sqe_set_data(sqe, &transfer);
    return true;
  }
  const CopyTarget& copy = *transfer.copy;
  bool write = transfer.op == kTransferWrite;
  if (int fault = InjectedFault(copy.fd, write, transfer.offset, transfer.length)) {
    transfer.result = fault;
    *settled = true;
    return true;
  }
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == nullptr) return false;
  int fd = copy.direct && Aligned(copy, transfer.offset, transfer.length, transfer.buffer)
               ? copy.fd : copy.bufferedFd;
  if (write) io_uring_prep_write(sqe, fd, transfer.buffer, static_cast<unsigned>(transfer.length), transfer.offset);
  else io_uring_prep_read(sqe, fd, transfer.buffer, static_cast<unsigned>(transfer.length), transfer.offset);
  io_uring_sqe_set_data(sqe, &transfer);
  return true;
}

// A completion: whole, failed, or partial (finished synchronously, as are O_DIRECT refusals,
// which TransferFull retries through the buffered fd).
void Complete(Transfer& transfer, int res) {
  if (transfer.op == kTransferSync || transfer.op == kTransferDataSync) {
    transfer.result = res < 0 ? res : 0;
    return;
  }
  bool write = transfer.op == kTransferWrite;
  if (res == -EINVAL || res == -EAGAIN || res == -EINTR) {
    transfer.result = TransferFull(*transfer.copy, write, transfer.buffer, transfer.length, transfer.offset);
  } else if (res < 0) {
    transfer.result = res;
  } else if (res == 0 && transfer.length > 0) {
    transfer.result = -EIO;  // end of file before the end of the copy: a truncated PV
  } else if (static_cast<uint64_t>(res) < transfer.length) {
    uint64_t done = static_cast<uint64_t>(res);
    transfer.result = TransferFull(*transfer.copy, write, transfer.buffer + done, transfer.length - done,
                                   transfer.offset + done);
  } else {
    transfer.result = 0;
  }
}
#endif

}  // namespace

int TransferFull(const CopyTarget& copy, bool write, uint8_t* buffer, uint64_t length,
                 uint64_t offset) {
  if (int fault = InjectedFault(copy.fd, write, offset, length)) return fault;
  if (copy.remote) return RemoteTransfer(*copy.remote, write ? RemoteOp::kWrite : RemoteOp::kRead, buffer, length, offset);
  int fd = FdFor(copy, offset, length, buffer);
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = write ? pwrite(fd, buffer + done, length - done, offset + done)
                      : pread(fd, buffer + done, length - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && fd != copy.bufferedFd) {
        fd = copy.bufferedFd;
        continue;
      }
      return -errno;
    }
    // End of file before the end of the copy: the PV is shorter than its label says.
    if (n == 0) return -EIO;
    done += static_cast<uint64_t>(n);
  }
  return 0;
}

int FdFor(const CopyTarget& copy, uint64_t offset, uint64_t length, const void* buffer) {
  return copy.direct && Aligned(copy, offset, length, buffer) ? copy.fd : copy.bufferedFd;
}

void RunInOrder(std::vector<Transfer>& batch) {
  for (Transfer& transfer : batch) RunOne(transfer);
}

bool RingAvailable() {
#ifdef LVMFS_HAVE_URING
  return tRing.Ensure();
#else
  return false;
#endif
}

void RunAtOnce(std::vector<Transfer>& batch) {
#ifdef LVMFS_HAVE_URING
  if (batch.size() <= 1 || !tRing.Ensure()) return RunInOrder(batch);
  std::vector<std::unique_ptr<RemoteWaiter>> remoteWaiters = StartRemote(batch);
  struct RemoteFinisher {
    std::vector<Transfer>& batch;
    std::vector<std::unique_ptr<RemoteWaiter>>& waiters;
    ~RemoteFinisher() { FinishRemote(batch, waiters); }
  } finisher{batch, remoteWaiters};
  struct io_uring& ring = tRing.ring;
  size_t next = 0;
  unsigned inflight = 0;
  while (next < batch.size() || inflight > 0) {
    while (next < batch.size()) {
      bool settled = false;
      if (!Prepare(ring, batch[next], &settled)) break;
      next++;
      if (!settled) inflight++;
    }
    if (inflight == 0) continue;
    int submitted;
    for (;;) {
      submitted = io_uring_submit_and_wait(&ring, 1);
      if (submitted >= 0 || submitted == -EINTR) break;
      if (submitted != -EAGAIN && submitted != -EBUSY) break;
      usleep(100);  // out of kernel resources for a moment
    }
    if (submitted == -EINTR) continue;
    if (submitted < 0) {
      // The ring itself failed: nothing more is submitted through it; wait out what is in flight.
      struct io_uring_cqe* cqe;
      while (inflight > 0 && io_uring_wait_cqe(&ring, &cqe) == 0) {
        Complete(*static_cast<Transfer*>(io_uring_cqe_get_data(cqe)), cqe->res);
        io_uring_cqe_seen(&ring, cqe);
        inflight--;
      }
      for (; next < batch.size(); next++) RunOne(batch[next]);
      return;
    }
    struct io_uring_cqe* cqe;
    while (inflight > 0 && io_uring_peek_cqe(&ring, &cqe) == 0) {
      Complete(*static_cast<Transfer*>(io_uring_cqe_get_data(cqe)), cqe->res);
      io_uring_cqe_seen(&ring, cqe);
      inflight--;
    }
  }
#else
  RunInOrder(batch);
#endif
}

}  // namespace lvmfs
