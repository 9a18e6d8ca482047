#include "volume-io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "faults.h"

namespace lvmfs {

namespace {

struct Segment {
  uint64_t extent;
  uint64_t within;  // byte offset inside the extent
  uint64_t length;
  uint64_t done;    // byte offset inside the request
};

}  // namespace

void FailureSink::Add(uint32_t extent, uint32_t copy, int error, uint32_t flags) {
  if (count < capacity) records[count++] = FailureRecord{extent, copy, error, flags};
}

void FailureSink::MarkLost(uint32_t extent, uint32_t firstRecord) {
  lostExtents++;
  if (count == firstRecord) Add(extent, kFailureNoCopy, -ESTALE, kFailureExtentLost);
  for (uint32_t r = firstRecord; r < count; r++) records[r].flags |= kFailureExtentLost;
}

int ReadVolume(const VolumeMap& map, uint64_t offset, uint64_t length, uint8_t* buffer,
               uint32_t roundRobinStart,
               const std::function<void(uint32_t, uint32_t, int)>& onCopyError) {
  uint64_t done = 0;
  while (done < length) {
    uint64_t position = offset + done;
    uint64_t extentIndex = position / map.extentBytes;
    uint64_t within = position % map.extentBytes;
    uint64_t segment = std::min(length - done, map.extentBytes - within);
    const Extent& extent = map.extents[extentIndex];
    int result = -EIO;
    for (int attempt = 0; attempt < extent.count; attempt++) {
      int index = ReadAttemptCopy(map, extent, roundRobinStart, attempt);
      const CopyTarget& copy = extent.copies[index];
      if (copy.stale || copy.fd < 0) continue;
      result = TransferFull(copy, false, buffer + done, segment, copy.offsetBytes + within);
      if (result == 0) break;
      onCopyError(static_cast<uint32_t>(extentIndex), static_cast<uint32_t>(index), result);
    }
    if (result != 0) return result;
    done += segment;
  }
  return 0;
}

uint64_t WriteVolume(const VolumeMap& map, uint64_t offset, uint64_t length, const uint8_t* data,
                     uint64_t progress, BatchRunner atOnce, FailureSink& sink) {
  uint8_t* bytes = const_cast<uint8_t*>(data);  // pwrite only reads it
  // Reused by every request this thread runs: no allocation per write once they have grown.
  thread_local std::vector<Segment> segments;
  thread_local std::vector<Transfer> batch;
  thread_local std::vector<size_t> firstTransfer;  // per segment, its first transfer in `batch`
  while (progress < length) {
    // One batch: as many segments as the sink can take every copy's failure of.
    uint32_t room = (sink.capacity - sink.count) / kMaxCopies;
    if (room == 0) return progress;
    segments.clear();
    batch.clear();
    firstTransfer.clear();
    uint64_t cursor = progress;
    while (cursor < length && segments.size() < room) {
      uint64_t position = offset + cursor;
      uint64_t within = position % map.extentBytes;
      uint64_t segment = std::min(length - cursor, map.extentBytes - within);
      segments.push_back(Segment{position / map.extentBytes, within, segment, cursor});
      cursor += segment;
    }
    for (const Segment& seg : segments) {
      firstTransfer.push_back(batch.size());
      const Extent& extent = map.extents[seg.extent];
      for (int c = 0; c < extent.count; c++) {
        const CopyTarget& copy = extent.copies[c];
        if (!Written(copy)) continue;
        Transfer transfer;
        transfer.copy = &copy;
        transfer.op = kTransferWrite;
        transfer.buffer = bytes + seg.done;
        transfer.length = seg.length;
        transfer.offset = copy.offsetBytes + seg.within;
        batch.push_back(transfer);
      }
    }
    firstTransfer.push_back(batch.size());
    if (map.writeSchedule == kWriteParallel) atOnce(batch);
    else RunInOrder(batch);
    for (size_t s = 0; s < segments.size(); s++) {
      const Extent& extent = map.extents[segments[s].extent];
      uint32_t extentIndex = static_cast<uint32_t>(segments[s].extent);
      uint32_t first = sink.count;
      int fresh = 0;
      bool diverged = firstTransfer[s + 1] - firstTransfer[s] < static_cast<size_t>(extent.count);
      for (size_t t = firstTransfer[s]; t < firstTransfer[s + 1]; t++) {
        const Transfer& transfer = batch[t];
        if (transfer.result == 0 && !transfer.copy->stale) fresh++;
        if (transfer.result < 0) {
          diverged = true;
          sink.Add(extentIndex, static_cast<uint32_t>(transfer.copy - extent.copies), transfer.result, 0);
        }
      }
      // Before the reply: a drain that waits for this request also waits for its bits.
      if (diverged && map.dirty) map.dirty->Mark(offset + segments[s].done, segments[s].length);
      if (fresh == 0) sink.MarkLost(extentIndex, first);
    }
    progress = cursor;
  }
  return progress;
}

int FsyncVolume(const VolumeMap& map, bool dataOnly, BatchRunner atOnce, FailureSink& sink) {
  std::vector<Transfer> batch(map.distinctFds.size());
  for (size_t i = 0; i < batch.size(); i++) {
    batch[i].fd = map.distinctFds[i];
    batch[i].op = dataOnly ? kTransferDataSync : kTransferSync;
  }
  atOnce(batch);
  int error = 0;
  for (const Transfer& transfer : batch) {
    if (transfer.result == 0) continue;
    sink.Add(kFailureAllExtents, static_cast<uint32_t>(transfer.fd), transfer.result, 0);
    error = -EIO;
  }
  return error;
}

FallocateResult FallocateVolume(const VolumeMap& map, int backingMode, uint64_t offset,
                                uint64_t length, uint64_t progress, FailureSink& sink) {
  FallocateResult result{progress, -1, false, false};
  while (result.progress < length) {
    if (sink.capacity - sink.count < static_cast<uint32_t>(kMaxCopies)) {
      result.partial = true;
      return result;
    }
    uint64_t position = offset + result.progress;
    uint64_t within = position % map.extentBytes;
    uint64_t segment = std::min(length - result.progress, map.extentBytes - within);
    if (map.gateBytes > 0) {
      segment = std::min(segment, map.gateBytes - position % map.gateBytes);
      if (FirstClosedRegion(map, position, segment) >= 0) {
        result.closedRegion = static_cast<int64_t>(position / map.gateBytes);
        return result;
      }
    }
    uint32_t extentIndex = static_cast<uint32_t>(position / map.extentBytes);
    const Extent& extent = map.extents[extentIndex];
    int errors[kMaxCopies] = {1, 1, 1};
    int fresh = 0, attempted = 0, unsupported = 0;
    for (int c = 0; c < extent.count; c++) {
      const CopyTarget& copy = extent.copies[c];
      if (!Written(copy)) continue;
      attempted++;
      int error = InjectedFault(copy.fd, true, copy.offsetBytes + within, segment);
      if (error == 0 && copy.remote) {
        // NBD WRITE_ZEROES (the server may punch): what both punch-hole and zero-range promise.
        bool zeroes = (backingMode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0;
        if (zeroes) error = RemoteTransfer(*copy.remote, RemoteOp::kZero, nullptr, segment, copy.offsetBytes + within);
      } else if (error == 0 && fallocate(copy.fd, backingMode, copy.offsetBytes + within, segment) != 0) {
        error = -errno;
      }
      errors[c] = error;
      if (error == -EOPNOTSUPP) unsupported++;
      if (error == 0 && !copy.stale) fresh++;
    }
    if (attempted > 0 && unsupported == attempted) {
      // Every copy refused the mode: nothing changed anywhere, the copies still agree.
      result.unsupported = true;
    } else {
      uint32_t first = sink.count;
      bool diverged = attempted < extent.count;
      for (int c = 0; c < extent.count; c++) {
        if (errors[c] < 0) sink.Add(extentIndex, static_cast<uint32_t>(c), errors[c], 0);
        if (errors[c] < 0) diverged = true;
      }
      if (diverged && map.dirty) map.dirty->Mark(position, segment);
      if (fresh == 0) sink.MarkLost(extentIndex, first);
    }
    result.progress += segment;
  }
  return result;
}

}  // namespace lvmfs
