#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "errors.h"
#include "mount.h"

#ifndef FUSE_DEV_IOC_CLONE
#define FUSE_DEV_IOC_CLONE _IOR(229, 0, uint32_t)
#endif

namespace lvmfs {

namespace {

constexpr uint32_t kFuseInHeaderBytes = sizeof(struct fuse_in_header);

struct SlotMeta {  // overlays the 64-byte per-slot metadata, mirrored in TypeScript
  uint32_t requestBytes;
  uint32_t reader;
  int32_t copyErrors[kMaxSegments][kMaxCopies];
  uint32_t firstExtent;
  uint32_t segments;
  uint64_t nodeid;
  uint32_t writtenBytes;
  uint32_t pad;
  // Bytes of a multi-region FALLOCATE already done: it resumes there after a gate opens.
  uint64_t progressBytes;
};
static_assert(sizeof(SlotMeta) == kSlotMetaBytes, "slot meta layout");

// Fault injection for drills and tests (lvmfs fault): per backing fd, bit 0 fails reads and
// bit 1 fails writes with EIO; bit 2 delays each write by 300 ms (a stalled disk, so tests can
// hold a write in flight). One relaxed load per transfer when no fault is set.
constexpr int kMaxFaultFds = 65536;
std::atomic<uint8_t> gFdFaults[kMaxFaultFds];
std::atomic<bool> gAnyFault{false};

int InjectedFault(int fd, bool write) {
  if (!gAnyFault.load(std::memory_order_relaxed) || fd < 0 || fd >= kMaxFaultFds) return 0;
  uint8_t mask = gFdFaults[fd].load(std::memory_order_relaxed);
  if (write && (mask & 4)) usleep(300 * 1000);
  return (mask & (write ? 2 : 1)) ? -EIO : 0;
}

bool Aligned(uint64_t offset, uint64_t length, const void* buffer) {
  return (offset % 512) == 0 && (length % 512) == 0 &&
         (reinterpret_cast<uintptr_t>(buffer) % 512) == 0;
}

// One backing pread/pwrite of a whole segment, O_DIRECT when aligned, buffered otherwise.
// Returns 0 or -errno; a read past the backing file's end reads zeros.
int TransferFull(const CopyTarget& copy, bool write, uint8_t* buffer, uint64_t length,
                 uint64_t offset) {
  if (int fault = InjectedFault(copy.fd, write)) return fault;
  int fd = copy.direct && Aligned(offset, length, buffer) ? copy.fd : copy.bufferedFd;
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
    if (n == 0) {
      if (write) return -EIO;
      memset(buffer + done, 0, length - done);
      return 0;
    }
    done += static_cast<uint64_t>(n);
  }
  return 0;
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
       InstanceMethod("setGate", &Session::SetGate),
       InstanceMethod("drainWrites", &Session::DrainWrites),
       InstanceMethod("notifyInvalInode", &Session::NotifyInvalInode),
       InstanceMethod("notifyInvalEntry", &Session::NotifyInvalEntry),
       InstanceMethod("unmount", &Session::Unmount), InstanceMethod("close", &Session::Close),
       InstanceMethod("stats", &Session::Stats),
       InstanceAccessor("arena", &Session::GetArena, nullptr),
       InstanceAccessor("layout", &Session::GetLayout, nullptr)});
  exports.Set("Session", constructor);
  exports.Set("setFdFault", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    int mask = info[1].As<Napi::Number>().Int32Value();
    if (fd >= 0 && fd < kMaxFaultFds) {
      gFdFaults[fd].store(static_cast<uint8_t>(mask));
      if (mask != 0) gAnyFault.store(true);
    }
    return info.Env().Undefined();
  }));
  exports.Set("unmountPath", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    std::string path = info[0].As<Napi::String>();
    bool lazy = info[1].ToBoolean();
    return Napi::Number::New(info.Env(), UnmountPath(path, lazy));
  }));
}

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();
  maxWrite_ = options.Get("maxWrite").As<Napi::Number>().Uint32Value();
  threadCount_ = options.Get("threads").As<Napi::Number>().Uint32Value();
  slotsPerThread_ = options.Get("slotsPerThread").As<Napi::Number>().Uint32Value();
  uint32_t executorCount = options.Get("executors").As<Napi::Number>().Uint32Value();
  slotCount_ = threadCount_ * slotsPerThread_;
  slotBytes_ = kPayloadOffset + maxWrite_;
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
  // The arena is exposed once, as one external ArrayBuffer; it is freed with the session.
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, arena_, arenaBytes_);
  arenaRef_ = Napi::Persistent(buffer);
  slots_.resize(slotCount_);
  for (uint32_t i = 0; i < slotCount_; i++) {
    slots_[i].base = arena_ + slotsOffset_ + size_t(i) * slotBytes_;
    slots_[i].meta = arena_ + slotMetaOffset_ + size_t(i) * kSlotMetaBytes;
    slots_[i].reader = i / slotsPerThread_;
  }
  for (uint32_t r = 0; r < threadCount_; r++) {
    auto reader = std::make_unique<Reader>();
    for (uint32_t s = 0; s < slotsPerThread_; s++) reader->freeSlots.push_back(r * slotsPerThread_ + s);
    readers_.push_back(std::move(reader));
  }
  onBatch_ = Napi::ThreadSafeFunction::New(env, options.Get("onBatch").As<Napi::Function>(),
                                           "lvmfs-fuse-batch", 0, 1);
  onBatch_.Unref(env);
  tsfnLive_ = true;
  for (uint32_t i = 0; i < executorCount; i++) executors_.emplace_back([this] { ExecutorLoop(); });
}

Session::~Session() {
  stopping_ = true;
  if (deviceFd_ >= 0) close(deviceFd_);
  for (auto& reader : readers_) {
    if (reader->thread.joinable()) reader->thread.detach();
  }
  {
    std::lock_guard<std::mutex> lock(jobsMutex_);
    jobs_.push_back(nullptr);
  }
  jobsReady_.notify_all();
  for (auto& executor : executors_) executor.detach();
  // The arena stays allocated: detached threads may still touch it while exiting.
}

Napi::Value Session::GetArena(const Napi::CallbackInfo&) { return arenaRef_.Value(); }

Napi::Value Session::GetLayout(const Napi::CallbackInfo& info) {
  Napi::Object layout = Napi::Object::New(info.Env());
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
    for (uint32_t id : readers_[r]->freeSlots) slots_[id].fd = fd;
  }
  runningReaders_ = static_cast<int>(threadCount_);
  for (uint32_t r = 0; r < threadCount_; r++) {
    readers_[r]->thread = std::thread([this, r] { ReaderLoop(static_cast<int>(r)); });
  }
  return info.Env().Undefined();
}

void Session::ReaderLoop(int index) {
  Reader& reader = *readers_[index];
  int exitError = 0;
  while (!stopping_) {
    uint32_t slotId;
    {
      std::unique_lock<std::mutex> lock(reader.mutex);
      reader.freed.wait(lock, [&] { return !reader.freeSlots.empty() || stopping_; });
      if (stopping_) break;
      slotId = reader.freeSlots.back();
      reader.freeSlots.pop_back();
    }
    Slot& slot = slots_[slotId];
    slot.fd = reader.fd;
    ssize_t n = read(reader.fd, slot.base + kRequestOffset, slotBytes_ - kRequestOffset);
    if (n < 0) {
      int err = errno;
      FreeSlot(slotId);
      if (err == EINTR || err == EAGAIN || err == ENOENT) continue;
      exitError = err;  // ENODEV: unmounted; ECONNABORTED: aborted
      break;
    }
    slot.requestBytes = static_cast<uint32_t>(n);
    reinterpret_cast<SlotMeta*>(slot.meta)->requestBytes = slot.requestBytes;
    reinterpret_cast<SlotMeta*>(slot.meta)->reader = static_cast<uint32_t>(index);
    reinterpret_cast<SlotMeta*>(slot.meta)->progressBytes = 0;
    Handle(slotId);
  }
  if (reader.fd != deviceFd_ && reader.fd >= 0) close(reader.fd);
  if (--runningReaders_ == 0) Push(Entry{kEntryClosed, 0, 0, 0, 0, exitError, 0});
}

void Session::Handle(uint32_t slotId) {
  Slot& slot = slots_[slotId];
  if (slot.requestBytes < kFuseInHeaderBytes) {
    Push(Entry{kEntryRequest, slotId, 0, 0, 0, 0, 0});  // TypeScript reports the bad frame
    return;
  }
  auto* header = reinterpret_cast<fuse_in_header*>(slot.base + kRequestOffset);
  uint32_t opcode = header->opcode;
  bool replies = opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET && opcode != FUSE_INTERRUPT;
  if (replies && header->pid != 0 && header->pid == static_cast<uint32_t>(getpid())) {
    // The daemon touching its own mount would wait for itself forever.
    counters_.selfRequests++;
    ReplyNative(slotId, -EDEADLK, nullptr, 0);
    return;
  }
  if (TryVolumeOp(slotId, opcode, header->nodeid)) return;
  counters_.jsRequests++;
  Push(Entry{kEntryRequest, slotId, header->nodeid, 0, 0, 0, 0});
}

std::shared_ptr<Volume> Session::FindVolume(uint64_t nodeid) {
  std::shared_lock<std::shared_mutex> lock(volumesMutex_);
  auto found = volumes_.find(nodeid);
  return found == volumes_.end() ? nullptr : found->second;
}

bool Session::TryVolumeOp(uint32_t slotId, uint32_t opcode, uint64_t nodeid) {
  if (opcode != FUSE_READ && opcode != FUSE_WRITE && opcode != FUSE_FSYNC &&
      opcode != FUSE_FALLOCATE) {
    return false;
  }
  std::shared_ptr<Volume> volume = FindVolume(nodeid);
  if (!volume) return false;
  Slot& slot = slots_[slotId];
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
  uint64_t offset, length;
  if (opcode == FUSE_WRITE) {
    auto* in = reinterpret_cast<fuse_write_in*>(slot.base + kRequestOffset + kFuseInHeaderBytes);
    offset = in->offset;
    length = in->size;
  } else {
    auto* in = reinterpret_cast<fuse_fallocate_in*>(slot.base + kRequestOffset + kFuseInHeaderBytes);
    offset = in->offset;
    length = in->length;
  }
  if (opcode == FUSE_FALLOCATE) {
    // A range may span more regions than can be open at once: it runs region by region and
    // resumes after each gate that has to be opened.
    ExecuteFallocate(slotId, nodeid, map);
    volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
    return true;
  }
  uint64_t clipped = std::min(length, map->sizeBytes - std::min(offset, map->sizeBytes));
  int64_t closed = map->readOnly ? -1 : FirstClosedRegion(*map, offset, clipped);
  if (closed >= 0) {
    volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
    counters_.gated++;
    Push(Entry{kEntryGate, slotId, nodeid, static_cast<uint32_t>(closed), 0, 0, 0});
    return true;
  }
  ExecuteWrite(slotId, volume, map);
  volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

void Session::ExecuteRead(uint32_t slotId, const std::shared_ptr<Volume>& volume,
                          const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  auto* header = reinterpret_cast<fuse_in_header*>(slot.base + kRequestOffset);
  auto* in = reinterpret_cast<fuse_read_in*>(slot.base + kRequestOffset + kFuseInHeaderBytes);
  uint64_t offset = in->offset;
  uint64_t length = std::min<uint64_t>(in->size, maxWrite_);
  if (offset >= map->sizeBytes) length = 0;
  else length = std::min(length, map->sizeBytes - offset);
  uint8_t* buffer = slot.base + kPayloadOffset;
  uint64_t done = 0;
  uint32_t start = volume->roundRobin.fetch_add(1, std::memory_order_relaxed);
  while (done < length) {
    uint64_t position = offset + done;
    uint64_t extentIndex = position / map->extentBytes;
    uint64_t within = position % map->extentBytes;
    uint64_t segment = std::min(length - done, map->extentBytes - within);
    const Extent& extent = map->extents[extentIndex];
    int result = -EIO;
    for (int attempt = 0; attempt < extent.count; attempt++) {
      int index = map->readPolicy == kReadRoundRobin ? (start + attempt) % extent.count : attempt;
      const CopyTarget& copy = extent.copies[index];
      if (copy.stale) continue;
      result = TransferFull(copy, false, buffer + done, segment, copy.offsetBytes + within);
      if (result == 0) break;
      counters_.copyErrors++;
      Push(Entry{kEntryReadError, UINT32_MAX, header->nodeid, static_cast<uint32_t>(extentIndex),
                 static_cast<uint32_t>(index), result, 0});
    }
    if (result != 0) {
      ReplyNative(slotId, result, nullptr, 0);
      return;
    }
    done += segment;
  }
  counters_.readOps++;
  counters_.readBytes += length;
  ReplyNative(slotId, 0, buffer, length);
}

void Session::ExecuteWrite(uint32_t slotId, const std::shared_ptr<Volume>&,
                           const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  auto* in = reinterpret_cast<fuse_write_in*>(slot.base + kRequestOffset + kFuseInHeaderBytes);
  auto* meta = reinterpret_cast<SlotMeta*>(slot.meta);
  if (map->readOnly) {
    ReplyNative(slotId, -EROFS, nullptr, 0);
    return;
  }
  uint64_t offset = in->offset;
  uint64_t length = in->size;
  if (offset >= map->sizeBytes && length > 0) {
    ReplyNative(slotId, -ENOSPC, nullptr, 0);
    return;
  }
  length = std::min(length, map->sizeBytes - offset);
  uint8_t* data = slot.base + kPayloadOffset;
  bool anyError = false;
  bool segmentLost = false;
  uint64_t done = 0;
  uint32_t segmentIndex = 0;
  meta->firstExtent = length ? static_cast<uint32_t>(offset / map->extentBytes) : 0;
  // 1 marks a copy the extent does not have; 0 written; negative errno failed or skipped.
  for (auto& row : meta->copyErrors) std::fill(std::begin(row), std::end(row), 1);
  while (done < length) {
    uint64_t position = offset + done;
    uint64_t extentIndex = position / map->extentBytes;
    uint64_t within = position % map->extentBytes;
    uint64_t segment = std::min(length - done, map->extentBytes - within);
    const Extent& extent = map->extents[extentIndex];
    int written = 0;
    for (int index = 0; index < extent.count; index++) {
      const CopyTarget& copy = extent.copies[index];
      if (copy.stale && !copy.writeOnly) {
        if (segmentIndex < kMaxSegments) meta->copyErrors[segmentIndex][index] = -ESTALE;
        continue;
      }
      int result = TransferFull(copy, true, data + done, segment, copy.offsetBytes + within);
      if (result == 0) {
        if (!copy.stale) written++;
        // 2: written through to a resync target, which does not hold the write on its own.
        if (segmentIndex < kMaxSegments) meta->copyErrors[segmentIndex][index] = copy.stale ? 2 : 0;
        continue;
      }
      counters_.copyErrors++;
      anyError = true;
      if (segmentIndex < kMaxSegments) meta->copyErrors[segmentIndex][index] = result;
    }
    if (written == 0) segmentLost = true;
    done += segment;
    segmentIndex++;
  }
  meta->segments = segmentIndex;
  meta->writtenBytes = static_cast<uint32_t>(length);
  auto* header = reinterpret_cast<fuse_in_header*>(slot.base + kRequestOffset);
  meta->nodeid = header->nodeid;
  if (anyError || segmentLost) {
    // Policy must react (mark stale, commit the status area) before this write is answered.
    Push(Entry{kEntryWriteError, slotId, header->nodeid, meta->firstExtent, 0, 0, 0});
    return;
  }
  counters_.writeOps++;
  counters_.writeBytes += length;
  fuse_write_out out = {};
  out.size = static_cast<uint32_t>(length);
  ReplyNative(slotId, 0, &out, sizeof(out));
}

void Session::ExecuteFsync(uint32_t slotId, const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  auto* in = reinterpret_cast<fuse_fsync_in*>(slot.base + kRequestOffset + kFuseInHeaderBytes);
  int error = 0;
  for (int fd : map->distinctFds) {
    int result = (in->fsync_flags & 1) ? fdatasync(fd) : fsync(fd);
    if (result != 0 && error == 0) error = -errno;
  }
  counters_.fsyncOps++;
  ReplyNative(slotId, error, nullptr, 0);
}

void Session::ExecuteFallocate(uint32_t slotId, uint64_t nodeid, const std::shared_ptr<VolumeMap>& map) {
  Slot& slot = slots_[slotId];
  auto* meta = reinterpret_cast<SlotMeta*>(slot.meta);
  auto* in = reinterpret_cast<fuse_fallocate_in*>(slot.base + kRequestOffset + kFuseInHeaderBytes);
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
  int error = 0;
  uint64_t done = meta->progressBytes;
  while (done < length && error == 0) {
    uint64_t position = offset + done;
    uint64_t within = position % map->extentBytes;
    uint64_t segment = std::min(length - done, map->extentBytes - within);
    if (map->gateBytes > 0) {
      segment = std::min(segment, map->gateBytes - position % map->gateBytes);
      if (FirstClosedRegion(*map, position, segment) >= 0) {
        meta->progressBytes = done;
        counters_.gated++;
        Push(Entry{kEntryGate, slotId, nodeid, static_cast<uint32_t>(position / map->gateBytes), 0, 0, 0});
        return;
      }
    }
    const Extent& extent = map->extents[position / map->extentBytes];
    for (int index = 0; index < extent.count && error == 0; index++) {
      const CopyTarget& copy = extent.copies[index];
      if (copy.stale && !copy.writeOnly) continue;
      if (int fault = InjectedFault(copy.fd, true)) error = fault;
      else if (fallocate(copy.fd, backingMode, copy.offsetBytes + within, segment) != 0) error = -errno;
    }
    done += segment;
  }
  counters_.fallocateOps++;
  ReplyNative(slotId, error, nullptr, 0);
}

void Session::ReplyNative(uint32_t slotId, int error, const void* payload, size_t payloadBytes,
                          const void* payload2, size_t payload2Bytes) {
  Slot& slot = slots_[slotId];
  auto* header = reinterpret_cast<fuse_in_header*>(slot.base + kRequestOffset);
  fuse_out_header out = {};
  out.unique = header->unique;
  out.error = error;
  struct iovec iov[3];
  int count = 1;
  iov[0] = {&out, sizeof(out)};
  if (error == 0 && payloadBytes > 0) iov[count++] = {const_cast<void*>(payload), payloadBytes};
  if (error == 0 && payload2Bytes > 0) iov[count++] = {const_cast<void*>(payload2), payload2Bytes};
  size_t total = 0;
  for (int i = 0; i < count; i++) total += iov[i].iov_len;
  out.len = static_cast<uint32_t>(total);
  // ENOENT: the request was interrupted or the connection aborted; nothing left to answer.
  ssize_t ignored = writev(slot.fd, iov, count);
  (void)ignored;
  FreeSlot(slotId);
}

void Session::FreeSlot(uint32_t slotId) {
  Reader& reader = *readers_[slots_[slotId].reader];
  {
    std::lock_guard<std::mutex> lock(reader.mutex);
    reader.freeSlots.push_back(slotId);
  }
  reader.freed.notify_one();
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
  if (wake && tsfnLive_) onBatch_.NonBlockingCall();
}

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

Napi::Value Session::Reply(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  int error = info[1].As<Napi::Number>().Int32Value();
  uint32_t payloadBytes = info[2].As<Napi::Number>().Uint32Value();
  if (slotId >= slotCount_ || payloadBytes > maxWrite_) return ThrowErrno(info.Env(), EINVAL, "reply");
  ReplyNative(slotId, error, slots_[slotId].base + kPayloadOffset, payloadBytes);
  return info.Env().Undefined();
}

Napi::Value Session::Release(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  if (slotId >= slotCount_) return ThrowErrno(info.Env(), EINVAL, "release");
  FreeSlot(slotId);
  return info.Env().Undefined();
}

Napi::Value Session::Resume(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  if (slotId >= slotCount_) return ThrowErrno(info.Env(), EINVAL, "resume");
  Post([this, slotId] {
    auto* header = reinterpret_cast<fuse_in_header*>(slots_[slotId].base + kRequestOffset);
    if (!TryVolumeOp(slotId, header->opcode, header->nodeid)) {
      ReplyNative(slotId, -ENOENT, nullptr, 0);  // the volume was unmapped meanwhile
    }
  });
  return info.Env().Undefined();
}

Napi::Value Session::FinishWrite(const Napi::CallbackInfo& info) {
  uint32_t slotId = info[0].As<Napi::Number>().Uint32Value();
  int error = info[1].As<Napi::Number>().Int32Value();
  if (slotId >= slotCount_) return ThrowErrno(info.Env(), EINVAL, "finishWrite");
  auto* meta = reinterpret_cast<SlotMeta*>(slots_[slotId].meta);
  if (error != 0) {
    ReplyNative(slotId, error, nullptr, 0);
  } else {
    counters_.writeOps++;
    counters_.writeBytes += meta->writtenBytes;
    fuse_write_out out = {};
    out.size = meta->writtenBytes;
    ReplyNative(slotId, 0, &out, sizeof(out));
  }
  return info.Env().Undefined();
}

Napi::Value Session::MapVolume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  Napi::Object spec = info[1].As<Napi::Object>();
  auto map = std::make_shared<VolumeMap>();
  map->sizeBytes = static_cast<uint64_t>(spec.Get("sizeBytes").As<Napi::Number>().Int64Value());
  map->extentBytes = static_cast<uint64_t>(spec.Get("extentBytes").As<Napi::Number>().Int64Value());
  map->gateBytes = static_cast<uint64_t>(spec.Get("gateBytes").As<Napi::Number>().Int64Value());
  map->readPolicy = spec.Get("readPolicy").As<Napi::Number>().Int32Value();
  map->writeSchedule = spec.Get("writeSchedule").As<Napi::Number>().Int32Value();
  map->readOnly = spec.Get("readOnly").ToBoolean();
  Napi::Uint8Array counts = spec.Get("copyCounts").As<Napi::Uint8Array>();
  Napi::Int32Array fds = spec.Get("fds").As<Napi::Int32Array>();
  Napi::Float64Array offsets = spec.Get("offsets").As<Napi::Float64Array>();
  Napi::Uint8Array stale = spec.Get("stale").As<Napi::Uint8Array>();
  size_t extents = counts.ElementLength();
  if (map->extentBytes == 0 || extents * map->extentBytes < map->sizeBytes ||
      fds.ElementLength() < extents * kMaxCopies || offsets.ElementLength() < extents * kMaxCopies ||
      stale.ElementLength() < extents * kMaxCopies) {
    return ThrowErrno(env, EINVAL, "mapVolume: inconsistent map");
  }
  map->extents.resize(extents);
  for (size_t e = 0; e < extents; e++) {
    Extent& extent = map->extents[e];
    extent.count = std::min<int>(counts[e], kMaxCopies);
    if (extent.count < 1) return ThrowErrno(env, EINVAL, "mapVolume: extent without copies");
    for (int c = 0; c < extent.count; c++) {
      extent.copies[c].fd = fds[e * kMaxCopies + c];
      extent.copies[c].offsetBytes = static_cast<uint64_t>(offsets[e * kMaxCopies + c]);
      extent.copies[c].stale = stale[e * kMaxCopies + c] != 0;
      extent.copies[c].writeOnly = stale[e * kMaxCopies + c] == 2;
    }
  }
  FinishMap(*map);
  std::shared_ptr<Volume> volume = FindVolume(nodeid);
  if (!volume) {
    volume = std::make_shared<Volume>();
    std::unique_lock<std::shared_mutex> lock(volumesMutex_);
    volumes_[nodeid] = volume;
  }
  std::lock_guard<std::mutex> lock(volume->mutex);
  if (volume->map && volume->map->gateBytes == map->gateBytes && map->gateBytes > 0) {
    size_t words = std::min(volume->map->gateWordCount, map->gateWordCount);
    for (size_t w = 0; w < words; w++) map->gateWords[w] = volume->map->gateWords[w].load();
  }
  volume->map = map;
  return env.Undefined();
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
  int fd = deviceFd_;
  return Deferred(info.Env(), [fd, nodeid, offset, length]() {
    fuse_out_header out = {};
    fuse_notify_inval_inode_out body = {};
    body.ino = nodeid;
    body.off = offset;
    body.len = length;
    out.len = sizeof(out) + sizeof(body);
    out.error = FUSE_NOTIFY_INVAL_INODE;
    struct iovec iov[2] = {{&out, sizeof(out)}, {&body, sizeof(body)}};
    return writev(fd, iov, 2) < 0 ? -errno : 0;
  });
}

Napi::Value Session::NotifyInvalEntry(const Napi::CallbackInfo& info) {
  uint64_t parent = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::string name = info[1].As<Napi::String>();
  int fd = deviceFd_;
  return Deferred(info.Env(), [fd, parent, name]() {
    fuse_out_header out = {};
    fuse_notify_inval_entry_out body = {};
    body.parent = parent;
    body.namelen = static_cast<uint32_t>(name.size());
    out.len = static_cast<uint32_t>(sizeof(out) + sizeof(body) + name.size() + 1);
    out.error = FUSE_NOTIFY_INVAL_ENTRY;
    struct iovec iov[3] = {{&out, sizeof(out)}, {&body, sizeof(body)},
                           {const_cast<char*>(name.c_str()), name.size() + 1}};
    return writev(fd, iov, 3) < 0 ? -errno : 0;
  });
}

Napi::Value Session::Unmount(const Napi::CallbackInfo& info) {
  bool lazy = info[0].ToBoolean();
  std::string mountpoint = mountpoint_;
  return Deferred(info.Env(), [mountpoint, lazy]() { return UnmountPath(mountpoint, lazy); });
}

Napi::Value Session::Close(const Napi::CallbackInfo& info) {
  stopping_ = true;
  for (auto& reader : readers_) reader->freed.notify_all();
  if (deviceFd_ >= 0) {
    close(deviceFd_);  // aborts the connection if the mount is still there
    deviceFd_ = -1;
  }
  for (auto& reader : readers_) {
    if (reader->thread.joinable()) reader->thread.join();
  }
  if (tsfnLive_) {
    tsfnLive_ = false;
    onBatch_.Release();
  }
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
  return stats;
}

void Session::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(jobsMutex_);
    jobs_.push_back(std::move(job));
  }
  jobsReady_.notify_one();
}

void Session::ExecutorLoop() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(jobsMutex_);
      jobsReady_.wait(lock, [&] { return !jobs_.empty(); });
      job = std::move(jobs_.front());
      if (!job) return;  // shutdown marker stays for the other executors
      jobs_.pop_front();
    }
    job();
  }
}

Napi::Promise Session::Deferred(Napi::Env env, std::function<int()> work) {
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  Napi::Promise promise = deferred->Promise();
  auto resolver = std::make_shared<Napi::ThreadSafeFunction>(Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); }),
      "lvmfs-deferred", 0, 1));
  Post([work = std::move(work), deferred, resolver]() {
    int result = work();
    resolver->BlockingCall([deferred, result](Napi::Env env, Napi::Function) {
      deferred->Resolve(Napi::Number::New(env, result));
    });
    resolver->Release();
  });
  return promise;
}

}  // namespace lvmfs
