#pragma once
#include <napi.h>
#include <string.h>

#include <string>

namespace lvmfs {

// Throws a JS Error shaped like Node's system errors ({ code: 'EIO', errno: -5, syscall }), so
// TypeScript handles native and fs failures alike. Returns undefined for the caller to return.
inline Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  const char* name = nullptr;
  switch (err) {
#define LVMFS_ERRNO_NAME(e) case e: name = #e; break;
    LVMFS_ERRNO_NAME(EIO) LVMFS_ERRNO_NAME(ENOENT) LVMFS_ERRNO_NAME(EINVAL)
    LVMFS_ERRNO_NAME(EPERM) LVMFS_ERRNO_NAME(EACCES) LVMFS_ERRNO_NAME(EBUSY)
    LVMFS_ERRNO_NAME(ENOTTY) LVMFS_ERRNO_NAME(EOPNOTSUPP) LVMFS_ERRNO_NAME(ENOSPC)
    LVMFS_ERRNO_NAME(ENODEV) LVMFS_ERRNO_NAME(ENOMEM) LVMFS_ERRNO_NAME(EBADF)
    LVMFS_ERRNO_NAME(ENOTCONN) LVMFS_ERRNO_NAME(EEXIST) LVMFS_ERRNO_NAME(ENOTDIR)
#undef LVMFS_ERRNO_NAME
    default: name = "EUNKNOWN";
  }
  error.Set("code", Napi::String::New(env, name));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace lvmfs
