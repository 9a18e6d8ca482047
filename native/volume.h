// A volume the native data path serves without entering JavaScript: equal-sized extents, each
// with 1..3 physical copies on backing fds. TypeScript builds the map (src/native/volume-map.ts)
// and replaces it whole when policy changes (a copy goes stale, the volume grows).
#pragma once
#include <stdint.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "remote-target.h"
#include "thin-table.h"

namespace lvmfs {

struct VolumeStats;  // session.h

constexpr int kMaxCopies = 3;
enum ReadPolicy { kReadPrimary = 0, kReadFirstFresh = 1, kReadRoundRobin = 2 };
enum WriteSchedule { kWriteParallel = 0, kWriteSequential = 1 };

struct CopyTarget {
  int fd = -1;           // as given by TypeScript; may be O_DIRECT
  int bufferedFd = -1;   // same file without O_DIRECT (owned by the map) for unaligned I/O
  bool direct = false;
  uint32_t alignBytes = 512;  // O_DIRECT alignment of offsets, lengths and buffers
  uint64_t offsetBytes = 0;
  bool stale = false;
  bool writeOnly = false;  // stale, but written through while a resync copies it
  std::shared_ptr<RemoteTarget> remote;  // set when `fd` is a remote PV's token (FinishMap)
};

struct Extent {
  CopyTarget copies[kMaxCopies];
  int count = 0;
};

// Write-intent bits of one volume: chunk c is set when a write or discard into it skipped a
// copy (stale, on an absent PV) or failed on one, before the request completes. TypeScript takes
// the bits (TakeDirtyChunks) before it writes an activity-log record, so a chunk whose copies may
// differ is in the on-disk bitmap before the log stops covering it (src/mirror/intent-bitmap.ts).
struct DirtyChunks {
  uint64_t chunkBytes = 0;
  std::vector<std::atomic<uint64_t>> words;
  std::atomic<bool> any{false};
  DirtyChunks(uint64_t chunk, uint64_t sizeBytes)
      : chunkBytes(chunk), words((sizeBytes / chunk + 64) / 64) {}
  void Mark(uint64_t offsetBytes, uint64_t lengthBytes);
};

// Immutable once published; readers hold a shared_ptr for the duration of one request.
struct VolumeMap {
  uint64_t sizeBytes = 0;
  uint64_t extentBytes = 0;
  uint64_t gateBytes = 0;
  int readPolicy = kReadPrimary;
  int writeSchedule = kWriteParallel;
  bool readOnly = false;
  std::vector<Extent> extents;
  std::vector<int> distinctFds;  // for FSYNC
  std::vector<int> ownedFds;     // buffered fds opened for this map
  // One bit per gate region; a set bit lets writes into the region run natively.
  std::unique_ptr<std::atomic<uint64_t>[]> gateWords;
  size_t gateWordCount = 0;
  std::shared_ptr<DirtyChunks> dirty;  // null: the volume keeps no write-intent bits
  std::shared_ptr<ThinSpec> thin;      // null: not a thin LV (thin-table.h)
  ~VolumeMap();
};

// Per-volume state that outlives map replacement: the in-flight write generations used to
// drain writes admitted before a gate was closed (an RCU-style grace period).
struct Volume {
  std::mutex mutex;
  std::shared_ptr<VolumeMap> map;
  std::atomic<int> generation{0};
  std::atomic<int64_t> inflight[2];
  // Drains of one volume run one at a time. Two at once would flip the generation twice: the
  // second would wait only for the generation the first opened and return while writes admitted
  // under the original one (possibly inside its own closed region) are still running.
  std::mutex drainMutex;
  std::atomic<uint32_t> roundRobin{0};
  VolumeStats* stats = nullptr;  // owned by the session, which outlives every volume
  // Every bit set any map of this volume used, newest last; a replaced map's set is kept until
  // its bits were taken and no request holds that map (under `mutex`).
  std::vector<std::shared_ptr<DirtyChunks>> dirtySets;
  // A thin LV's block table outlives its maps (a pool remap keeps every entry).
  std::shared_ptr<ThinTable> thinTable;
  Volume() { inflight[0] = 0; inflight[1] = 0; }
  std::shared_ptr<VolumeMap> Current() {
    std::lock_guard<std::mutex> lock(mutex);
    return map;
  }
};

// A copy the data path writes: fresh, or stale but written through while a resync copies it.
inline bool Written(const CopyTarget& copy) { return copy.fd >= 0 && (!copy.stale || copy.writeOnly); }

// The copy a read tries at `attempt` (0, 1, ...) under the map's read policy.
inline int ReadAttemptCopy(const VolumeMap& map, const Extent& extent, uint32_t roundRobinStart, int attempt) {
  return map.readPolicy == kReadRoundRobin ? static_cast<int>((roundRobinStart + attempt) % extent.count) : attempt;
}

// The first gate region of the range that is closed, or -1 when writes may run natively.
int64_t FirstClosedRegion(const VolumeMap& map, uint64_t offsetBytes, uint64_t lengthBytes);
void SetGate(VolumeMap& map, uint64_t region, bool open);
// Derives buffered fds and alignment for O_DIRECT copies, and the distinct fd list.
void FinishMap(VolumeMap& map);

}  // namespace lvmfs
