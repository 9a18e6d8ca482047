// Builds a VolumeMap from the spec TypeScript sends (src/fuse/volume-spec.ts).
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "volume.h"

namespace lvmfs {

// The finished map, or nullptr with `error` naming what is inconsistent.
std::shared_ptr<VolumeMap> ParseVolumeMap(const Napi::Object& spec, std::string* error);

}  // namespace lvmfs
