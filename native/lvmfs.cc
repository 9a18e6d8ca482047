// Addon entry point: registers each native module's exports.
#include <napi.h>

#include "blockdev.h"
#include "session.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lvmfs::InitBlockdev(env, exports);
  lvmfs::Session::Init(env, exports);
  return exports;
}

NODE_API_MODULE(lvmfs, Init)
