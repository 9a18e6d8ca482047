// The addon's direct entry points into volume I/O, without FUSE: fault injection for drills
// (setFdFault) and `volumeIo`, which runs one request against a map on the calling thread so
// tests can check per-extent outcomes, failover and short reads byte for byte.
#include "volume-io-binding.h"

#include <linux/falloc.h>

#include <vector>

#include "errors.h"
#include "faults.h"
#include "volume-io.h"
#include "volume-spec.h"

namespace lvmfs {

namespace {

std::shared_ptr<VolumeMap> MapArgument(const Napi::CallbackInfo& info) {
  std::string error;
  auto map = ParseVolumeMap(info[0].As<Napi::Object>(), &error);
  if (!map) ThrowErrno(info.Env(), EINVAL, ("volumeIo: " + error).c_str());
  return map;
}

Napi::Object Record(Napi::Env env, const FailureRecord& record) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("extent", record.extent == kFailureAllExtents ? Napi::Value(env.Null())
                                                        : Napi::Number::New(env, record.extent));
  out.Set("copy", record.copy == kFailureNoCopy ? Napi::Value(env.Null()) : Napi::Number::New(env, record.copy));
  out.Set("errno", -record.error);
  out.Set("lost", (record.flags & kFailureExtentLost) != 0);
  return out;
}

Napi::Array Records(Napi::Env env, const std::vector<FailureRecord>& records) {
  Napi::Array out = Napi::Array::New(env, records.size());
  for (size_t i = 0; i < records.size(); i++) out.Set(static_cast<uint32_t>(i), Record(env, records[i]));
  return out;
}

// Runs `step` with a fresh sink until it reports completion, as finishWrite does in a session.
template <typename Step>
std::vector<FailureRecord> Collect(uint32_t* lost, Step step) {
  std::vector<FailureRecord> all;
  std::vector<FailureRecord> table(kMaxFailureRecords);
  for (;;) {
    FailureSink sink{table.data(), kMaxFailureRecords};
    bool done = step(sink);
    all.insert(all.end(), table.begin(), table.begin() + sink.count);
    *lost += sink.lostExtents;
    if (done) return all;
  }
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto map = MapArgument(info);
  if (!map) return env.Undefined();
  uint64_t offset = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  uint64_t length = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, length);
  std::vector<FailureRecord> errors;
  int error = ReadVolume(*map, offset, length, data.Data(), 0, [&](uint32_t extent, uint32_t copy, int err) {
    errors.push_back(FailureRecord{extent, copy, err, 0});
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("errno", -error);
  out.Set("data", data);
  out.Set("copyErrors", Records(env, errors));
  return out;
}

Napi::Value Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto map = MapArgument(info);
  if (!map) return env.Undefined();
  uint64_t offset = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  Napi::Buffer<uint8_t> data = info[2].As<Napi::Buffer<uint8_t>>();
  uint64_t progress = 0;
  uint32_t lost = 0;
  auto records = Collect(&lost, [&](FailureSink& sink) {
    progress = WriteVolume(*map, offset, data.Length(), data.Data(), progress, RunAtOnce, sink);
    return progress >= data.Length();
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("failures", Records(env, records));
  out.Set("lostExtents", lost);
  return out;
}

Napi::Value Fsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto map = MapArgument(info);
  if (!map) return env.Undefined();
  bool dataOnly = info[1].ToBoolean();
  std::vector<FailureRecord> table(kMaxFailureRecords);
  FailureSink sink{table.data(), kMaxFailureRecords};
  int error = FsyncVolume(*map, dataOnly, RunAtOnce, sink);
  table.resize(sink.count);
  Napi::Object out = Napi::Object::New(env);
  out.Set("errno", -error);
  out.Set("failures", Records(env, table));
  return out;
}

Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto map = MapArgument(info);
  if (!map) return env.Undefined();
  int mode = info[1].As<Napi::Number>().Int32Value();
  uint64_t offset = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  uint64_t length = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value());
  FallocateResult result{0, -1, false, false};
  uint32_t lost = 0;
  auto records = Collect(&lost, [&](FailureSink& sink) {
    result = FallocateVolume(*map, mode | FALLOC_FL_KEEP_SIZE, offset, length, result.progress, sink);
    return !result.partial;
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("failures", Records(env, records));
  out.Set("lostExtents", lost);
  out.Set("unsupported", result.unsupported);
  out.Set("closedRegion", static_cast<double>(result.closedRegion));
  return out;
}

}  // namespace

void InitVolumeIo(Napi::Env env, Napi::Object exports) {
  exports.Set("setFdFault", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    uint32_t mask = info[1].As<Napi::Number>().Uint32Value();
    uint64_t start = info.Length() > 2 ? static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()) : 0;
    uint64_t length = info.Length() > 3 && info[3].IsNumber() && info[3].As<Napi::Number>().DoubleValue() < 9e15
                          ? static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value())
                          : UINT64_MAX;
    SetFault(fd, mask, start, length);
    return info.Env().Undefined();
  }));
  Napi::Object io = Napi::Object::New(env);
  io.Set("read", Napi::Function::New(env, Read));
  io.Set("write", Napi::Function::New(env, Write));
  io.Set("fsync", Napi::Function::New(env, Fsync));
  io.Set("fallocate", Napi::Function::New(env, Fallocate));
  io.Set("ringAvailable", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), RingAvailable());
  }));
  exports.Set("volumeIo", io);
}

}  // namespace lvmfs
