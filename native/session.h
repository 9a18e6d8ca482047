// The FUSE transport. Reader threads, each on its own cloned /dev/fuse fd, read requests into
// slots of one preallocated arena (arena.h). READ/WRITE/FSYNC/FALLOCATE on a mapped volume run
// here through volume I/O (volume-io.h) and are answered here; everything else, and every
// policy decision, goes to TypeScript in batches.
//
// Slot ownership: a slot is FREE, NATIVE (a native thread works on it) or JS (TypeScript was
// handed it by an entry). Each read into a slot starts a new owner generation; every JS call
// that gives a slot back (reply, release, resume, finishWrite) names the generation it was
// handed and is refused when the slot has moved on, so a late answer never reaches another
// request.
#pragma once
#include <linux/fuse.h>
#include <napi.h>
#include <stdint.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "arena.h"
#include "volume-io.h"
#include "volume.h"
#include "worker-pool.h"

namespace lvmfs {

enum SlotState : uint32_t { kSlotFree = 0, kSlotNative = 1, kSlotJs = 2 };

// Per-volume request counters and latency histogram. They live as long as the session, not the
// volume: a remap or an unmap must not reset what a Prometheus scrape reads as a counter.
// Relaxed increments only (no lock, no allocation): nothing is ordered by them.
constexpr int kLatencyBuckets = 27;  // bucket b < 2^b us for b < 26 (2^25 us = 33.6 s); the last: slower
enum VolumeOp : int { kOpRead = 0, kOpWrite = 1, kOpFsync = 2, kOpFallocate = 3, kOpCount = 4 };
struct alignas(64) OpStats {  // its own cache lines: reads and writes do not contend
  std::atomic<uint64_t> ops{0}, bytes{0}, errors{0}, latencyNs{0};
  std::atomic<uint64_t> buckets[kLatencyBuckets] = {};
};
struct VolumeStats {
  OpStats op[kOpCount];
};

struct RingHeader;  // session-ring.h
struct RingIo;
struct RingQueue;
struct RingQueueDeleter {
  void operator()(RingQueue* queue) const;
};

struct Slot {
  uint8_t* base = nullptr;
  uint8_t* meta = nullptr;
  int fd = -1;      // the fd the request came from: its reply must go there
  int owner = -1;   // reader whose free list it belongs to; -1: the shared pool
  uint32_t generation = 0;
  std::atomic<uint64_t> state{kSlotFree};  // generation << 32 | SlotState
  // A volume request's latency runs from its read off /dev/fuse to its reply, gates included.
  uint64_t startNs = 0;
  VolumeStats* stats = nullptr;  // set once the request is known to be a volume's
  // FUSE over io_uring: the queue whose ring entry this slot is (-1: a /dev/fuse slot), the
  // entry's header buffer, and the backing I/O the slot has in flight on that ring.
  int ring = -1;
  RingHeader* ringHeader = nullptr;
  RingIo* ringIo = nullptr;
};

// A slot's request as read(2) lays it out (a ring delivery is laid out the same), and its metadata.
inline SlotMeta* MetaOf(const Slot& slot) { return reinterpret_cast<SlotMeta*>(slot.meta); }
inline fuse_in_header* HeaderOf(const Slot& slot) {
  return reinterpret_cast<fuse_in_header*>(slot.base + kRequestOffset);
}
template <typename T>
T* BodyOf(const Slot& slot) {
  return reinterpret_cast<T*>(slot.base + kRequestOffset + sizeof(fuse_in_header));
}

struct Reader {
  int fd = -1;
  std::thread thread;
  std::atomic<bool> exited{false};
};

struct Counters {
  std::atomic<uint64_t> readOps{0}, writeOps{0}, readBytes{0}, writeBytes{0}, fsyncOps{0},
      fallocateOps{0}, jsRequests{0}, gated{0}, copyErrors{0}, selfRequests{0}, replyErrors{0},
      staleAnswers{0};
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

 private:
  // JS methods
  Napi::Value Mount(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Drain(const Napi::CallbackInfo& info);
  Napi::Value Reply(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value FinishWrite(const Napi::CallbackInfo& info);
  Napi::Value MapVolume(const Napi::CallbackInfo& info);
  Napi::Value UnmapVolume(const Napi::CallbackInfo& info);
  Napi::Value TakeDirtyChunks(const Napi::CallbackInfo& info);
  Napi::Value SetGate(const Napi::CallbackInfo& info);
  Napi::Value DrainWrites(const Napi::CallbackInfo& info);
  Napi::Value NotifyInvalInode(const Napi::CallbackInfo& info);
  Napi::Value NotifyInvalEntry(const Napi::CallbackInfo& info);
  Napi::Value Unmount(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value VolumeStatsOf(const Napi::CallbackInfo& info);
  Napi::Value GetArena(const Napi::CallbackInfo& info);
  Napi::Value GetLayout(const Napi::CallbackInfo& info);
  Napi::Value StartRing(const Napi::CallbackInfo& info);
  Napi::Value ThinSet(const Napi::CallbackInfo& info);
  Napi::Value ThinClearWritable(const Napi::CallbackInfo& info);
  Napi::Value ThinReset(const Napi::CallbackInfo& info);

  // Slots
  uint32_t AllocateSlot(int reader);  // UINT32_MAX when stopping
  void FreeSlot(uint32_t slot);
  // Gives the slot to TypeScript together with the entry that tells it why.
  void HandToJs(uint32_t slot, EntryKind kind, uint32_t extent = 0, uint32_t copy = 0);
  void HandToGate(uint32_t slot, uint64_t region);
  bool TakeFromJs(uint32_t slot, uint32_t generation);
  Napi::Value Refused(const Napi::CallbackInfo& info);

  // Native side
  void ReaderLoop(int index);
  void Handle(uint32_t slot);
  bool IsDaemonThread(uint32_t tid) const;
  bool TryVolumeOp(uint32_t slot);
  // Thin LVs (session-thin.cc): READ and WRITE of blocks the table knows run here; the rest,
  // and any failure, goes to TypeScript.
  bool TryThinOp(uint32_t slot, const std::shared_ptr<Volume>& volume, uint32_t opcode);
  void ExecuteThinRead(uint32_t slot, const std::shared_ptr<Volume>& volume, const VolumeMap& map);
  void ExecuteThinWrite(uint32_t slot, const VolumeMap& map);
  void HandToThinMiss(uint32_t slot, uint64_t block, uint32_t flags);
  std::shared_ptr<ThinTable> ThinTableOf(const Napi::CallbackInfo& info);
  void ExecuteWrite(uint32_t slot, const std::shared_ptr<VolumeMap>& map);
  void ExecuteRead(uint32_t slot, const std::shared_ptr<Volume>& volume,
                   const std::shared_ptr<VolumeMap>& map);
  void ExecuteFsync(uint32_t slot, const std::shared_ptr<VolumeMap>& map);
  void ExecuteFallocate(uint32_t slot, const std::shared_ptr<VolumeMap>& map);
  void FinishNative(uint32_t slot);
  void ReplyNative(uint32_t slot, int error, const void* payload, size_t payloadBytes);
  void CountVolumeReply(const Slot& slot, int error, size_t payloadBytes);
  void Push(const Entry& entry);
  void ResumeNative(uint32_t slot);
  std::shared_ptr<Volume> FindVolume(uint64_t nodeid);
  Napi::Promise Deferred(Napi::Env env, std::function<int()> work);
  void Teardown();
  void BeginRequest(uint32_t slot, uint32_t bytes, uint32_t reader);

  // FUSE over io_uring (session-ring.cc)
  void RingLoop(RingQueue& queue);
  void OnRingRequest(RingQueue& queue, uint32_t slot);
  bool StartRingRead(RingQueue& queue, uint32_t slot, const std::shared_ptr<Volume>& volume);
  bool StartRingWrite(RingQueue& queue, uint32_t slot, const std::shared_ptr<Volume>& volume);
  void OnRingBacking(RingQueue& queue, uint32_t slot, uint32_t transfer, int result);
  void RunSync(uint32_t slot);
  void ReplyRing(uint32_t slot, int error, const void* payload, size_t payloadBytes);
  void StopRings();

  uint32_t maxWrite_;
  uint32_t slotBytes_;
  uint32_t slotCount_;
  uint32_t threadCount_;
  uint32_t slotsPerThread_;
  uint32_t sharedSlots_;
  uint8_t* arena_ = nullptr;
  size_t arenaBytes_ = 0;
  size_t slotMetaOffset_ = 0;
  size_t slotsOffset_ = 0;
  Napi::Reference<Napi::ArrayBuffer> arenaRef_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Reader>> readers_;
  int deviceFd_ = -1;
  std::string mountpoint_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closed_{false};
  std::atomic<int> runningReaders_{0};

  // Free slots: each reader's own, then the shared pool JS-held requests draw on, so a reader
  // keeps serving native requests while TypeScript holds some of its work.
  std::mutex slotsMutex_;
  std::condition_variable slotFreed_;
  std::vector<std::vector<uint32_t>> ownFree_;
  std::vector<uint32_t> sharedFree_;

  std::mutex queueMutex_;
  std::deque<Entry> queue_;
  bool scheduled_ = false;
  Napi::ThreadSafeFunction onBatch_;
  std::atomic<bool> tsfnLive_{false};

  // Replies hold it shared; teardown takes it exclusive to close the fds, after which replies
  // are dropped rather than written to a closed (or reused) fd number.
  std::shared_mutex fdsMutex_;
  bool fdsClosed_ = false;

  std::unique_ptr<WorkerPool> resumePool_;   // requests TypeScript gave back (gates, policy)
  std::unique_ptr<WorkerPool> controlPool_;  // drains, notifications, unmount

  std::shared_mutex volumesMutex_;
  std::unordered_map<uint64_t, std::shared_ptr<Volume>> volumes_;
  std::unordered_map<uint64_t, std::unique_ptr<VolumeStats>> volumeStats_;  // under volumesMutex_
  Counters counters_;

  // FUSE over io_uring: one queue per possible CPU, `ringDepth_` entries each, on the slots
  // from `ringSlotBase_` on (never in a free list: an entry is re-armed by its commit).
  uint32_t ringDepth_ = 0;
  uint32_t ringQueueCount_ = 0;
  uint32_t ringSlotBase_ = 0;
  RingHeader* ringHeaders_ = nullptr;
  std::vector<std::unique_ptr<RingQueue, RingQueueDeleter>> rings_;
  // Volume requests a ring cannot run without waiting (several extents, a fault, a failure to
  // report, fsync, fallocate) run here, synchronously, as a /dev/fuse reader would.
  std::unique_ptr<WorkerPool> syncPool_;
};

}  // namespace lvmfs
