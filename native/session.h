// The FUSE transport and I/O executor. Reader threads, each on its own cloned /dev/fuse fd,
// read requests into slots of one preallocated arena. READ/WRITE/FSYNC/FALLOCATE on a mapped
// volume run here (pread/pwrite/fdatasync/fallocate on backing fds) and are answered here;
// everything else, and every policy decision, goes to TypeScript in batches.
#pragma once
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

#include "volume.h"

namespace lvmfs {

// Arena layout, mirrored in src/fuse/native-session.ts (exported as `layout`).
constexpr uint32_t kEntryBytes = 32;
constexpr uint32_t kMaxEntries = 4096;
constexpr uint32_t kSlotMetaBytes = 64;
constexpr uint32_t kPayloadOffset = 4096;
constexpr uint32_t kRequestOffset = kPayloadOffset - 80;  // WRITE data lands page-aligned
constexpr uint32_t kMaxSegments = 2;

enum EntryKind : uint32_t {
  kEntryRequest = 1,     // slot owned by JS: reply() or release()
  kEntryGate = 2,        // slot owned by JS: open the gate, then resume() (or reply())
  kEntryWriteError = 3,  // slot owned by JS: finishWrite(errno) after policy reacted
  kEntryReadError = 4,   // notification only: a copy failed a read, another served it
  kEntryClosed = 5,      // all readers stopped (unmounted or aborted)
};

struct Entry {
  uint32_t kind;
  uint32_t slot;
  uint64_t nodeid;
  uint32_t extent;
  uint32_t copy;
  int32_t error;
  uint32_t pad;
};
static_assert(sizeof(Entry) == kEntryBytes, "entry layout");

struct Slot {
  uint8_t* base = nullptr;
  uint8_t* meta = nullptr;
  int fd = -1;
  int reader = 0;
  uint32_t requestBytes = 0;
};

struct Reader {
  int fd = -1;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable freed;
  std::vector<uint32_t> freeSlots;
};

struct Counters {
  std::atomic<uint64_t> readOps{0}, writeOps{0}, readBytes{0}, writeBytes{0}, fsyncOps{0},
      fallocateOps{0}, jsRequests{0}, gated{0}, copyErrors{0}, selfRequests{0};
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
  Napi::Value SetGate(const Napi::CallbackInfo& info);
  Napi::Value DrainWrites(const Napi::CallbackInfo& info);
  Napi::Value NotifyInvalInode(const Napi::CallbackInfo& info);
  Napi::Value NotifyInvalEntry(const Napi::CallbackInfo& info);
  Napi::Value Unmount(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value GetArena(const Napi::CallbackInfo& info);
  Napi::Value GetLayout(const Napi::CallbackInfo& info);

  // Native side
  void ReaderLoop(int index);
  void Handle(uint32_t slot);
  bool TryVolumeOp(uint32_t slot, uint32_t opcode, uint64_t nodeid);
  void ExecuteWrite(uint32_t slot, const std::shared_ptr<Volume>& volume,
                    const std::shared_ptr<VolumeMap>& map);
  void ExecuteRead(uint32_t slot, const std::shared_ptr<Volume>& volume,
                   const std::shared_ptr<VolumeMap>& map);
  void ExecuteFsync(uint32_t slot, const std::shared_ptr<VolumeMap>& map);
  void ExecuteFallocate(uint32_t slot, uint64_t nodeid, const std::shared_ptr<VolumeMap>& map);
  void ReplyNative(uint32_t slot, int error, const void* payload, size_t payloadBytes,
                   const void* payload2 = nullptr, size_t payload2Bytes = 0);
  void FreeSlot(uint32_t slot);
  void Push(const Entry& entry);
  void Post(std::function<void()> job);
  void ExecutorLoop();
  std::shared_ptr<Volume> FindVolume(uint64_t nodeid);
  Napi::Promise Deferred(Napi::Env env, std::function<int()> work);

  uint32_t maxWrite_;
  uint32_t slotBytes_;
  uint32_t slotCount_;
  uint32_t threadCount_;
  uint32_t slotsPerThread_;
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
  std::atomic<int> runningReaders_{0};

  std::mutex queueMutex_;
  std::deque<Entry> queue_;
  bool scheduled_ = false;
  Napi::ThreadSafeFunction onBatch_;
  bool tsfnLive_ = false;

  std::mutex jobsMutex_;
  std::condition_variable jobsReady_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> executors_;

  std::shared_mutex volumesMutex_;
  std::unordered_map<uint64_t, std::shared_ptr<Volume>> volumes_;
  Counters counters_;
};

}  // namespace lvmfs
