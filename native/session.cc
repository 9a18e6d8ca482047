#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "errors.h"
#include "mount.h"
#include "session-ring.h"
#include "volume-io-binding.h"
#include "volume-spec.h"

#ifndef FUSE_DEV_IOC_CLONE
#define FUSE_DEV_IOC_CLONE _IOR(229, 0, uint32_t)
#endif

namespace lvmfs {

namespace {

constexpr uint32_t kFuseInHeaderBytes = sizeof(struct fuse_in_header);
constexpr uint32_t kResumeThreads = 8;
constexpr uint32_t kControlThreads = 2;
// A ring's blocking fallbacks: as many as /dev/fuse readers would have run at once per queue.
constexpr uint32_t kRingSyncThreads = 16;
constexpr uint32_t kNoSlot = UINT32_MAX;

uint64_t StateWord(uint32_t generation, SlotState state) {
  return (static_cast<uint64_t>(generation) << 32) | state;
}

FailureSink SinkOf(const Slot& slot) {
  FailureSink sink{reinterpret_cast<FailureRecord*>(slot.base), kMaxFailureRecords};
  sink.count = MetaOf(slot)->failureCount;
  sink.lostExtents = MetaOf(slot)->lostExtents;
  return sink;
}
void StoreSink(const Slot& slot, const FailureSink& sink) {
  MetaOf(slot)->failureCount = sink.count;
  MetaOf(slot)->lostExtents = sink.lostExtents;
}

uint64_t NowNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);  // vDSO: no system call
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

int LatencyBucket(uint64_t ns) {
  uint64_t us = ns / 1000;
  int bucket = us == 0 ? 0 : 64 - __builtin_clzll(us);
  return bucket < kLatencyBuckets ? bucket : kLatencyBuckets - 1;
}

int VolumeOpOf(uint32_t opcode) {
  switch (opcode) {
    case FUSE_READ: return kOpRead;
    case FUSE_WRITE: return kOpWrite;
    case FUSE_FSYNC: return kOpFsync;
    case FUSE_FALLOCATE: return kOpFallocate;
    default: return -1;
  }
}

uint32_t Option(const Napi::Object& options, const char* name, uint32_t fallback) {
  Napi::Value value = options.Get(name);
  return value.IsNumber() ? value.As<Napi::Number>().Uint32Value() : fallback;
}

}  // namespace

void Session::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function constructor = DefineClass(
      env, "Session",
      {InstanceMethod("mount", &Session::Mount), InstanceMethod("start", &Session::Start),
       InstanceMethod("drain", &Session::Drain), InstanceMethod("reply", &Session::Reply),
       InstanceMethod("release", &Session::Release), InstanceMethod("resume", &Session::Resume),
       InstanceMethod("finishWrite", &Session::FinishWrite),
       InstanceMethod("mapVolume", &Session::MapVolume),
       InstanceMethod("unmapVolume", &Session::UnmapVolume),
       InstanceMethod("takeDirtyChunks", &Session::TakeDirtyChunks),
       InstanceMethod("setGate", &Session::SetGate),
       InstanceMethod("drainWrites", &Session::DrainWrites),
       InstanceMethod("notifyInvalInode", &Session::NotifyInvalInode),
       InstanceMethod("notifyInvalEntry", &Session::NotifyInvalEntry),
       InstanceMethod("unmount", &Session::Unmount), InstanceMethod("close", &Session::Close),
       InstanceMethod("stats", &Session::Stats),
       InstanceMethod("volumeStats", &Session::VolumeStatsOf),
       InstanceMethod("startRing", &Session::StartRing),
       InstanceMethod("thinSet", &Session::ThinSet),
       InstanceMethod("thinClearWritable", &Session::ThinClearWritable),
       InstanceMethod("thinReset", &Session::ThinReset),
       InstanceAccessor("arena", &Session::GetArena, nullptr),
       InstanceAccessor("layout", &Session::GetLayout, nullptr)});
  exports.Set("Session", constructor);
  exports.Set("unmountPath", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    std::string path = info[0].As<Napi::String>();
    bool lazy = info[1].ToBoolean();
    return Napi::Number::New(info.Env(), UnmountPath(path, lazy));
  }));
  InitVolumeIo(env, exports);
}

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();
  maxWrite_ = options.Get("maxWrite").As<Napi::Number>().Uint32Value();
  threadCount_ = std::max<uint32_t>(1, Option(options, "threads", 32));
  slotsPerThread_ = std::max<uint32_t>(1, Option(options, "slotsPerThread", 1));
  sharedSlots_ = Option(options, "sharedSlots", 64);
  ringDepth_ = Option(options, "ringDepth", 0);
  ringQueueCount_ = ringDepth_ > 0 ? static_cast<uint32_t>(std::max(1, get_nprocs_conf())) : 0;
  ringSlotBase_ = threadCount_ * slotsPerThread_ + sharedSlots_;
  slotCount_ = ringSlotBase_ + ringQueueCount_ * ringDepth_;
  slotBytes_ = kPayloadOffset + std::max(maxWrite_, kMinPayloadBytes);
  slotMetaOffset_ = kEntryBytes * kMaxEntries;
  slotsOffset_ = (slotMetaOffset_ + kSlotMetaBytes * slotCount_ + 4095) & ~size_t(4095);
  arenaBytes_ = slotsOffset_ + size_t(slotBytes_) * slotCount_;
  void* memory = nullptr;
  if (posix_memalign(&memory, 4096, arenaBytes_) != 0) {
    ThrowErrno(env, ENOMEM, "posix_memalign arena");
    return;
  }
  arena_ = static_cast<uint8_t*>(memory);
  // Only the entry and slot-metadata areas need zeros; slots are always written before read, so
  // their pages stay untouched (and out of RSS) until a request of that size arrives.
  memset(arena_, 0, slotsOffset_);
  // Exposed once, as one external ArrayBuffer; freed by ~Session after every thread is joined.
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, arena_, arenaBytes_);
  arenaRef_ = Napi::Persistent(buffer);
  slots_ = std::vector<Slot>(slotCount_);
  ownFree_.resize(threadCount_);
  for (uint32_t i = 0; i < slotCount_; i++) {
    slots_[i].base = arena_ + slotsOffset_ + size_t(i) * slotBytes_;
    slots_[i].meta = arena_ + slotMetaOffset_ + size_t(i) * kSlotMetaBytes;
    uint32_t own = threadCount_ * slotsPerThread_;
    slots_[i].owner = i < own ? static_cast<int>(i / slotsPerThread_) : -1;
    if (i >= ringSlotBase_) continue;  // a ring entry's, never free-listed
    if (i < own) ownFree_[i / slotsPerThread_].push_back(i);
    else sharedFree_.push_back(i);
  }
  if (ringDepth_ > 0 && !AllocateRingHeaders(ringQueueCount_ * ringDepth_, &ringHeaders_)) {
    ThrowErrno(env, ENOMEM, "posix_memalign ring headers");
    return;
  }
  for (uint32_t r = 0; r < threadCount_; r++) readers_.push_back(std::make_unique<Reader>());
  onBatch_ = Napi::ThreadSafeFunction::New(env, options.Get("onBatch").As<Napi::Function>(),
                                           "lvmfs-fuse-batch", 0, 1);
  onBatch_.Unref(env);
  tsfnLive_ = true;
  resumePool_ = std::make_unique<WorkerPool>("lvmfs-resume", kResumeThreads);
  controlPool_ = std::make_unique<WorkerPool>("lvmfs-control", kControlThreads);
  if (ringDepth_ > 0) syncPool_ = std::make_unique<WorkerPool>("lvmfs-ring-sync", kRingSyncThreads);
}

Session::~Session() {
  Teardown();
  if (tsfnLive_.exchange(false)) onBatch_.Release();
  arenaRef_.Reset();
  free(arena_);
  free(ringHeaders_);
}

Napi::Value Session::GetArena(const Napi::CallbackInfo&) { return arenaRef_.Value(); }

Napi::Value Session::GetLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("entryBytes", kEntryBytes);
  layout.Set("maxEntries", kMaxEntries);
  layout.Set("slotMetaOffset", static_cast<double>(slotMetaOffset_));
  layout.Set("slotMetaBytes", kSlotMetaBytes);
  layout.Set("slotsOffset", static_cast<double>(slotsOffset_));
  layout.Set("slotBytes", slotBytes_);
  layout.Set("slotCount", slotCount_);
  layout.Set("requestOffset", kRequestOffset);
  layout.Set("payloadOffset", kPayloadOffset);
  layout.Set("maxWrite", maxWrite_);
  Napi::Object entry = Napi::Object::New(env);
  entry.Set("kind", offsetof(Entry, kind));
  entry.Set("slot", offsetof(Entry, slot));
  entry.Set("nodeid", offsetof(Entry, nodeid));
  entry.Set("extent", offsetof(Entry, extent));
  entry.Set("copy", offsetof(Entry, copy));
  entry.Set("error", offsetof(Entry, error));
  entry.Set("generation", offsetof(Entry, generation));
  layout.Set("entry", entry);
  Napi::Object meta = Napi::Object::New(env);
  meta.Set("requestBytes", offsetof(SlotMeta, requestBytes));
  meta.Set("reader", offsetof(SlotMeta, reader));
  meta.Set("generation", offsetof(SlotMeta, generation));
  meta.Set("failureCount", offsetof(SlotMeta, failureCount));
  meta.Set("lostExtents", offsetof(SlotMeta, lostExtents));
  meta.Set("writtenBytes", offsetof(SlotMeta, writtenBytes));
  meta.Set("nodeid", offsetof(SlotMeta, nodeid));
  meta.Set("progressBytes", offsetof(SlotMeta, progressBytes));
  meta.Set("flags", offsetof(SlotMeta, flags));
  layout.Set("meta", meta);
  Napi::Object failure = Napi::Object::New(env);
  failure.Set("bytes", static_cast<uint32_t>(sizeof(FailureRecord)));
  failure.Set("maxRecords", kMaxFailureRecords);
  failure.Set("extent", offsetof(FailureRecord, extent));
  failure.Set("copy", offsetof(FailureRecord, copy));
  failure.Set("error", offsetof(FailureRecord, error));
  failure.Set("flags", offsetof(FailureRecord, flags));
  failure.Set("allExtents", kFailureAllExtents);
  failure.Set("noCopy", kFailureNoCopy);
  failure.Set("extentLost", static_cast<uint32_t>(kFailureExtentLost));
  layout.Set("failure", failure);
  return layout;
}

Napi::Value Session::Mount(const Napi::CallbackInfo& info) {
  Napi::Object options = info[0].As<Napi::Object>();
  MountOptions mount;
  mount.mountpoint = options.Get("mountpoint").As<Napi::String>();
  mount.fsname = options.Get("fsname").As<Napi::String>();
  mount.subtype = options.Get("subtype").As<Napi::String>();
  mount.allowOther = options.Get("allowOther").ToBoolean();
  mount.defaultPermissions = options.Get("defaultPermissions").ToBoolean();
  mount.maxRead = maxWrite_;
  std::string step;
  int fd = MountFuse(mount, &step);
  if (fd < 0) return ThrowErrno(info.Env(), -fd, step.c_str());
  deviceFd_ = fd;
  mountpoint_ = mount.mountpoint;
  return info.Env().Undefined();
}

Napi::Value Session::Start(const Napi::CallbackInfo& info) {
  if (deviceFd_ < 0) return ThrowErrno(info.Env(), EBADF, "start before mount");
  onBatch_.Ref(info.Env());
  for (uint32_t r = 0; r < threadCount_; r++) {
    int fd = deviceFd_;
    if (r > 0) {
      // Each reader gets its own fd, hence its own processing queue in the kernel.
      int clone = open("/dev/fuse", O_RDWR | O_CLOEXEC);
      uint32_t source = static_cast<uint32_t>(deviceFd_);
      if (clone >= 0 && ioctl(clone, FUSE_DEV_IOC_CLONE, &source) == 0) {
        fd = clone;
      } else if (clone >= 0) {
        close(clone);
      }
    }
    readers_[r]->fd = fd;
  }
  runningReaders_ = static_cast<int>(threadCount_);
  for (uint32_t r = 0; r < threadCount_; r++) {
    readers_[r]->thread = StartThread("lvmfs-reader", [this, r] { ReaderLoop(static_cast<int>(r)); });
  }
  return info.Env().Undefined();
}

// --- slots ------------------------------------------------------------------------------------

uint32_t Session::AllocateSlot(int reader) {
  std::unique_lock<std::mutex> lock(slotsMutex_);
  for (;;) {
    if (stopping_) return kNoSlot;
    std::vector<uint32_t>& own = ownFree_[reader];
    std::vector<uint32_t>& from = !own.empty() ? own : sharedFree_;
    if (!from.empty()) {
      uint32_t slot = from.back();
      from.pop_back();
      return slot;
    }
    slotFreed_.wait(lock);
  }
}

void Session::FreeSlot(uint32_t slotId) {
  Slot& slot = slots_[slotId];
  slot.state.store(StateWord(slot.generation, kSlotFree));
  if (slot.ring >= 0) return;  // its entry is re-armed by the commit that answered it
  {
    std::lock_guard<std::mutex> lock(slotsMutex_);
    (slot.owner >= 0 ? ownFree_[slot.owner] : sharedFree_).push_back(slotId);
  }
  slotFreed_.notify_all();
}

void Session::HandToJs(uint32_t slotId, EntryKind kind, uint32_t extent, uint32_t copy) {
  Slot& slot = slots_[slotId];
  slot.state.store(StateWord(slot.generation, kSlotJs));
  uint64_t nodeid = MetaOf(slot)->requestBytes < kFuseInHeaderBytes ? 0 : HeaderOf(slot)->nodeid;
  Push(Entry{kind, slotId, nodeid, extent, copy, 0, slot.generation});
}

// A write or fallocate stopped before closed gate `region`: the gate policy runs in TypeScript,
// which a thread of this process must not wait for.
void Session::HandToGate(uint32_t slotId, uint64_t region) {
  if (IsDaemonThread(HeaderOf(slots_[slotId])->pid)) {
    counters_.selfRequests++;
    return ReplyNative(slotId, -EDEADLK, nullptr, 0);
  }
  counters_.gated++;
  HandToJs(slotId, kEntryGate, static_cast<uint32_t>(region));
}

bool Session::TakeFromJs(uint32_t slotId, uint32_t generation) {
  if (slotId >= slotCount_) return false;
  uint64_t expected = StateWord(generation, kSlotJs);
  if (slots_[slotId].state.compare_exchange_strong(expected, StateWord(generation, kSlotNative))) {
    return true;
  }
  counters_.staleAnswers++;
  return false;
}

// --- the reader loop --------------------------------------------------------------------------

void Session::ReaderLoop(int index) {
  Reader& reader = *readers_[index];
  int exitError = 0;
  while (!stopping_) {
    uint32_t slotId = AllocateSlot(index);
    if (slotId == kNoSlot) break;
    Slot& slot = slots_[slotId];
    slot.fd = reader.fd;
    ssize_t n = read(reader.fd, slot.base + kRequestOffset, slotBytes_ - kRequestOffset);
    if (n < 0) {
      int err = errno;
      FreeSlot(slotId);
      if (err == EINTR || err == EAGAIN || err == ENOENT) continue;  // EINTR: Close woke us
      exitError = err;  // ENODEV: unmounted; ECONNABORTED: aborted
      break;
    }
    BeginRequest(slotId, static_cast<uint32_t>(n), static_cast<uint32_t>(index));
    Handle(slotId);
  }
  if (--runningReaders_ == 0) Push(Entry{kEntryClosed, 0, 0, 0, 0, exitError, 0});
  reader.exited = true;
}

// A new owner generation for a request just read (or delivered by a ring) into the slot.
void Session::BeginRequest(uint32_t slotId, uint32_t bytes, uint32_t reader) {
  Slot& slot = slots_[slotId];
  slot.generation++;
  slot.state.store(StateWord(slot.generation, kSlotNative));
  slot.startNs = NowNs();
  slot.stats = nullptr;
  SlotMeta* meta = MetaOf(slot);
  *meta = SlotMeta{};
  meta->requestBytes = bytes;
  meta->reader = reader;
  meta->generation = slot.generation;
}

bool Session::IsDaemonThread(uint32_t tid) const {
  if (tid == 0) return false;  // the kernel's own requests
  if (tid == static_cast<uint32_t>(getpid())) return true;
  char path[48];
  snprintf(path, sizeof(path), "/proc/self/task/%u", tid);
  return access(path, F_OK) == 0;
}

void Session::Handle(uint32_t slotId) {
  Slot& slot = slots_[slotId];
  if (MetaOf(slot)->requestBytes < kFuseInHeaderBytes) {
    HandToJs(slotId, kEntryRequest);  // TypeScript reports the bad frame
    return;
  }
  fuse_in_header* header = HeaderOf(slot);
  MetaOf(slot)->nodeid = header->nodeid;
  if (TryVolumeOp(slotId)) return;
  uint32_t opcode = header->opcode;
  bool replies = opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET && opcode != FUSE_INTERRUPT;
  // A request TypeScript must answer, made by a thread of this process, would wait for the
  // process itself (the main thread, or a pool thread the main thread waits on) forever.
  if (replies && IsDaemonThread(header->pid)) {
    counters_.selfRequests++;
    ReplyNative(slotId, -EDEADLK, nullptr, 0);
    return;
  }
  counters_.jsRequests++;
  HandToJs(slotId, kEntryRequest);
}

std::shared_ptr<Volume> Session::FindVolume(uint64_t nodeid) {
  std::shared_lock<std::shared_mutex> lock(volumesMutex_);
  auto found = volumes_.find(nodeid);
  return found == volumes_.end() ? nullptr : found->second;
}

bool Session::TryVolumeOp(uint32_t slotId) {
  Slot& slot = slots_[slotId];
  fuse_in_header* header = HeaderOf(slot);
  uint32_t opcode = header->opcode;
  if (opcode != FUSE_READ && opcode != FUSE_WRITE && opcode != FUSE_FSYNC &&
      opcode != FUSE_FALLOCATE) {
    return false;
  }
  std::shared_ptr<Volume> volume = FindVolume(header->nodeid);
  if (!volume) return false;
  slot.stats = volume->stats;
  {
    std::shared_ptr<VolumeMap> current = volume->Current();
    if (current && current->thin) return TryThinOp(slotId, volume, opcode);
  }
  if (opcode == FUSE_READ) {
    ExecuteRead(slotId, volume, volume->Current());
    return true;
  }
  if (opcode == FUSE_FSYNC) {
    ExecuteFsync(slotId, volume->Current());
    return true;
  }
  // Writes: count in-flight before looking at the gates, so a gate closed after this point
  // either is seen closed here or waits for this write in DrainWrites.
  int generation = volume->generation.load(std::memory_order_seq_cst);
  volume->inflight[generation].fetch_add(1, std::memory_order_seq_cst);
  std::shared_ptr<VolumeMap> map = volume->Current();
  if (opcode == FUSE_FALLOCATE) {
    // A range may span more regions than can be open at once: it runs region by region and
    // resumes after each gate that has to be opened.
    ExecuteFallocate(slotId, map);
    volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
    return true;
  }
  auto* in = BodyOf<fuse_write_in>(slot);
  uint64_t progress = MetaOf(slot)->progressBytes;
  uint64_t start = in->offset + progress;
  uint64_t length = in->size > progress ? in->size - progress : 0;
  uint64_t clipped = std::min(length, map->sizeBytes - std::min(start, map->sizeBytes));
  int64_t closed = map->readOnly ? -1 : FirstClosedRegion(*map, start, clipped);
  if (closed >= 0) {
    volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
    HandToGate(slotId, static_cast<uint64_t>(closed));
    return true;
  }
  ExecuteWrite(slotId, map);
  volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

// --- volume requests --------------------------------------------------------------------------

void Session::ExecuteRead(uint32_t slotId, const std::shared_ptr<Volume>& volume,
                          const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  auto* in = BodyOf<fuse_read_in>(slot);
  uint64_t offset = in->offset;
  uint64_t length = std::min<uint64_t>(in->size, maxWrite_);
  if (offset >= map->sizeBytes) length = 0;
  else length = std::min(length, map->sizeBytes - offset);
  uint8_t* buffer = slot.base + kPayloadOffset;
  uint64_t nodeid = HeaderOf(slot)->nodeid;
  uint32_t start = volume->roundRobin.fetch_add(1, std::memory_order_relaxed);
  int error = ReadVolume(*map, offset, length, buffer, start, [&](uint32_t extent, uint32_t copy, int err) {
    counters_.copyErrors++;
    Push(Entry{kEntryReadError, kNoSlot, nodeid, extent, copy, err, 0});
  });
  if (error != 0) return ReplyNative(slotId, error, nullptr, 0);
  counters_.readOps++;
  counters_.readBytes += length;
  ReplyNative(slotId, 0, buffer, length);
}

void Session::ExecuteWrite(uint32_t slotId, const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  auto* in = BodyOf<fuse_write_in>(slot);
  SlotMeta* meta = MetaOf(slot);
  if (map->readOnly) return ReplyNative(slotId, -EROFS, nullptr, 0);
  uint64_t offset = in->offset;
  uint64_t length = in->size;
  if (offset >= map->sizeBytes && length > 0) return ReplyNative(slotId, -ENOSPC, nullptr, 0);
  length = std::min(length, map->sizeBytes - offset);
  FailureSink sink = SinkOf(slot);
  uint64_t progress = WriteVolume(*map, offset, length, slot.base + kPayloadOffset,
                                  meta->progressBytes, RunAtOnce, sink);
  StoreSink(slot, sink);
  meta->progressBytes = progress;
  meta->writtenBytes = static_cast<uint32_t>(length);
  if (progress < length) meta->flags |= kSlotPartial;
  else meta->flags &= ~kSlotPartial;
  if (sink.count > 0) {
    counters_.copyErrors += sink.count;
    // Policy must react (mark stale, commit the status area) before this write is answered.
    return HandToJs(slotId, kEntryWriteError);
  }
  FinishNative(slotId);
}

void Session::ExecuteFsync(uint32_t slotId, const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  auto* in = BodyOf<fuse_fsync_in>(slot);
  FailureSink sink = SinkOf(slot);
  FsyncVolume(*map, (in->fsync_flags & 1) != 0, RunAtOnce, sink);
  StoreSink(slot, sink);
  counters_.fsyncOps++;
  if (sink.count > 0) {
    // Which copies the failed fds hold is TypeScript's to work out (it built the map).
    return HandToJs(slotId, kEntryWriteError);
  }
  ReplyNative(slotId, 0, nullptr, 0);
}

void Session::ExecuteFallocate(uint32_t slotId, const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  SlotMeta* meta = MetaOf(slot);
  auto* in = BodyOf<fuse_fallocate_in>(slot);
  uint32_t mode = in->mode;
  if (map->readOnly) return ReplyNative(slotId, -EROFS, nullptr, 0);
  if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0) {
    return ReplyNative(slotId, -EOPNOTSUPP, nullptr, 0);
  }
  uint64_t offset = in->offset;
  if (offset >= map->sizeBytes) return ReplyNative(slotId, 0, nullptr, 0);
  uint64_t length = std::min<uint64_t>(in->length, map->sizeBytes - offset);
  // Plain allocation is a no-op: a volume's extents are allocated when it is created.
  if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) == 0) {
    return ReplyNative(slotId, 0, nullptr, 0);
  }
  int backingMode = (mode & FALLOC_FL_PUNCH_HOLE) ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
                                                  : (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
  FailureSink sink = SinkOf(slot);
  FallocateResult result = FallocateVolume(*map, backingMode, offset, length, meta->progressBytes, sink);
  StoreSink(slot, sink);
  meta->progressBytes = result.progress;
  if (result.unsupported) meta->flags |= kSlotUnsupported;
  if (result.partial) meta->flags |= kSlotPartial;
  else meta->flags &= ~kSlotPartial;
  if (result.closedRegion >= 0) {
    // Failures so far stay in the slot and reach policy with the rest of the range.
    return HandToGate(slotId, static_cast<uint64_t>(result.closedRegion));
  }
  if (sink.count > 0) {
    counters_.copyErrors += sink.count;
    return HandToJs(slotId, kEntryWriteError);
  }
  FinishNative(slotId);
}

// A volume request whose failures (if any) policy has accepted: continue a partial one, or
// answer it.
void Session::FinishNative(uint32_t slotId) {
  Slot& slot = slots_[slotId];
  SlotMeta* meta = MetaOf(slot);
  if (meta->flags & kSlotPartial) {
    meta->failureCount = 0;
    meta->lostExtents = 0;
    return ResumeNative(slotId);
  }
  uint32_t opcode = HeaderOf(slot)->opcode;
  if (opcode == FUSE_WRITE) {
    counters_.writeOps++;
    counters_.writeBytes += meta->writtenBytes;
    fuse_write_out out = {};
    out.size = meta->writtenBytes;
    return ReplyNative(slotId, 0, &out, sizeof(out));
  }
  if (opcode == FUSE_FALLOCATE) {
    counters_.fallocateOps++;
    return ReplyNative(slotId, (meta->flags & kSlotUnsupported) ? -EOPNOTSUPP : 0, nullptr, 0);
  }
  ReplyNative(slotId, 0, nullptr, 0);
}

void Session::ResumeNative(uint32_t slotId) {
  bool posted = resumePool_->Post([this, slotId] {
    // The volume was unmapped meanwhile (forced off, removed): the write reached no copy.
    if (!TryVolumeOp(slotId)) ReplyNative(slotId, -EIO, nullptr, 0);
  });
  if (!posted) ReplyNative(slotId, -EIO, nullptr, 0);
}

void Session::CountVolumeReply(const Slot& slot, int error, size_t payloadBytes) {
  int op = VolumeOpOf(HeaderOf(slot)->opcode);
  if (op < 0) return;
  OpStats& stats = slot.stats->op[op];
  uint64_t elapsed = NowNs() - slot.startNs;
  stats.ops.fetch_add(1, std::memory_order_relaxed);
  stats.latencyNs.fetch_add(elapsed, std::memory_order_relaxed);
  stats.buckets[LatencyBucket(elapsed)].fetch_add(1, std::memory_order_relaxed);
  if (error != 0) {
    stats.errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  uint64_t bytes = op == kOpRead ? payloadBytes : op == kOpWrite ? MetaOf(slot)->writtenBytes : 0;
  if (bytes > 0) stats.bytes.fetch_add(bytes, std::memory_order_relaxed);
}

void Session::ReplyNative(uint32_t slotId, int error, const void* payload, size_t payloadBytes) {
  Slot& slot = slots_[slotId];
  if (slot.stats != nullptr) CountVolumeReply(slot, error, payloadBytes);
  if (slot.ring >= 0) return ReplyRing(slotId, error, payload, payloadBytes);
  fuse_out_header out = {};
  out.unique = HeaderOf(slot)->unique;
  out.error = error;
  struct iovec iov[2];
  int count = 1;
  iov[0] = {&out, sizeof(out)};
  if (error == 0 && payloadBytes > 0) iov[count++] = {const_cast<void*>(payload), payloadBytes};
  out.len = static_cast<uint32_t>(sizeof(out) + (count > 1 ? payloadBytes : 0));
  int failed = 0;
  {
    std::shared_lock<std::shared_mutex> lock(fdsMutex_);
    if (!fdsClosed_ && writev(slot.fd, iov, count) < 0) failed = errno;
  }
  uint64_t unique = out.unique;
  uint32_t opcode = HeaderOf(slot)->opcode;
  FreeSlot(slotId);
  // ENOENT: the request was interrupted or the connection aborted; nothing is left to answer.
  // ENODEV: unmounted meanwhile. Anything else is a malformed reply and must be seen.
  if (failed != 0 && failed != ENOENT && failed != ENODEV) {
    counters_.replyErrors++;
    Push(Entry{kEntryReplyFailed, slotId, unique, opcode, 0, -failed, 0});
  }
}

void Session::Push(const Entry& entry) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    queue_.push_back(entry);
    if (!scheduled_) {
      scheduled_ = true;
      wake = true;
    }
  }
  if (wake && tsfnLive_.load()) onBatch_.NonBlockingCall();
}

// --- JS methods -------------------------------------------------------------------------------

Napi::Value Session::Drain(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(queueMutex_);
  uint32_t count = 0;
  while (!queue_.empty() && count < kMaxEntries) {
    memcpy(arena_ + size_t(count) * kEntryBytes, &queue_.front(), kEntryBytes);
    queue_.pop_front();
    count++;
  }
  if (queue_.empty() && count == 0) scheduled_ = false;
  return Napi::Number::New(info.Env(), count);
}

Napi::Value Session::Refused(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), false);
}

Napi::Value Session::Reply(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  uint32_t generation = info[1].As<Napi::Number>().Uint32Value();
  int error = info[2].As<Napi::Number>().Int32Value();
  uint32_t payloadBytes = info[3].As<Napi::Number>().Uint32Value();
  if (payloadBytes > maxWrite_) return ThrowErrno(info.Env(), EINVAL, "reply: payload too large");
  if (!TakeFromJs(slotId, generation)) return Refused(info);
  ReplyNative(slotId, error, slots_[slotId].base + kPayloadOffset, payloadBytes);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Session::Release(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  uint32_t generation = info[1].As<Napi::Number>().Uint32Value();
  if (!TakeFromJs(slotId, generation)) return Refused(info);
  // Only FORGET and INTERRUPT go unanswered, and they never come through a ring: an entry
  // must be committed to be re-armed.
  if (slots_[slotId].ring >= 0) ReplyNative(slotId, -EIO, nullptr, 0);
  else FreeSlot(slotId);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Session::Resume(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  uint32_t generation = info[1].As<Napi::Number>().Uint32Value();
  if (!TakeFromJs(slotId, generation)) return Refused(info);
  ResumeNative(slotId);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Session::FinishWrite(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  uint32_t generation = info[1].As<Napi::Number>().Uint32Value();
  int error = info[2].As<Napi::Number>().Int32Value();
  if (!TakeFromJs(slotId, generation)) return Refused(info);
  if (error != 0) ReplyNative(slotId, error, nullptr, 0);
  else FinishNative(slotId);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Session::MapVolume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::string error;
  std::shared_ptr<VolumeMap> map = ParseVolumeMap(info[1].As<Napi::Object>(), &error);
  if (!map) return ThrowErrno(env, EINVAL, ("mapVolume: " + error).c_str());
  std::shared_ptr<Volume> volume;
  {
    std::unique_lock<std::shared_mutex> lock(volumesMutex_);
    auto& slot = volumes_[nodeid];
    if (!slot) {
      slot = std::make_shared<Volume>();
      auto& stats = volumeStats_[nodeid];
      if (!stats) stats = std::make_unique<VolumeStats>();
      slot->stats = stats.get();
    }
    volume = slot;
  }
  std::lock_guard<std::mutex> lock(volume->mutex);
  if (map->thin) {
    // The table survives a remap of the same shape: its entries name pool blocks, not copies.
    uint64_t blocks = (map->thin->virtualBytes + map->thin->chunkBytes - 1) / map->thin->chunkBytes;
    if (!volume->thinTable || volume->thinTable->blocks() != blocks) volume->thinTable = std::make_shared<ThinTable>(blocks);
    map->thin->table = volume->thinTable;
  } else {
    volume->thinTable = nullptr;
  }
  if (map->dirty) {
    // One set of bits for as long as the chunk size holds and it covers the volume; a new set
    // (the volume grew, the chunk changed) leaves the old one to be taken and dropped later.
    std::shared_ptr<DirtyChunks> current = volume->dirtySets.empty() ? nullptr : volume->dirtySets.back();
    if (current && current->chunkBytes == map->dirty->chunkBytes && current->words.size() >= map->dirty->words.size()) {
      map->dirty = current;
    } else {
      volume->dirtySets.push_back(map->dirty);
    }
  }
  if (volume->map && volume->map->gateBytes == map->gateBytes && map->gateBytes > 0) {
    size_t words = std::min(volume->map->gateWordCount, map->gateWordCount);
    for (size_t w = 0; w < words; w++) map->gateWords[w] = volume->map->gateWords[w].load();
  }
  volume->map = map;
  return env.Undefined();
}

// takeDirtyChunks(nodeid) -> { chunkBytes, chunks: Float64Array } | undefined: the chunks marked
// since the last call (cleared as they are taken), over every bit set the volume's maps used.
Napi::Value Session::TakeDirtyChunks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::shared_ptr<Volume> volume = FindVolume(nodeid);
  if (!volume) return env.Undefined();
  std::vector<double> chunks;
  uint64_t chunkBytes = 0;
  std::lock_guard<std::mutex> lock(volume->mutex);
  for (auto it = volume->dirtySets.begin(); it != volume->dirtySets.end();) {
    DirtyChunks& set = **it;
    if (chunkBytes != 0 && set.chunkBytes != chunkBytes) {
      ++it;  // another chunk size: taken by a later call, once the older set is gone
      continue;
    }
    chunkBytes = set.chunkBytes;
    if (set.any.exchange(false, std::memory_order_seq_cst)) {
      for (size_t w = 0; w < set.words.size(); w++) {
        uint64_t bits = set.words[w].exchange(0, std::memory_order_seq_cst);
        while (bits != 0) {
          int bit = __builtin_ctzll(bits);
          bits &= bits - 1;
          chunks.push_back(static_cast<double>(w * 64 + bit));
        }
      }
    }
    bool retired = *it != volume->dirtySets.back() && it->use_count() == 1;
    it = retired ? volume->dirtySets.erase(it) : it + 1;
  }
  if (chunkBytes == 0) return env.Undefined();
  Napi::Float64Array out = Napi::Float64Array::New(env, chunks.size());
  std::copy(chunks.begin(), chunks.end(), out.Data());
  Napi::Object result = Napi::Object::New(env);
  result.Set("chunkBytes", Napi::Number::New(env, static_cast<double>(chunkBytes)));
  result.Set("chunks", out);
  return result;
}

Napi::Value Session::UnmapVolume(const Napi::CallbackInfo& info) {
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::unique_lock<std::shared_mutex> lock(volumesMutex_);
  volumes_.erase(nodeid);
  return info.Env().Undefined();
}

Napi::Value Session::SetGate(const Napi::CallbackInfo& info) {
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  uint64_t region = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  bool open = info[2].ToBoolean();
  std::shared_ptr<Volume> volume = FindVolume(nodeid);
  if (!volume) return ThrowErrno(info.Env(), ENOENT, "setGate: volume not mapped");
  std::shared_ptr<VolumeMap> map = volume->Current();
  lvmfs::SetGate(*map, region, open);
  return info.Env().Undefined();
}

Napi::Value Session::DrainWrites(const Napi::CallbackInfo& info) {
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::shared_ptr<Volume> volume = FindVolume(nodeid);
  return Deferred(info.Env(), [volume]() {
    if (!volume) return -ENOENT;
    std::lock_guard<std::mutex> serial(volume->drainMutex);
    // Flip the generation, then wait for writes admitted under the old one.
    int old = volume->generation.load();
    volume->generation.store(1 - old, std::memory_order_seq_cst);
    while (volume->inflight[old].load(std::memory_order_seq_cst) > 0) usleep(50);
    return 0;
  });
}

Napi::Value Session::NotifyInvalInode(const Napi::CallbackInfo& info) {
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  int64_t offset = info[1].As<Napi::Number>().Int64Value();
  int64_t length = info[2].As<Napi::Number>().Int64Value();
  return Deferred(info.Env(), [this, nodeid, offset, length]() {
    fuse_out_header out = {};
    fuse_notify_inval_inode_out body = {};
    body.ino = nodeid;
    body.off = offset;
    body.len = length;
    out.len = sizeof(out) + sizeof(body);
    out.error = FUSE_NOTIFY_INVAL_INODE;
    struct iovec iov[2] = {{&out, sizeof(out)}, {&body, sizeof(body)}};
    std::shared_lock<std::shared_mutex> lock(fdsMutex_);
    if (fdsClosed_ || deviceFd_ < 0) return -ENOTCONN;
    return writev(deviceFd_, iov, 2) < 0 ? -errno : 0;
  });
}

Napi::Value Session::NotifyInvalEntry(const Napi::CallbackInfo& info) {
  uint64_t parent = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::string name = info[1].As<Napi::String>();
  return Deferred(info.Env(), [this, parent, name]() {
    fuse_out_header out = {};
    fuse_notify_inval_entry_out body = {};
    body.parent = parent;
    body.namelen = static_cast<uint32_t>(name.size());
    out.len = static_cast<uint32_t>(sizeof(out) + sizeof(body) + name.size() + 1);
    out.error = FUSE_NOTIFY_INVAL_ENTRY;
    struct iovec iov[3] = {{&out, sizeof(out)}, {&body, sizeof(body)},
                           {const_cast<char*>(name.c_str()), name.size() + 1}};
    std::shared_lock<std::shared_mutex> lock(fdsMutex_);
    if (fdsClosed_ || deviceFd_ < 0) return -ENOTCONN;
    return writev(deviceFd_, iov, 3) < 0 ? -errno : 0;
  });
}

Napi::Value Session::Unmount(const Napi::CallbackInfo& info) {
  bool lazy = info[0].ToBoolean();
  std::string mountpoint = mountpoint_;
  return Deferred(info.Env(), [mountpoint, lazy]() { return UnmountPath(mountpoint, lazy); });
}

// Teardown order: stop and join the readers (a signal breaks a blocked read(2)), then the
// resume pool (it may still run resumed writes, answered on open fds) and the control pool; only then close the fds, under the exclusive fds lock, so no reply or
// notification can reach a closed or reused fd number. Requests JS still holds are answered
// by nobody: closing every fd aborts the connection and the kernel fails them.
void Session::Teardown() {
  if (closed_.exchange(true)) return;
  stopping_ = true;
  slotFreed_.notify_all();
  // Rings first: they wait for their backing I/O, then leave; their fallbacks run out next.
  StopRings();
  if (syncPool_) syncPool_->Stop();
  int wake = WakeSignal();
  for (auto& reader : readers_) {
    if (!reader->thread.joinable()) continue;
    while (!reader->exited.load()) {
      pthread_kill(reader->thread.native_handle(), wake);
      slotFreed_.notify_all();
      usleep(1000);
    }
    reader->thread.join();
  }
  resumePool_->Stop();
  controlPool_->Stop();
  std::unique_lock<std::shared_mutex> lock(fdsMutex_);
  fdsClosed_ = true;
  for (auto& reader : readers_) {
    if (reader->fd >= 0 && reader->fd != deviceFd_) close(reader->fd);
    reader->fd = -1;
  }
  if (deviceFd_ >= 0) close(deviceFd_);
  deviceFd_ = -1;
}

Napi::Value Session::Close(const Napi::CallbackInfo& info) {
  Teardown();
  if (tsfnLive_.exchange(false)) onBatch_.Release();
  return info.Env().Undefined();
}

Napi::Value Session::Stats(const Napi::CallbackInfo& info) {
  Napi::Object stats = Napi::Object::New(info.Env());
  auto set = [&](const char* name, const std::atomic<uint64_t>& value) {
    stats.Set(name, Napi::Number::New(info.Env(), static_cast<double>(value.load())));
  };
  set("readOps", counters_.readOps);
  set("writeOps", counters_.writeOps);
  set("readBytes", counters_.readBytes);
  set("writeBytes", counters_.writeBytes);
  set("fsyncOps", counters_.fsyncOps);
  set("fallocateOps", counters_.fallocateOps);
  set("jsRequests", counters_.jsRequests);
  set("gated", counters_.gated);
  set("copyErrors", counters_.copyErrors);
  set("selfRequests", counters_.selfRequests);
  set("replyErrors", counters_.replyErrors);
  set("staleAnswers", counters_.staleAnswers);
  uint32_t held = 0;
  for (const Slot& slot : slots_) held += (slot.state.load() & 0xffffffffu) == kSlotJs ? 1 : 0;
  stats.Set("jsHeldSlots", held);
  stats.Set("ringQueues", static_cast<uint32_t>(rings_.size()));
  return stats;
}

// volumeStats(nodeid) -> { read, write, fsync, fallocate: { ops, bytes, errors, latencyNs,
// buckets: Float64Array } } | undefined: the counters of every request answered for the volume
// since it was first mapped; buckets[b] counts latencies under 2^b us, the last one the rest.
Napi::Value Session::VolumeStatsOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  VolumeStats* stats = nullptr;
  {
    std::shared_lock<std::shared_mutex> lock(volumesMutex_);
    auto found = volumeStats_.find(nodeid);
    if (found != volumeStats_.end()) stats = found->second.get();
  }
  if (stats == nullptr) return env.Undefined();
  Napi::Object out = Napi::Object::New(env);
  const char* names[kOpCount] = {"read", "write", "fsync", "fallocate"};
  for (int op = 0; op < kOpCount; op++) {
    const OpStats& from = stats->op[op];
    Napi::Object one = Napi::Object::New(env);
    auto set = [&](const char* name, const std::atomic<uint64_t>& value) {
      one.Set(name, Napi::Number::New(env, static_cast<double>(value.load(std::memory_order_relaxed))));
    };
    set("ops", from.ops);
    set("bytes", from.bytes);
    set("errors", from.errors);
    set("latencyNs", from.latencyNs);
    Napi::Float64Array buckets = Napi::Float64Array::New(env, kLatencyBuckets);
    for (int b = 0; b < kLatencyBuckets; b++) {
      buckets[b] = static_cast<double>(from.buckets[b].load(std::memory_order_relaxed));
    }
    one.Set("buckets", buckets);
    out.Set(names[op], one);
  }
  return out;
}

Napi::Promise Session::Deferred(Napi::Env env, std::function<int()> work) {
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  Napi::Promise promise = deferred->Promise();
  auto resolver = std::make_shared<Napi::ThreadSafeFunction>(Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); }),
      "lvmfs-deferred", 0, 1));
  bool posted = controlPool_->Post([work = std::move(work), deferred, resolver]() {
    int result = work();
    resolver->BlockingCall([deferred, result](Napi::Env env, Napi::Function) {
      deferred->Resolve(Napi::Number::New(env, result));
    });
    resolver->Release();
  });
  if (!posted) {
    // Closed: nothing runs any more, so the promise settles now.
    resolver->Release();
    deferred->Resolve(Napi::Number::New(env, -ECANCELED));
  }
  return promise;
}

}  // namespace lvmfs
