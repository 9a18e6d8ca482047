#include "block-hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "errors.h"
#include "faults.h"
#include "worker-pool.h"

namespace lvmfs {

namespace {

constexpr uint64_t kChunkBytes = 1 << 20;
constexpr uint64_t kAlignBytes = 4096;
// An LP holds at most 3 copies, each range read in parts (checksum-diff.ts): 4 threads keep
// 4 reads in flight; further requests queue.
constexpr unsigned kHashThreads = 4;

// Process-wide and never destroyed: its threads only wait when idle, and joining them from a
// static destructor at exit could wait on a read in flight.
WorkerPool& HashPool() {
  static WorkerPool* pool = new WorkerPool("lvmfs-hash", kHashThreads);
  return *pool;
}

// pread of the whole [offset, offset + length) into buffer. On EINVAL from an O_DIRECT fd (an
// unaligned range) it retries through a buffered descriptor of the same file, opened once.
int ReadFull(int fd, int* bufferedFd, uint8_t* buffer, uint64_t length, uint64_t offset) {
  if (int fault = InjectedFault(fd, false, offset, length)) return fault;
  int use = *bufferedFd >= 0 ? *bufferedFd : fd;
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = pread(use, buffer + done, length - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && *bufferedFd < 0 && (fcntl(fd, F_GETFL) & O_DIRECT) != 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        *bufferedFd = open(path, O_RDONLY | O_CLOEXEC);
        if (*bufferedFd < 0) return -EINVAL;
        use = *bufferedFd;
        continue;
      }
      return -errno;
    }
    if (n == 0) return -EIO;  // the file ends before the range does
    done += static_cast<uint64_t>(n);
  }
  return 0;
}

struct Request {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
  int result = 0;
  std::vector<uint8_t> digests;
};

struct Call {
  std::vector<Request> requests;
  uint64_t blockBytes = 0;
  uint64_t seed = 0;
  std::atomic<size_t> remaining{0};
  std::unique_ptr<Napi::Promise::Deferred> deferred;
  Napi::ThreadSafeFunction resolver;
};

void Settle(Napi::Env env, Call* call) {
  Napi::Array out = Napi::Array::New(env, call->requests.size());
  for (size_t i = 0; i < call->requests.size(); i++) {
    const Request& request = call->requests[i];
    Napi::Value value = request.result != 0
                            ? Napi::Value(Napi::Number::New(env, request.result))
                            : Napi::Value(Napi::Buffer<uint8_t>::Copy(env, request.digests.data(),
                                                                      request.digests.size()));
    out.Set(static_cast<uint32_t>(i), value);
  }
  call->deferred->Resolve(out);
}

bool SafeInteger(const Napi::Value& value, uint64_t* out) {
  if (!value.IsNumber()) return false;
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0 && number <= 9007199254740991.0) || number != static_cast<double>(static_cast<uint64_t>(number))) {
    return false;
  }
  *out = static_cast<uint64_t>(number);
  return true;
}

Napi::Value BlockHashes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[2].IsBigInt()) {
    return ThrowErrno(env, EINVAL, "blockHashes(requests, blockBytes, seed)");
  }
  auto call = std::make_shared<Call>();
  if (!SafeInteger(info[1], &call->blockBytes) || call->blockBytes == 0 || call->blockBytes > (1u << 30)) {
    return ThrowErrno(env, EINVAL, "blockHashes: blockBytes");
  }
  bool lossless = false;
  call->seed = info[2].As<Napi::BigInt>().Uint64Value(&lossless);
  Napi::Array requests = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < requests.Length(); i++) {
    Napi::Value item = requests.Get(i);
    if (!item.IsObject()) return ThrowErrno(env, EINVAL, "blockHashes: request");
    Napi::Object object = item.As<Napi::Object>();
    Request request;
    uint64_t fd = 0;
    if (!SafeInteger(object.Get("fd"), &fd) || fd > INT32_MAX || !SafeInteger(object.Get("offsetBytes"), &request.offset) ||
        !SafeInteger(object.Get("lengthBytes"), &request.length)) {
      return ThrowErrno(env, EINVAL, "blockHashes: request {fd, offsetBytes, lengthBytes}");
    }
    request.fd = static_cast<int>(fd);
    call->requests.push_back(std::move(request));
  }
  call->deferred = std::make_unique<Napi::Promise::Deferred>(env);
  Napi::Promise promise = call->deferred->Promise();
  if (call->requests.empty()) {
    Settle(env, call.get());
    return promise;
  }
  call->resolver = Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); }),
      "lvmfs-block-hash", 0, 1);
  call->remaining = call->requests.size();
  for (size_t i = 0; i < call->requests.size(); i++) {
    bool posted = HashPool().Post([call, i]() {
      Request& request = call->requests[i];
      request.result = HashFdBlocks(request.fd, request.offset, request.length, call->blockBytes, call->seed,
                                    &request.digests);
      if (call->remaining.fetch_sub(1) != 1) return;
      call->resolver.BlockingCall([call](Napi::Env env, Napi::Function) { Settle(env, call.get()); });
      call->resolver.Release();
    });
    if (!posted) {
      call->requests[i].result = -ECANCELED;
      if (call->remaining.fetch_sub(1) == 1) {
        call->resolver.Release();
        Settle(env, call.get());
      }
    }
  }
  return promise;
}

Napi::Value Xxh128(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsBigInt()) {
    return ThrowErrno(env, EINVAL, "xxh128(buffer, seed)");
  }
  Napi::TypedArray array = info[0].As<Napi::TypedArray>();
  const uint8_t* data = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  bool lossless = false;
  uint64_t seed = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_withSeed(data, array.ByteLength(), seed));
  return Napi::Buffer<uint8_t>::Copy(env, canonical.digest, sizeof(canonical.digest));
}

}  // namespace

int HashFdBlocks(int fd, uint64_t offset, uint64_t length, uint64_t blockBytes, uint64_t seed,
                 std::vector<uint8_t>* digests) {
  uint64_t blocks = (length + blockBytes - 1) / blockBytes;
  digests->assign(blocks * kBlockDigestBytes, 0);
  if (length == 0) return 0;
  // One read buffer and hash state per thread, kept: a fresh 1 MiB buffer per call is an mmap,
  // its page faults and an munmap with a TLB shootdown, which cost more than the hashing.
  thread_local std::unique_ptr<uint8_t, decltype(&free)> buffer(nullptr, free);
  thread_local std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> kept(nullptr, XXH3_freeState);
  if (!buffer) {
    void* memory = nullptr;
    if (posix_memalign(&memory, kAlignBytes, kChunkBytes) != 0) return -ENOMEM;
    buffer.reset(static_cast<uint8_t*>(memory));
  }
  if (!kept) kept.reset(XXH3_createState());
  XXH3_state_t* state = kept.get();
  if (state == nullptr) return -ENOMEM;
  int bufferedFd = -1;
  int result = 0;
  uint64_t block = 0;
  uint64_t inBlock = 0;  // bytes of the current block hashed so far
  XXH3_128bits_reset_withSeed(state, seed);
  for (uint64_t done = 0; done < length && result == 0;) {
    uint64_t chunk = std::min<uint64_t>(kChunkBytes, length - done);
    result = ReadFull(fd, &bufferedFd, buffer.get(), chunk, offset + done);
    if (result != 0) break;
    for (uint64_t at = 0; at < chunk;) {
      uint64_t take = std::min<uint64_t>(chunk - at, blockBytes - inBlock);
      XXH3_128bits_update(state, buffer.get() + at, take);
      at += take;
      inBlock += take;
      bool last = done + at == length;
      if (inBlock == blockBytes || last) {
        XXH128_canonical_t canonical;
        XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state));
        std::copy(canonical.digest, canonical.digest + kBlockDigestBytes,
                  digests->data() + block * kBlockDigestBytes);
        block++;
        inBlock = 0;
        XXH3_128bits_reset_withSeed(state, seed);
      }
    }
    done += chunk;
  }
  if (bufferedFd >= 0) close(bufferedFd);
  if (result != 0) digests->clear();
  return result;
}

void InitBlockHash(Napi::Env env, Napi::Object exports) {
  exports.Set("blockHashes", Napi::Function::New(env, BlockHashes));
  exports.Set("xxh128", Napi::Function::New(env, Xxh128));
}

}  // namespace lvmfs
