#pragma once
#include <napi.h>

namespace lvmfs {

// Exports NbdConnection (remote PVs over NBD, through libnbd); built only with libnbd-dev.
void InitNbdClient(Napi::Env env, Napi::Object exports);

}  // namespace lvmfs
