// Loop devices over a PV byte range, for the kernel block path of linear LVs
// (docs/block-devices.md). Synchronous ioctls on the control path, never on the data path.
//
// A device is configured with LO_FLAGS_AUTOCLEAR and the daemon keeps its fd: the kernel
// detaches it at the last close, so a daemon killed -9 leaves no loop device behind once its
// users have closed it, and closing the daemon's fd is how an unused device is released.
#include "loop-device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "errors.h"

namespace lvmfs {

// Attach: { backingFd, offsetBytes, sizeBytes, readOnly, name } -> { fd, number }.
static Napi::Value LoopAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();
  int backingFd = options.Get("backingFd").As<Napi::Number>().Int32Value();
  uint64_t offset = static_cast<uint64_t>(options.Get("offsetBytes").As<Napi::Number>().Int64Value());
  uint64_t size = static_cast<uint64_t>(options.Get("sizeBytes").As<Napi::Number>().Int64Value());
  bool readOnly = options.Get("readOnly").ToBoolean().Value();
  std::string name = options.Get("name").As<Napi::String>().Utf8Value();

  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) return ThrowErrno(env, errno, "open /dev/loop-control");
  // Another process may take the free device between GET_FREE and CONFIGURE: EBUSY, try again.
  for (int attempt = 0; attempt < 16; attempt++) {
    int number = ioctl(control, LOOP_CTL_GET_FREE);
    if (number < 0) {
      int err = errno;
      close(control);
      return ThrowErrno(env, err, "ioctl LOOP_CTL_GET_FREE");
    }
    char path[32];
    snprintf(path, sizeof path, "/dev/loop%d", number);
    int fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      close(control);
      return ThrowErrno(env, err, "open /dev/loopN");
    }
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = static_cast<uint32_t>(backingFd);
    config.info.lo_offset = offset;
    config.info.lo_sizelimit = size;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO | (readOnly ? LO_FLAGS_READ_ONLY : 0);
    strncpy(reinterpret_cast<char*>(config.info.lo_file_name), name.c_str(), LO_NAME_SIZE - 1);
    if (ioctl(fd, LOOP_CONFIGURE, &config) == 0) {
      close(control);
      Napi::Object result = Napi::Object::New(env);
      result.Set("fd", fd);
      result.Set("number", number);
      return result;
    }
    int err = errno;
    close(fd);
    if (err != EBUSY) {
      close(control);
      return ThrowErrno(env, err, "ioctl LOOP_CONFIGURE");
    }
  }
  close(control);
  return ThrowErrno(env, EBUSY, "ioctl LOOP_CONFIGURE");
}

static bool GetStatus(int fd, struct loop_info64* status) {
  memset(status, 0, sizeof *status);
  return ioctl(fd, LOOP_GET_STATUS64, status) == 0;
}

// Status of the device behind fd: { offsetBytes, sizeLimitBytes, name, readOnly, directIo,
// autoclear, backingDevice, backingInode }.
static Napi::Value LoopStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct loop_info64 status;
  if (!GetStatus(fd, &status)) return ThrowErrno(env, errno, "ioctl LOOP_GET_STATUS64");
  Napi::Object result = Napi::Object::New(env);
  result.Set("offsetBytes", static_cast<double>(status.lo_offset));
  result.Set("sizeLimitBytes", static_cast<double>(status.lo_sizelimit));
  char name[LO_NAME_SIZE + 1] = {};
  memcpy(name, status.lo_file_name, LO_NAME_SIZE);
  result.Set("name", std::string(name));
  result.Set("readOnly", (status.lo_flags & LO_FLAGS_READ_ONLY) != 0);
  result.Set("directIo", (status.lo_flags & LO_FLAGS_DIRECT_IO) != 0);
  result.Set("autoclear", (status.lo_flags & LO_FLAGS_AUTOCLEAR) != 0);
  result.Set("backingDevice", static_cast<double>(status.lo_device));
  result.Set("backingInode", static_cast<double>(status.lo_inode));
  return result;
}

// New size limit of a bound device (lvextend of a contiguous LV); the kernel resizes the disk.
static Napi::Value LoopResize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint64_t size = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  struct loop_info64 status;
  if (!GetStatus(fd, &status)) return ThrowErrno(env, errno, "ioctl LOOP_GET_STATUS64");
  status.lo_sizelimit = size;
  // Only the settable flags may be passed back (the kernel refuses others with EINVAL).
  status.lo_flags &= LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
  if (ioctl(fd, LOOP_SET_STATUS64, &status) != 0) return ThrowErrno(env, errno, "ioctl LOOP_SET_STATUS64");
  return env.Undefined();
}

void InitLoopDevice(Napi::Env env, Napi::Object exports) {
  exports.Set("loopAttach", Napi::Function::New(env, LoopAttach));
  exports.Set("loopStatus", Napi::Function::New(env, LoopStatus));
  exports.Set("loopResize", Napi::Function::New(env, LoopResize));
}

}  // namespace lvmfs
