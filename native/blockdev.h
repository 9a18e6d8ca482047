#pragma once
#include <napi.h>
namespace lvmfs {
void InitBlockdev(Napi::Env env, Napi::Object exports);
}
