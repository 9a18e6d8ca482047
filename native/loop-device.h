#pragma once
#include <napi.h>
namespace lvmfs {
// Loop devices over a PV byte range: the kernel block path of linear LVs (docs/block-devices.md).
void InitLoopDevice(Napi::Env env, Napi::Object exports);
}
