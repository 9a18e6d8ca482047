#include "range-copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>

#include "errors.h"
#include "faults.h"
#include "transfers.h"
#include "volume.h"
#include "worker-pool.h"

namespace lvmfs {

namespace {

constexpr uint64_t kMinChunk = 4096;
constexpr uint64_t kMaxChunk = 64ull << 20;
constexpr uint32_t kMaxTargets = 8;
// Copies run I/O-bound (the kernel copies from the page cache or waits on the disk); resync
// keeps a few ranges in flight (its fill target), and MWC recovery and scrub one each.
constexpr unsigned kCopyThreads = 4;

bool FallbackErrno(int err) {
  return err == EXDEV || err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == ENOTSUP ||
         err == EBADF;
}

// pread or pwrite of exactly `length` bytes; 0 or -errno (a transfer of 0 bytes first: -EIO, a
// truncated PV).
int TransferAll(bool write, int fd, uint8_t* buffer, uint64_t length, uint64_t offset) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = write ? pwrite(fd, buffer + done, length - done, offset + done)
                      : pread(fd, buffer + done, length - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;
    done += static_cast<uint64_t>(n);
  }
  return 0;
}

int PreadFull(int fd, uint8_t* buffer, uint64_t length, uint64_t offset) {
  return TransferAll(false, fd, buffer, length, offset);
}

int PwriteFull(int fd, const uint8_t* buffer, uint64_t length, uint64_t offset) {
  return TransferAll(true, fd, const_cast<uint8_t*>(buffer), length, offset);  // pwrite only reads it
}

// copy_file_range until `length` bytes moved (short copies continue where they stopped);
// *moved says how far it got. 0 or -errno; the source ending first is -EIO.
int FileRangeFull(int in, uint64_t inOffset, int out, uint64_t outOffset, uint64_t length,
                  uint64_t* moved) {
  *moved = 0;
  while (*moved < length) {
    loff_t from = static_cast<loff_t>(inOffset + *moved);
    loff_t to = static_cast<loff_t>(outOffset + *moved);
    ssize_t n = copy_file_range(in, &from, out, &to, length - *moved, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;
    *moved += static_cast<uint64_t>(n);
  }
  return 0;
}

// One per copy thread, kept between jobs: a fresh chunk-sized buffer per job would be mapped
// and faulted in page by page every time.
struct AlignedBuffer {
  uint8_t* data = nullptr;
  uint64_t size = 0;
  ~AlignedBuffer() { free(data); }
  bool Ensure(uint64_t bytes) {
    if (size >= bytes) return true;
    void* memory = nullptr;
    if (posix_memalign(&memory, 4096, bytes) != 0) return false;
    free(data);
    data = static_cast<uint8_t*>(memory);
    size = bytes;
    return true;
  }
};
thread_local AlignedBuffer tBuffer;

// One chunk through the buffer: the source read once, then every live target at once.
void BufferChunk(RangeCopyJob& job, AlignedBuffer& buffer, uint64_t done, uint64_t length) {
  if (!buffer.Ensure(job.chunkBytes)) {
    job.sourceError = -ENOMEM;
    return;
  }
  uint64_t from = job.sourceOffset + done;
  if (int fault = InjectedFault(job.sourceFd, false, from, length)) {
    job.sourceError = fault;
    return;
  }
  if (int error = PreadFull(job.sourceIoFd, buffer.data, length, from)) {
    job.sourceError = error;
    return;
  }
  std::vector<CopyTarget> copies;
  std::vector<Transfer> batch;
  std::vector<size_t> owners;
  copies.reserve(job.targets.size());
  for (size_t i = 0; i < job.targets.size(); i++) {
    RangeCopyTarget& target = job.targets[i];
    if (target.error != 0) continue;
    CopyTarget copy;
    copy.fd = target.fd;  // faults
    copy.bufferedFd = target.ioFd;  // I/O (copy.direct stays false: always this fd)
    copies.push_back(copy);
    owners.push_back(i);
  }
  for (size_t k = 0; k < copies.size(); k++) {
    Transfer transfer;
    transfer.copy = &copies[k];
    transfer.op = kTransferWrite;
    transfer.buffer = buffer.data;
    transfer.length = length;
    transfer.offset = job.targets[owners[k]].offset + done;
    batch.push_back(transfer);
  }
  // Injected write faults and stalls are applied per transfer inside (TransferFull, Prepare).
  RunAtOnce(batch);
  for (size_t k = 0; k < batch.size(); k++) {
    RangeCopyTarget& target = job.targets[owners[k]];
    if (batch[k].result != 0) {
      target.error = batch[k].result;
      continue;
    }
    target.copied += length;
    job.bufferBytes += length;
  }
}

// One chunk with copy_file_range, target by target (the source chunk stays hot in the page
// cache). A target the kernel refuses goes through the buffer from then on; any other error
// is retried through the buffer, which tells a source failure from a target failure.
void FileRangeChunk(RangeCopyJob& job, AlignedBuffer& buffer, uint64_t done, uint64_t length) {
  uint64_t from = job.sourceOffset + done;
  if (int fault = InjectedFault(job.sourceFd, false, from, length)) {
    job.sourceError = fault;
    return;
  }
  bool haveData = false;
  for (RangeCopyTarget& target : job.targets) {
    if (target.error != 0) continue;
    uint64_t to = target.offset + done;
    if (int fault = InjectedFault(target.fd, true, to, length)) {
      target.error = fault;
      continue;
    }
    uint64_t moved = 0;
    if (!target.buffered) {
      int error = FileRangeFull(job.sourceIoFd, from, target.ioFd, to, length, &moved);
      job.fileRangeBytes += moved;
      if (error == 0) {
        target.copied += length;
        continue;
      }
      if (FallbackErrno(-error)) target.buffered = true;
    }
    if (!haveData) {
      if (!buffer.Ensure(job.chunkBytes)) {
        job.sourceError = -ENOMEM;
        return;
      }
      if (int error = PreadFull(job.sourceIoFd, buffer.data, length, from)) {
        job.sourceError = error;
        return;
      }
      haveData = true;
    }
    if (int error = PwriteFull(target.ioFd, buffer.data + moved, length - moved, to + moved)) {
      target.error = error;
      continue;
    }
    job.bufferBytes += length - moved;
    target.copied += length;
  }
}

struct CopyContext {
  std::mutex mutex;
  std::unique_ptr<WorkerPool> pool;
  bool stopped = false;
  WorkerPool* Pool() {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopped) return nullptr;
    if (!pool) pool = std::make_unique<WorkerPool>("lvmfs-copy", kCopyThreads);
    return pool.get();
  }
  void Stop() {
    std::unique_ptr<WorkerPool> stopping;
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopped = true;
      stopping = std::move(pool);
    }
    if (stopping) stopping->Stop();
  }
};

// fd dups of one copy, closed once it ran (or when dropped unrun).
struct Dups {
  std::vector<int> fds;
  int Take(int fd) {
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup >= 0) fds.push_back(dup);
    return dup;
  }
  void CloseAll() {
    for (int fd : fds) close(fd);
    fds.clear();
  }
  ~Dups() { CloseAll(); }
};

Napi::Object Outcome(Napi::Env env, const RangeCopyJob& job) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("sourceErrno", -job.sourceError);
  Napi::Array targets = Napi::Array::New(env, job.targets.size());
  for (size_t i = 0; i < job.targets.size(); i++) {
    Napi::Object target = Napi::Object::New(env);
    target.Set("copiedBytes", static_cast<double>(job.targets[i].copied));
    target.Set("errno", -job.targets[i].error);
    targets.Set(static_cast<uint32_t>(i), target);
  }
  out.Set("targets", targets);
  out.Set("fileRangeBytes", static_cast<double>(job.fileRangeBytes));
  out.Set("bufferBytes", static_cast<double>(job.bufferBytes));
  return out;
}

bool ReadOffset(const Napi::Value& value, uint64_t* out) {
  if (!value.IsNumber()) return false;
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number > 9007199254740991.0 || number != static_cast<double>(static_cast<uint64_t>(number))) {
    return false;
  }
  *out = static_cast<uint64_t>(number);
  return true;
}

Napi::Value RangeCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* context = static_cast<CopyContext*>(info.Data());
  auto job = std::make_shared<RangeCopyJob>();
  uint64_t sourceFd = 0;
  if (info.Length() < 5 || !ReadOffset(info[0], &sourceFd) || sourceFd > INT32_MAX ||
      !ReadOffset(info[1], &job->sourceOffset) || !ReadOffset(info[2], &job->length) ||
      !info[3].IsArray() || !info[4].IsArray()) {
    return ThrowErrno(env, EINVAL, "rangeCopy(sourceFd, sourceOffset, length, targetFds, targetOffsets)");
  }
  job->sourceFd = static_cast<int>(sourceFd);
  Napi::Array fds = info[3].As<Napi::Array>();
  Napi::Array offsets = info[4].As<Napi::Array>();
  if (fds.Length() == 0 || fds.Length() > kMaxTargets || offsets.Length() != fds.Length()) {
    return ThrowErrno(env, EINVAL, "rangeCopy: 1 to 8 targets, one offset each");
  }
  for (uint32_t i = 0; i < fds.Length(); i++) {
    RangeCopyTarget target;
    uint64_t fd = 0;
    if (!ReadOffset(fds.Get(i), &fd) || fd > INT32_MAX || !ReadOffset(offsets.Get(i), &target.offset)) {
      return ThrowErrno(env, EINVAL, "rangeCopy: target fd or offset");
    }
    target.fd = static_cast<int>(fd);
    job->targets.push_back(target);
  }
  if (info.Length() > 5 && info[5].IsObject()) {
    Napi::Object options = info[5].As<Napi::Object>();
    Napi::Value method = options.Get("method");
    if (method.IsString()) {
      std::string name = method.As<Napi::String>();
      if (name == "auto") job->method = kRangeCopyAuto;
      else if (name == "copy_file_range") job->method = kRangeCopyFileRange;
      else if (name == "buffer") job->method = kRangeCopyBuffer;
      else return ThrowErrno(env, EINVAL, "rangeCopy: method is auto, copy_file_range or buffer");
    }
    Napi::Value writeback = options.Get("writeback");
    if (!writeback.IsUndefined()) job->writeback = writeback.ToBoolean();
    uint64_t chunk = 0;
    Napi::Value chunkValue = options.Get("chunkBytes");
    if (!chunkValue.IsUndefined()) {
      if (!ReadOffset(chunkValue, &chunk) || chunk < kMinChunk || chunk > kMaxChunk || chunk % 512 != 0) {
        return ThrowErrno(env, EINVAL, "rangeCopy: chunkBytes from 4 KiB to 64 MiB, a multiple of 512");
      }
      job->chunkBytes = chunk;
    }
  }
  // The copy runs later on a worker: dups keep the files it was asked for open (an fd closed
  // meanwhile, its number reused for another file, is never written).
  auto dups = std::make_shared<Dups>();
  job->sourceIoFd = dups->Take(job->sourceFd);
  for (RangeCopyTarget& target : job->targets) target.ioFd = dups->Take(target.fd);
  if (job->sourceIoFd < 0) return ThrowErrno(env, EBADF, "rangeCopy: source fd");
  for (const RangeCopyTarget& target : job->targets) {
    if (target.ioFd < 0) return ThrowErrno(env, EBADF, "rangeCopy: target fd");
  }
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  Napi::Promise promise = deferred->Promise();
  WorkerPool* pool = context->Pool();
  if (pool == nullptr) {
    deferred->Reject(Napi::Error::New(env, "rangeCopy: the addon is shutting down").Value());
    return promise;
  }
  auto resolver = std::make_shared<Napi::ThreadSafeFunction>(Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); }),
      "lvmfs-range-copy", 0, 1));
  bool posted = pool->Post([job, deferred, resolver, dups]() {
    RunRangeCopy(*job);
    dups->CloseAll();
    resolver->BlockingCall([job, deferred](Napi::Env env, Napi::Function) {
      deferred->Resolve(Outcome(env, *job));
    });
    resolver->Release();
  });
  if (!posted) {
    resolver->Release();
    deferred->Reject(Napi::Error::New(env, "rangeCopy: the addon is shutting down").Value());
  }
  return promise;
}

}  // namespace

// Starts writeback of what the job wrote to each target without waiting for it, so the disk
// writes while resync copies on, and the sync that later makes it durable finds little left to
// write (instead of stalling the copy for everything at once). Best effort: errors surface at
// that sync.
void StartWriteback(const RangeCopyJob& job) {
  for (const RangeCopyTarget& target : job.targets) {
    if (target.copied == 0) continue;
    sync_file_range(target.ioFd, static_cast<off64_t>(target.offset), static_cast<off64_t>(target.copied),
                    SYNC_FILE_RANGE_WRITE);
  }
}

void RunRangeCopy(RangeCopyJob& job) {
  if (job.sourceIoFd < 0) job.sourceIoFd = job.sourceFd;
  for (RangeCopyTarget& target : job.targets) {
    if (target.ioFd < 0) target.ioFd = target.fd;
  }
  AlignedBuffer& buffer = tBuffer;
  struct Writeback {
    const RangeCopyJob& job;
    ~Writeback() { if (job.writeback) StartWriteback(job); }
  } writeback{job};
  for (uint64_t done = 0; done < job.length && job.sourceError == 0;) {
    uint64_t length = std::min(job.chunkBytes, job.length - done);
    bool live = false;
    bool allBuffered = true;
    for (const RangeCopyTarget& target : job.targets) {
      if (target.error != 0) continue;
      live = true;
      allBuffered = allBuffered && target.buffered;
    }
    if (!live) return;
    if (job.method != kRangeCopyFileRange || allBuffered) BufferChunk(job, buffer, done, length);
    else FileRangeChunk(job, buffer, done, length);
    done += length;
  }
}

void InitRangeCopy(Napi::Env env, Napi::Object exports) {
  auto* context = new CopyContext();
  // Joined before the environment goes away; copies still posted run to their end first.
  env.AddCleanupHook([context]() {
    context->Stop();
    delete context;
  });
  exports.Set("rangeCopy", Napi::Function::New(env, RangeCopy, "rangeCopy", context));
}

}  // namespace lvmfs
