// Addon entry point: registers each native module's exports.
#include <napi.h>

#include "blockdev.h"
#include "loop-device.h"
#include "range-copy.h"
#ifdef LVMFS_HAVE_XXHASH
#include "block-hash.h"
#endif
#ifdef LVMFS_HAVE_NBD
#include "nbd-client.h"
#endif
#include "session.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lvmfs::InitBlockdev(env, exports);
  lvmfs::InitLoopDevice(env, exports);
  lvmfs::InitRangeCopy(env, exports);
#ifdef LVMFS_HAVE_XXHASH
  lvmfs::InitBlockHash(env, exports);  // absent without libxxhash-dev: TypeScript falls back
#endif
#ifdef LVMFS_HAVE_NBD
  lvmfs::InitNbdClient(env, exports);  // absent without libnbd-dev: nbd:// PVs are refused
#endif
  lvmfs::Session::Init(env, exports);
  return exports;
}

NODE_API_MODULE(lvmfs, Init)
