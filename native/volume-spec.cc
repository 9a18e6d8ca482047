#include "volume-spec.h"

#include <algorithm>

namespace lvmfs {

std::shared_ptr<VolumeMap> ParseVolumeMap(const Napi::Object& spec, std::string* error) {
  auto map = std::make_shared<VolumeMap>();
  map->sizeBytes = static_cast<uint64_t>(spec.Get("sizeBytes").As<Napi::Number>().Int64Value());
  map->extentBytes = static_cast<uint64_t>(spec.Get("extentBytes").As<Napi::Number>().Int64Value());
  map->gateBytes = static_cast<uint64_t>(spec.Get("gateBytes").As<Napi::Number>().Int64Value());
  map->readPolicy = spec.Get("readPolicy").As<Napi::Number>().Int32Value();
  map->writeSchedule = spec.Get("writeSchedule").As<Napi::Number>().Int32Value();
  map->readOnly = spec.Get("readOnly").ToBoolean();
  Napi::Uint8Array counts = spec.Get("copyCounts").As<Napi::Uint8Array>();
  Napi::Int32Array fds = spec.Get("fds").As<Napi::Int32Array>();
  Napi::Float64Array offsets = spec.Get("offsets").As<Napi::Float64Array>();
  Napi::Uint8Array stale = spec.Get("stale").As<Napi::Uint8Array>();
  size_t extents = counts.ElementLength();
  if (map->extentBytes == 0 || extents * map->extentBytes < map->sizeBytes ||
      fds.ElementLength() < extents * kMaxCopies || offsets.ElementLength() < extents * kMaxCopies ||
      stale.ElementLength() < extents * kMaxCopies) {
    *error = "inconsistent map";
    return nullptr;
  }
  map->extents.resize(extents);
  for (size_t e = 0; e < extents; e++) {
    Extent& extent = map->extents[e];
    extent.count = std::min<int>(counts[e], kMaxCopies);
    if (extent.count < 1) {
      *error = "extent " + std::to_string(e) + " has no copies";
      return nullptr;
    }
    for (int c = 0; c < extent.count; c++) {
      extent.copies[c].fd = fds[e * kMaxCopies + c];
      extent.copies[c].offsetBytes = static_cast<uint64_t>(offsets[e * kMaxCopies + c]);
      extent.copies[c].stale = stale[e * kMaxCopies + c] != 0;
      extent.copies[c].writeOnly = stale[e * kMaxCopies + c] == 2;
    }
  }
  Napi::Value dirtyChunk = spec.Get("dirtyChunkBytes");
  if (dirtyChunk.IsNumber()) {
    uint64_t chunk = static_cast<uint64_t>(dirtyChunk.As<Napi::Number>().Int64Value());
    if (chunk > 0) map->dirty = std::make_shared<DirtyChunks>(chunk, map->sizeBytes);
  }
  Napi::Value thin = spec.Get("thin");
  if (thin.IsObject()) {
    Napi::Object t = thin.As<Napi::Object>();
    auto info = std::make_shared<ThinSpec>();
    info->virtualBytes = static_cast<uint64_t>(t.Get("virtualBytes").As<Napi::Number>().Int64Value());
    info->chunkBytes = static_cast<uint64_t>(t.Get("chunkBytes").As<Napi::Number>().Int64Value());
    info->dataStartBytes = static_cast<uint64_t>(t.Get("dataStartBytes").As<Napi::Number>().Int64Value());
    info->nativeWrites = t.Get("nativeWrites").ToBoolean();
    if (info->chunkBytes == 0 || info->virtualBytes == 0 || info->virtualBytes / info->chunkBytes >= (uint64_t(1) << 32)) {
      *error = "inconsistent thin map";
      return nullptr;
    }
    map->thin = info;
  }
  FinishMap(*map);
  return map;
}

}  // namespace lvmfs
