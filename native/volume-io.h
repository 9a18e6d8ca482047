// Volume I/O: one READ, WRITE, FSYNC or FALLOCATE of a mapped volume against its backing fds,
// with the outcome of every (extent, copy). Knows nothing of FUSE: the session hands it buffers
// and ranges, and the addon's volumeIo test entry points drive it directly.
#pragma once
#include <stdint.h>

#include <functional>
#include <vector>

#include "arena.h"
#include "transfers.h"
#include "volume.h"

namespace lvmfs {


// Where the failures of one request go: the failure records at the start of its slot.
struct FailureSink {
  FailureRecord* records;
  uint32_t capacity;
  uint32_t count = 0;
  uint32_t lostExtents = 0;
  void Add(uint32_t extent, uint32_t copy, int error, uint32_t flags);
  // The extent reached no fresh copy: flags its records from `firstRecord` on (one record
  // without a copy when there are none) and counts it.
  void MarkLost(uint32_t extent, uint32_t firstRecord);
};

// Reads [offset, offset+length) into buffer, failing over between fresh copies. `onCopyError`
// hears every failed copy read. 0 or the -errno of the last copy tried in an extent no copy
// could serve.
int ReadVolume(const VolumeMap& map, uint64_t offset, uint64_t length, uint8_t* buffer,
               uint32_t roundRobinStart,
               const std::function<void(uint32_t extent, uint32_t copy, int error)>& onCopyError);

// Writes [offset+progress, offset+length) to every written copy (fresh or write-through), per
// map.writeSchedule: parallel through `atOnce` (RunAtOnce in a session), sequential in order. Every failed (extent, copy) goes to `sink`; an extent whose data reached
// no fresh copy is lost (kFailureExtentLost on its records). Stops early, at an extent
// boundary, when the sink could not hold another batch: returns the progress reached.
uint64_t WriteVolume(const VolumeMap& map, uint64_t offset, uint64_t length, const uint8_t* data,
                     uint64_t progress, BatchRunner atOnce, FailureSink& sink);

// fsync (or fdatasync) of every backing fd the volume uses, at once; a failed fd is recorded
// as {kFailureAllExtents, fd}. 0, or -EIO when any fd failed.
int FsyncVolume(const VolumeMap& map, bool dataOnly, BatchRunner atOnce, FailureSink& sink);

struct FallocateResult {
  uint64_t progress;     // bytes of the range done
  int64_t closedRegion;  // >= 0: stopped before this closed gate region
  bool partial;          // stopped because the sink is nearly full
  bool unsupported;      // some extent's copies all refused the mode (EOPNOTSUPP)
};
// Punches or zeroes [offset+progress, offset+length) on every written copy, region by region,
// stopping before a closed gate region. backingMode is the FALLOC_FL_* mask for the backing.
FallocateResult FallocateVolume(const VolumeMap& map, int backingMode, uint64_t offset,
                                uint64_t length, uint64_t progress, FailureSink& sink);

}  // namespace lvmfs
