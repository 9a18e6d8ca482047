// Block-device and file-space syscalls Node does not expose: BLKGETSIZE64, BLKSSZGET,
// BLKDISCARD, fallocate(2), and aligned buffers for O_DIRECT. Synchronous: they are
// metadata-path calls, never on the data path.
#include "blockdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "errors.h"

namespace lvmfs {

static Napi::Value BlockDeviceSizeBytes(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) return ThrowErrno(info.Env(), errno, "ioctl BLKGETSIZE64");
  return Napi::BigInt::New(info.Env(), size);
}

static Napi::Value BlockDeviceSectorBytes(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int sector = 0;
  if (ioctl(fd, BLKSSZGET, &sector) != 0) return ThrowErrno(info.Env(), errno, "ioctl BLKSSZGET");
  return Napi::Number::New(info.Env(), sector);
}

static Napi::Value BlockDiscard(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint64_t range[2] = {static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()),
                       static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value())};
  if (ioctl(fd, BLKDISCARD, &range) != 0) return ThrowErrno(info.Env(), errno, "ioctl BLKDISCARD");
  return info.Env().Undefined();
}

static Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int mode = info[1].As<Napi::Number>().Int32Value();
  off_t offset = info[2].As<Napi::Number>().Int64Value();
  off_t length = info[3].As<Napi::Number>().Int64Value();
  if (fallocate(fd, mode, offset, length) != 0) return ThrowErrno(info.Env(), errno, "fallocate");
  return info.Env().Undefined();
}

static Napi::Value AlignedBuffer(const Napi::CallbackInfo& info) {
  size_t size = info[0].As<Napi::Number>().Int64Value();
  size_t align = info[1].As<Napi::Number>().Int64Value();
  void* memory = nullptr;
  if (posix_memalign(&memory, align, size == 0 ? align : size) != 0) {
    return ThrowErrno(info.Env(), ENOMEM, "posix_memalign");
  }
  memset(memory, 0, size);
  return Napi::Buffer<uint8_t>::New(info.Env(), static_cast<uint8_t*>(memory), size,
                                    [](Napi::Env, uint8_t* data) { free(data); });
}

void InitBlockdev(Napi::Env env, Napi::Object exports) {
  exports.Set("blockDeviceSizeBytes", Napi::Function::New(env, BlockDeviceSizeBytes));
  exports.Set("blockDeviceSectorBytes", Napi::Function::New(env, BlockDeviceSectorBytes));
  exports.Set("blockDiscard", Napi::Function::New(env, BlockDiscard));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate));
  exports.Set("alignedBuffer", Napi::Function::New(env, AlignedBuffer));
}

}  // namespace lvmfs
