#pragma once
#include <napi.h>

namespace lvmfs {

void InitVolumeIo(Napi::Env env, Napi::Object exports);

}  // namespace lvmfs
