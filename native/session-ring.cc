// FUSE over io_uring: the session's queues (session-ring.h has the design).
#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>

#include "errors.h"
#include "faults.h"
#include "session-ring.h"
#include "session.h"

#ifdef LVMFS_HAVE_URING
#include <liburing.h>
#include <sys/eventfd.h>
#endif

namespace lvmfs {

bool AllocateRingHeaders(uint32_t count, RingHeader** headers) {
  void* memory = nullptr;
  if (posix_memalign(&memory, 4096, sizeof(RingHeader) * count) != 0) return false;
  memset(memory, 0, sizeof(RingHeader) * count);
  *headers = static_cast<RingHeader*>(memory);
  return true;
}

// A write of up to 4 extents of 3 copies goes out from the ring; a wider one runs blocking.
constexpr uint32_t kMaxRingTransfers = 12;

// The backing I/O one entry has in flight. The map is held so its fds stay open until the last
// completion; a write stays counted in flight (for DrainWrites) until then.
struct RingIo {
  std::shared_ptr<Volume> volume;
  std::shared_ptr<VolumeMap> map;
  int generation = 0;
  uint32_t pending = 0;
  bool failed = false;
  uint64_t length = 0;
  uint32_t readExtent = 0, readCopy = 0;
  int error = 0;  // the last failed transfer's
  uint32_t expected[kMaxRingTransfers] = {};
};

#ifdef LVMFS_HAVE_URING

struct RingQueue {
  uint32_t qid = 0;
  struct io_uring ring;
  int wakeFd = -1;
  uint64_t wakeValue = 0;
  std::thread thread;
  uint32_t backingInFlight = 0;  // the queue's thread only
  std::atomic<bool> stop{false};  // this queue alone (a failed start); teardown sets stopping_
  std::vector<RingIo> io;        // per entry
  std::vector<struct iovec> iov; // 2 per entry, read by the kernel at REGISTER
  // Replies made on other threads (TypeScript, the blocking fallbacks), for the queue's thread
  // to commit: it alone submits to its ring.
  std::mutex mailboxMutex;
  std::vector<uint32_t> mailbox;
  bool stopped = false;
  // StartRing waits for the queue's registration outcome.
  std::mutex startMutex;
  std::condition_variable startDone;
  bool started = false;
  int startError = 0;
};

void RingQueueDeleter::operator()(RingQueue* queue) const { delete queue; }

namespace {

thread_local RingQueue* tQueue = nullptr;

enum RingTag : uint64_t { kTagFuse = 1, kTagBacking = 2, kTagWake = 3 };
uint64_t Tag(uint32_t slot, uint32_t transfer, RingTag tag) {
  return (static_cast<uint64_t>(slot) << 16) | (static_cast<uint64_t>(transfer) << 4) | tag;
}

io_uring_sqe* NextSqe(io_uring& ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == nullptr) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

void PrepFuseCommand(RingQueue& queue, int fuseFd, uint32_t slotId, RingCommand command,
                     uint64_t commitId, const struct iovec* iov) {
  io_uring_sqe* sqe = NextSqe(queue.ring);
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fuseFd, iov, iov ? 2 : 0, 0);
  sqe->cmd_op = command;
  memset(sqe->cmd, 0, 80);  // an SQE128's command area
  RingCommandReq* req = reinterpret_cast<RingCommandReq*>(sqe->cmd);
  req->qid = static_cast<uint16_t>(queue.qid);
  req->commitId = commitId;
  io_uring_sqe_set_data64(sqe, Tag(slotId, 0, kTagFuse));
}

void ArmWake(RingQueue& queue) {
  io_uring_sqe* sqe = NextSqe(queue.ring);
  io_uring_prep_read(sqe, queue.wakeFd, &queue.wakeValue, sizeof(queue.wakeValue), 0);
  io_uring_sqe_set_data64(sqe, Tag(0, 0, kTagWake));
}

void PinTo(uint32_t cpu) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(cpu, &cpus);
  pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);  // a cpuset may forbid it: fine
}

}  // namespace

Napi::Value Session::StartRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ringDepth_ == 0) return ThrowErrno(env, EINVAL, "startRing: the session has no ring entries");
  if (deviceFd_ < 0) return ThrowErrno(env, EBADF, "startRing before mount");
  if (!rings_.empty()) return Napi::Number::New(env, static_cast<double>(rings_.size()));
  for (uint32_t q = 0; q < ringQueueCount_; q++) {
    auto queue = std::unique_ptr<RingQueue, RingQueueDeleter>(new RingQueue());
    queue->qid = q;
    queue->io.resize(ringDepth_);
    queue->iov.resize(size_t(ringDepth_) * 2);
    RingQueue* raw = queue.get();
    rings_.push_back(std::move(queue));
    raw->thread = StartThread("lvmfs-ring", [this, raw] { RingLoop(*raw); });
  }
  int error = 0;
  for (auto& queue : rings_) {
    std::unique_lock<std::mutex> lock(queue->startMutex);
    queue->startDone.wait(lock, [&] { return queue->started; });
    if (queue->startError != 0 && error == 0) error = queue->startError;
  }
  if (error != 0) {
    StopRings();
    rings_.clear();
    for (uint32_t s = ringSlotBase_; s < slotCount_; s++) slots_[s].ring = -1;
    return ThrowErrno(env, -error, "FUSE_IO_URING_CMD_REGISTER");
  }
  return Napi::Number::New(env, static_cast<double>(rings_.size()));
}

void Session::RingLoop(RingQueue& queue) {
  tQueue = &queue;
  PinTo(queue.qid);
  auto report = [&](int error) {
    std::lock_guard<std::mutex> lock(queue.startMutex);
    queue.started = true;
    queue.startError = error;
    queue.startDone.notify_all();
  };
  io_uring_params params = {};
  params.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  unsigned entries = 1;
  while (entries < ringDepth_ * 4) entries <<= 1;
  int error = io_uring_queue_init_params(entries, &queue.ring, &params);
  if (error < 0) return report(error);
  queue.wakeFd = eventfd(0, EFD_CLOEXEC);
  if (queue.wakeFd < 0) {
    io_uring_queue_exit(&queue.ring);
    return report(-errno);
  }
  for (uint32_t i = 0; i < ringDepth_; i++) {
    uint32_t slotId = ringSlotBase_ + queue.qid * ringDepth_ + i;
    Slot& slot = slots_[slotId];
    slot.ring = static_cast<int>(queue.qid);
    slot.ringHeader = &ringHeaders_[slotId - ringSlotBase_];
    slot.ringIo = &queue.io[i];
    queue.iov[2 * i] = {slot.ringHeader, sizeof(RingHeader)};
    queue.iov[2 * i + 1] = {slot.base + kPayloadOffset, slotBytes_ - kPayloadOffset};
    PrepFuseCommand(queue, deviceFd_, slotId, kRingRegister, 0, &queue.iov[2 * i]);
  }
  ArmWake(queue);
  io_uring_submit(&queue.ring);
  // A refused REGISTER (uring off for the connection, a bad buffer) completes at once. So may
  // a request, once every queue has entries: it is served below, not dropped.
  io_uring_cqe* cqe;
  unsigned head, seen = 0;
  std::vector<uint32_t> early;
  io_uring_for_each_cqe(&queue.ring, head, cqe) {
    seen++;
    if ((cqe->user_data & 0xf) != kTagFuse) continue;
    if (cqe->res < 0 && error == 0) error = cqe->res;
    if (cqe->res == 0) early.push_back(static_cast<uint32_t>(cqe->user_data >> 16));
  }
  io_uring_cq_advance(&queue.ring, seen);
  report(error);
  if (error != 0) {
    io_uring_queue_exit(&queue.ring);
    close(queue.wakeFd);
    queue.wakeFd = -1;
    return;
  }
  for (uint32_t slotId : early) OnRingRequest(queue, slotId);
  std::vector<uint32_t> commits;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(queue.mailboxMutex);
      commits.swap(queue.mailbox);
    }
    for (uint32_t slotId : commits) {
      PrepFuseCommand(queue, deviceFd_, slotId, kRingCommitAndFetch, HeaderOf(slots_[slotId])->unique, nullptr);
    }
    commits.clear();
    bool leaving = stopping_ || queue.stop;
    if (leaving && queue.backingInFlight == 0) break;
    int submitted = io_uring_submit_and_wait(&queue.ring, 1);
    if (submitted < 0 && submitted != -EINTR && submitted != -EAGAIN && submitted != -EBUSY) break;
    seen = 0;
    io_uring_for_each_cqe(&queue.ring, head, cqe) {
      seen++;
      uint64_t data = cqe->user_data;
      uint32_t slotId = static_cast<uint32_t>(data >> 16);
      switch (data & 0xf) {
        case kTagWake:
          if (!stopping_ && !queue.stop) ArmWake(queue);
          break;
        case kTagBacking:
          queue.backingInFlight--;
          OnRingBacking(queue, slotId, static_cast<uint32_t>((data >> 4) & 0xfff), cqe->res);
          break;
        case kTagFuse:
          // Negative: the entry is gone (the connection aborted, the ring is exiting).
          if (cqe->res == 0 && !leaving) OnRingRequest(queue, slotId);
          break;
      }
    }
    io_uring_cq_advance(&queue.ring, seen);
  }
  {
    std::lock_guard<std::mutex> lock(queue.mailboxMutex);
    queue.stopped = true;
  }
  io_uring_queue_exit(&queue.ring);
  tQueue = nullptr;
}

void Session::StopRings() {
  for (auto& queue : rings_) {
    if (!queue->thread.joinable()) continue;
    queue->stop = true;
    if (queue->wakeFd >= 0) {
      uint64_t one = 1;
      while (write(queue->wakeFd, &one, sizeof(one)) < 0 && errno == EINTR) {
      }
    }
    queue->thread.join();
    if (queue->wakeFd >= 0) close(queue->wakeFd);
    queue->wakeFd = -1;
  }
}

// The request in an entry, laid out in its slot as read(2) would have: header, op header,
// then the other arguments (so a WRITE's data stays where the kernel put it, page-aligned).
void Session::OnRingRequest(RingQueue& queue, uint32_t slotId) {
  Slot& slot = slots_[slotId];
  RingHeader& ring = *slot.ringHeader;
  fuse_in_header in;
  memcpy(&in, ring.inOut, sizeof(in));
  uint32_t payload = ring.entry.payloadBytes;
  uint8_t* frame = slot.base + kRequestOffset;
  bool sane = in.len >= sizeof(in) + payload && in.len - sizeof(in) - payload <= sizeof(ring.opIn);
  uint32_t opBytes = sane ? in.len - static_cast<uint32_t>(sizeof(in)) - payload : 0;
  uint8_t* delivered = slot.base + kPayloadOffset;
  uint8_t* wanted = frame + sizeof(in) + opBytes;
  // Only an op header longer than a WRITE's moves the payload up; it must still fit the slot.
  sane = sane && wanted + payload <= slot.base + slotBytes_;
  if (sane && payload > 0 && wanted != delivered) memmove(wanted, delivered, payload);
  memcpy(frame, &in, sizeof(in));
  memcpy(frame + sizeof(in), ring.opIn, opBytes);
  BeginRequest(slotId, sane ? in.len : static_cast<uint32_t>(sizeof(in)), threadCount_ + queue.qid);
  if (!sane) return ReplyNative(slotId, -EIO, nullptr, 0);
  MetaOf(slot)->nodeid = in.nodeid;
  uint32_t opcode = in.opcode;
  if (opcode == FUSE_READ || opcode == FUSE_WRITE || opcode == FUSE_FSYNC || opcode == FUSE_FALLOCATE) {
    std::shared_ptr<Volume> volume = FindVolume(in.nodeid);
    if (volume) {
      slot.stats = volume->stats;
      if (opcode == FUSE_READ && StartRingRead(queue, slotId, volume)) return;
      if (opcode == FUSE_WRITE && StartRingWrite(queue, slotId, volume)) return;
      return RunSync(slotId);
    }
  }
  Handle(slotId);  // TypeScript's (or refused as a self-request): nothing here waits
}

void Session::RunSync(uint32_t slotId) {
  if (!syncPool_->Post([this, slotId] { Handle(slotId); })) ReplyNative(slotId, -EIO, nullptr, 0);
}

bool Session::StartRingRead(RingQueue& queue, uint32_t slotId, const std::shared_ptr<Volume>& volume) {
  Slot& slot = slots_[slotId];
  auto* in = BodyOf<fuse_read_in>(slot);
  std::shared_ptr<VolumeMap> map = volume->Current();
  if (!map || map->thin) return false;  // thin LVs run on the sync pool (session-thin.cc)
  uint64_t offset = in->offset;
  uint64_t length = std::min<uint64_t>(in->size, maxWrite_);
  length = offset >= map->sizeBytes ? 0 : std::min(length, map->sizeBytes - offset);
  uint64_t within = offset % map->extentBytes;
  if (length == 0 || within + length > map->extentBytes) return false;
  uint32_t extentIndex = static_cast<uint32_t>(offset / map->extentBytes);
  const Extent& extent = map->extents[extentIndex];
  uint32_t start = volume->roundRobin.fetch_add(1, std::memory_order_relaxed);
  const CopyTarget* copy = nullptr;
  int copyIndex = -1;
  for (int attempt = 0; attempt < extent.count && copy == nullptr; attempt++) {
    int index = ReadAttemptCopy(*map, extent, start, attempt);
    const CopyTarget& candidate = extent.copies[index];
    if (candidate.stale || candidate.fd < 0) continue;
    copy = &candidate;
    copyIndex = index;
  }
  uint64_t at = copy ? copy->offsetBytes + within : 0;
  // A remote copy's transfer waits on its connection: the blocking path runs it.
  if (copy == nullptr || copy->remote || HasFault(copy->fd, at, length)) return false;
  uint8_t* buffer = slot.base + kPayloadOffset;
  RingIo& io = *slot.ringIo;
  io.volume = volume;
  io.map = map;
  io.pending = 1;
  io.failed = false;
  io.length = length;
  io.expected[0] = static_cast<uint32_t>(length);
  io.readExtent = extentIndex;
  io.readCopy = static_cast<uint32_t>(copyIndex);
  io_uring_sqe* sqe = NextSqe(queue.ring);
  io_uring_prep_read(sqe, FdFor(*copy, at, length, buffer), buffer, static_cast<unsigned>(length), at);
  io_uring_sqe_set_data64(sqe, Tag(slotId, 0, kTagBacking));
  queue.backingInFlight++;
  return true;
}

bool Session::StartRingWrite(RingQueue& queue, uint32_t slotId, const std::shared_ptr<Volume>& volume) {
  Slot& slot = slots_[slotId];
  auto* in = BodyOf<fuse_write_in>(slot);
  // Counted in flight before the gates are looked at, as TryVolumeOp does, until the last copy
  // completes.
  int generation = volume->generation.load(std::memory_order_seq_cst);
  volume->inflight[generation].fetch_add(1, std::memory_order_seq_cst);
  auto blocking = [&] {
    volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
    return false;
  };
  std::shared_ptr<VolumeMap> map = volume->Current();
  uint64_t offset = in->offset;
  uint64_t length = in->size;
  if (!map || map->thin || map->readOnly || map->writeSchedule != kWriteParallel || length == 0 || offset >= map->sizeBytes) {
    return blocking();
  }
  length = std::min(length, map->sizeBytes - offset);
  int64_t closed = FirstClosedRegion(*map, offset, length);
  if (closed >= 0) {
    volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
    HandToGate(slotId, static_cast<uint64_t>(closed));
    return true;
  }
  struct Planned {
    int fd;
    uint64_t at;
    uint8_t* buffer;
    uint32_t length;
  } plan[kMaxRingTransfers];
  uint32_t count = 0;
  uint8_t* data = slot.base + kPayloadOffset;
  for (uint64_t done = 0; done < length;) {
    uint64_t position = offset + done;
    uint64_t within = position % map->extentBytes;
    uint64_t segment = std::min(length - done, map->extentBytes - within);
    const Extent& extent = map->extents[position / map->extentBytes];
    int written = 0, fresh = 0;
    for (int c = 0; c < extent.count; c++) {
      const CopyTarget& copy = extent.copies[c];
      if (!Written(copy)) continue;
      uint64_t at = copy.offsetBytes + within;
      if (count == kMaxRingTransfers || copy.remote || HasFault(copy.fd, at, segment)) return blocking();
      plan[count++] = {FdFor(copy, at, segment, data + done), at, data + done, static_cast<uint32_t>(segment)};
      written++;
      if (!copy.stale) fresh++;
    }
    if (fresh == 0) return blocking();  // a lost extent: the blocking path reports it
    // Marked before the write, not after: a bit too early only costs a resync of the chunk.
    if (written < extent.count && map->dirty) map->dirty->Mark(position, segment);
    done += segment;
  }
  RingIo& io = *slot.ringIo;
  io.volume = volume;
  io.map = map;
  io.generation = generation;
  io.pending = count;
  io.failed = false;
  io.length = length;
  for (uint32_t t = 0; t < count; t++) {
    io.expected[t] = plan[t].length;
    io_uring_sqe* sqe = NextSqe(queue.ring);
    io_uring_prep_write(sqe, plan[t].fd, plan[t].buffer, plan[t].length, plan[t].at);
    io_uring_sqe_set_data64(sqe, Tag(slotId, t, kTagBacking));
    queue.backingInFlight++;
  }
  return true;
}

void Session::OnRingBacking(RingQueue&, uint32_t slotId, uint32_t transfer, int result) {
  Slot& slot = slots_[slotId];
  RingIo& io = *slot.ringIo;
  if (result < 0 || static_cast<uint32_t>(result) != io.expected[transfer]) {
    io.failed = true;
    io.error = result < 0 ? result : -EIO;
  }
  if (--io.pending > 0) return;
  uint32_t opcode = HeaderOf(slot)->opcode;
  if (opcode == FUSE_WRITE) io.volume->inflight[io.generation].fetch_sub(1, std::memory_order_seq_cst);
  bool failed = io.failed;
  uint64_t length = io.length;
  io.map.reset();
  io.volume.reset();
  if (failed) {
    // The blocking path retries (a short transfer, an O_DIRECT refusal), fails over between
    // copies and reports what still fails; a read's failed copy is reported here, since the
    // retry may be served by another.
    if (opcode == FUSE_READ) {
      counters_.copyErrors++;
      Push(Entry{kEntryReadError, UINT32_MAX, HeaderOf(slot)->nodeid, io.readExtent, io.readCopy, io.error, 0});
    }
    return RunSync(slotId);
  }
  if (opcode == FUSE_READ) {
    counters_.readOps++;
    counters_.readBytes += length;
    return ReplyNative(slotId, 0, slot.base + kPayloadOffset, length);
  }
  MetaOf(slot)->writtenBytes = static_cast<uint32_t>(length);
  FinishNative(slotId);
}

// Any thread: the reply goes into the entry's header and payload buffers, and the queue's
// thread commits it (fetching the entry's next request).
void Session::ReplyRing(uint32_t slotId, int error, const void* payload, size_t payloadBytes) {
  Slot& slot = slots_[slotId];
  RingHeader& ring = *slot.ringHeader;
  uint8_t* area = slot.base + kPayloadOffset;
  size_t bytes = error == 0 ? payloadBytes : 0;
  uint32_t opcode = HeaderOf(slot)->opcode;
  bool sized = opcode == FUSE_READ || opcode == FUSE_READDIR || opcode == FUSE_READDIRPLUS;
  if (sized && bytes > BodyOf<fuse_read_in>(slot)->size) {
    // /dev/fuse would refuse the writev (EINVAL); a ring's commit ends the request with no word
    // to the server, so the refusal is made, logged and counted here.
    counters_.replyErrors++;
    Push(Entry{kEntryReplyFailed, slotId, HeaderOf(slot)->unique, opcode, 0, -EINVAL, 0});
    error = -EIO;
    bytes = 0;
  }
  if (bytes > 0 && payload != area) memmove(area, payload, bytes);
  fuse_out_header out = {};
  out.unique = HeaderOf(slot)->unique;
  out.error = error;
  out.len = static_cast<uint32_t>(sizeof(out) + bytes);
  memcpy(ring.inOut, &out, sizeof(out));
  ring.entry.payloadBytes = static_cast<uint32_t>(bytes);
  FreeSlot(slotId);
  RingQueue& queue = *rings_[static_cast<size_t>(slot.ring)];
  if (tQueue == &queue) {
    PrepFuseCommand(queue, deviceFd_, slotId, kRingCommitAndFetch, out.unique, nullptr);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(queue.mailboxMutex);
    if (queue.stopped) return;  // torn down: the connection's abort ends the request
    queue.mailbox.push_back(slotId);
  }
  uint64_t one = 1;
  while (write(queue.wakeFd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

#else  // built without liburing: /dev/fuse only

struct RingQueue {};
void RingQueueDeleter::operator()(RingQueue* queue) const { delete queue; }

Napi::Value Session::StartRing(const Napi::CallbackInfo& info) {
  return ThrowErrno(info.Env(), ENOSYS, "startRing: built without liburing");
}
void Session::RingLoop(RingQueue&) {}
void Session::StopRings() {}
void Session::OnRingRequest(RingQueue&, uint32_t) {}
void Session::RunSync(uint32_t slotId) { Handle(slotId); }
bool Session::StartRingRead(RingQueue&, uint32_t, const std::shared_ptr<Volume>&) { return false; }
bool Session::StartRingWrite(RingQueue&, uint32_t, const std::shared_ptr<Volume>&) { return false; }
void Session::OnRingBacking(RingQueue&, uint32_t, uint32_t, int) {}
void Session::ReplyRing(uint32_t slotId, int, const void*, size_t) { FreeSlot(slotId); }

#endif

}  // namespace lvmfs
